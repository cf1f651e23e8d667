/*
 * prober: run a whole list of reachability probes from one process.
 *
 *   prober TIMEOUT_MS INFLIGHT PROBE...      PROBE: [?]icmp:ADDR | [?]tcp:ADDR:PORT
 *
 * Prints "prober 1", then one line per probe as it is decided:
 *   INDEX ok ANSWER        (tcp: the whoami line "name=... peer=..."; icmp: "reply")
 *   INDEX fail REASON      (timeout, refused, unreachable, noanswer, error)
 * and finally "done probes=N inflight=K rtt_ms=R quick_ms=Q" (the slowest
 * answer, and what a "?" probe waited at the end).
 *
 * At most INFLIGHT probes are open at once, and each probe's time starts
 * when it is opened, not when the list starts, so a long list cannot eat
 * its own timeout.  A probe that gets no answer waits TIMEOUT_MS.  One
 * marked "?" (promised to be blocked, so a short wait can never make a
 * false red) waits that long only until this run has measured answers:
 * then 8 times the slowest answer seen so far (at least 250 ms, at most
 * TIMEOUT_MS), so negative answers come fast on an idle lab and slow down
 * with the lab's load.  An
 * ICMP echo is sent again every third of the current wait; an ICMP error
 * naming the probe (unreachable, prohibited) ends it at once, as a TCP
 * reset does.
 *
 *   prober serve PORT
 *
 * The whoami service the probes read: answers every HTTP request on PORT
 * with "name=HOSTNAME peer=CLIENT" from one process, without a fork per
 * request (a CGI under busybox httpd forks three processes per answer,
 * which a 100-container matrix turns into the bottleneck and its SYN
 * backlog into dropped connections).  Built static by netconform/image.py
 * with the machine's cc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST "GET /cgi-bin/whoami HTTP/1.0\r\n\r\n"
#define BUF 2048

struct probe {
	int icmp, quick, fd, state; /* state: 0 waiting, 1 open, 2 done; quick: may end early */
	struct sockaddr_in to;
	long start, sent; /* ms */
	size_t len;
	char buf[BUF];
};

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static long timeout_ms, slowest = -1;
static int icmp_fd = -1, icmp_raw, open_count;
static unsigned short echo_id;

static long wait_for(const struct probe *p)
{
	long t = slowest < 0 || !p->quick ? timeout_ms : slowest * 8;
	if (t < 250)
		t = 250;
	return t > timeout_ms ? timeout_ms : t;
}

static void finish(struct probe *p, int index, const char *verdict, const char *what)
{
	if (p->state == 1)
		open_count--;
	p->state = 2;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (!strcmp(verdict, "ok")) {
		long rtt = now_ms() - p->start;
		if (rtt > slowest)
			slowest = rtt;
	}
	printf("%d %s %s\n", index, verdict, what);
}

static unsigned short checksum(const void *data, size_t len)
{
	const unsigned short *w = data;
	unsigned long sum = 0;
	for (; len > 1; len -= 2)
		sum += *w++;
	if (len)
		sum += *(const unsigned char *)w;
	sum = (sum >> 16) + (sum & 0xffff);
	sum += sum >> 16;
	return (unsigned short)~sum;
}

static void echo(struct probe *p, int index)
{
	struct icmphdr h = {.type = ICMP_ECHO};
	h.un.echo.id = htons(echo_id);
	h.un.echo.sequence = htons((unsigned short)index);
	h.checksum = checksum(&h, sizeof h);
	sendto(icmp_fd, &h, sizeof h, 0, (struct sockaddr *)&p->to, sizeof p->to);
	p->sent = now_ms();
}

static const char *reason(int err)
{
	switch (err) {
	case ECONNREFUSED: return "refused";
	case EHOSTUNREACH: case ENETUNREACH: case EACCES: case EPERM: return "unreachable";
	case ETIMEDOUT: return "timeout";
	default: return "error";
	}
}

static void open_probe(struct probe *p, int index)
{
	p->start = now_ms();
	p->state = 1;
	open_count++;
	if (p->icmp) {
		if (icmp_fd < 0)
			finish(p, index, "fail", "error no-icmp-socket");
		else
			echo(p, index);
		return;
	}
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (p->fd < 0 || (connect(p->fd, (struct sockaddr *)&p->to, sizeof p->to) < 0 && errno != EINPROGRESS))
		finish(p, index, "fail", reason(errno));
}

static void tcp_event(struct probe *p, int index, short revents)
{
	if (p->len == 0 && !(revents & POLLIN)) { /* connect finished */
		int err = 0;
		socklen_t n = sizeof err;
		getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &n);
		if (err) {
			finish(p, index, "fail", reason(err));
			return;
		}
		if (p->len == 0 && send(p->fd, REQUEST, strlen(REQUEST), MSG_NOSIGNAL) < 0) {
			finish(p, index, "fail", reason(errno));
			return;
		}
		p->len = 1; /* request sent: buf holds a leading marker byte */
		p->buf[0] = 0;
		return;
	}
	ssize_t got = read(p->fd, p->buf + p->len, BUF - 1 - p->len);
	if (got > 0) {
		p->len += (size_t)got;
		if (p->len < BUF - 1)
			return; /* more may come: the answer is complete at end of stream */
	}
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got < 0 && p->len <= 1) {
		finish(p, index, "fail", reason(errno));
		return;
	}
	p->buf[p->len] = 0;
	char *line = strstr(p->buf + 1, "name=");
	if (!line) {
		finish(p, index, "fail", "noanswer");
		return;
	}
	line[strcspn(line, "\r\n")] = 0;
	finish(p, index, "ok", line);
}

static void icmp_event(struct probe *probes, int count)
{
	char pkt[1500];
	struct sockaddr_in from;
	socklen_t n = sizeof from;
	ssize_t got;
	while ((got = recvfrom(icmp_fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&from, &n)) > 0) {
		const char *at = pkt;
		if (icmp_raw) { /* raw sockets see the IP header */
			size_t hl = (size_t)(((const struct iphdr *)pkt)->ihl) * 4;
			if ((size_t)got < hl + sizeof(struct icmphdr))
				continue;
			at += hl;
			got -= (ssize_t)hl;
		}
		const struct icmphdr *h = (const void *)at;
		if (h->type == ICMP_ECHOREPLY) {
			int index = ntohs(h->un.echo.sequence);
			if (icmp_raw && ntohs(h->un.echo.id) != echo_id)
				continue; /* another prober's, in a shared namespace */
			if (index < count && probes[index].icmp && probes[index].state == 1 &&
			    probes[index].to.sin_addr.s_addr == from.sin_addr.s_addr)
				finish(&probes[index], index, "ok", "reply");
		} else if (icmp_raw && (h->type == ICMP_DEST_UNREACH || h->type == ICMP_TIME_EXCEEDED) &&
			   (size_t)got >= sizeof *h + sizeof(struct iphdr) + sizeof(struct icmphdr)) {
			const struct iphdr *inner = (const void *)(at + sizeof *h);
			const struct icmphdr *orig = (const void *)((const char *)inner + inner->ihl * 4);
			if ((const char *)orig + sizeof *orig > at + got || inner->protocol != IPPROTO_ICMP ||
			    ntohs(orig->un.echo.id) != echo_id)
				continue;
			int index = ntohs(orig->un.echo.sequence);
			if (index < count && probes[index].icmp && probes[index].state == 1 &&
			    probes[index].to.sin_addr.s_addr == inner->daddr)
				finish(&probes[index], index, "fail", "unreachable");
		}
	}
}

#define CLIENTS 256

struct client {
	int fd;
	long since;
	size_t len;
	char buf[1024];
	struct sockaddr_in from;
};

static void answer(struct client *c, const char *name)
{
	char out[512];
	int n = snprintf(out, sizeof out, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
			 "name=%s peer=%s\n", name, inet_ntoa(c->from.sin_addr));
	if (send(c->fd, out, (size_t)n, MSG_NOSIGNAL) < 0) { /* the client went away */ }
	shutdown(c->fd, SHUT_WR);
	close(c->fd);
	c->fd = -1;
}

static int serve(const char *port)
{
	char name[256] = "";
	gethostname(name, sizeof name - 1);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&at, sizeof at) < 0 || listen(lfd, 4096) < 0) {
		perror("prober serve");
		return 1;
	}
	static struct client clients[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		clients[i].fd = -1;
	for (;;) {
		struct pollfd fds[CLIENTS + 1];
		int who[CLIENTS + 1], n = 0, free_slot = -1;
		long t = now_ms();
		for (int i = 0; i < CLIENTS; i++) {
			if (clients[i].fd >= 0 && t - clients[i].since > 2000)
				answer(&clients[i], name); /* no full request in 2 s: answer what came */
			if (clients[i].fd >= 0)
				fds[n] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN}, who[n++] = i;
			else if (free_slot < 0)
				free_slot = i;
		}
		if (free_slot >= 0)
			fds[n] = (struct pollfd){.fd = lfd, .events = POLLIN}, who[n++] = -1;
		if (poll(fds, (nfds_t)n, 500) <= 0)
			continue;
		for (int k = 0; k < n; k++) {
			if (!fds[k].revents)
				continue;
			if (who[k] < 0) {
				struct client *c = &clients[free_slot];
				socklen_t len = sizeof c->from;
				c->fd = accept4(lfd, (struct sockaddr *)&c->from, &len, SOCK_NONBLOCK);
				c->len = 0;
				c->since = now_ms();
				continue;
			}
			struct client *c = &clients[who[k]];
			ssize_t got = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got > 0)
				c->len += (size_t)got;
			c->buf[c->len] = 0;
			if (got <= 0 || strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n") || c->len >= sizeof c->buf - 1)
				answer(c, name);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2]);
	if (argc < 3) {
		fprintf(stderr, "usage: prober TIMEOUT_MS INFLIGHT icmp:ADDR|tcp:ADDR:PORT...\n");
		return 2;
	}
	timeout_ms = atol(argv[1]);
	int inflight = atoi(argv[2]), count = argc - 3, max_open = 0;
	struct probe *probes = calloc((size_t)count + 1, sizeof *probes);
	struct pollfd *fds = calloc((size_t)count + 2, sizeof *fds);
	int *owner = calloc((size_t)count + 2, sizeof *owner);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("prober 1\n");
	for (int i = 0; i < count; i++) {
		char spec[128], *addr, *port;
		probes[i].quick = argv[i + 3][0] == '?';
		snprintf(spec, sizeof spec, "%s", argv[i + 3] + probes[i].quick);
		probes[i].fd = -1;
		probes[i].to.sin_family = AF_INET;
		probes[i].icmp = !strncmp(spec, "icmp:", 5);
		addr = strchr(spec, ':') + 1;
		port = probes[i].icmp ? NULL : strchr(addr, ':');
		if (port)
			*port++ = 0;
		if ((!probes[i].icmp && (strncmp(spec, "tcp:", 4) || !port)) ||
		    inet_pton(AF_INET, addr, &probes[i].to.sin_addr) != 1) {
			fprintf(stderr, "prober: bad probe %s\n", argv[i + 3]);
			return 2;
		}
		probes[i].to.sin_port = port ? htons((unsigned short)atoi(port)) : 0;
	}
	icmp_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP);
	icmp_raw = icmp_fd >= 0;
	if (icmp_fd < 0) /* no CAP_NET_RAW: an ICMP datagram socket (net.ipv4.ping_group_range) */
		icmp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_ICMP);
	unsigned int seed = (unsigned int)(getpid() ^ now_ms());
	echo_id = (unsigned short)(rand_r(&seed) & 0xffff);
	int next = 0, done = 0;
	while (done < count) {
		while (next < count && open_count < inflight)
			open_probe(&probes[next], next), next++;
		if (open_count > max_open)
			max_open = open_count;
		int nfds = 0;
		if (icmp_fd >= 0)
			fds[nfds] = (struct pollfd){.fd = icmp_fd, .events = POLLIN}, owner[nfds++] = -1;
		long t = now_ms(), soonest = t + timeout_ms;
		for (int i = 0; i < next; i++) {
			struct probe *p = &probes[i];
			if (p->state != 1)
				continue;
			if (t - p->start >= wait_for(p)) {
				finish(p, i, "fail", "timeout");
				continue;
			}
			if (p->icmp && t - p->sent >= wait_for(p) / 3)
				echo(p, i);
			long due = p->start + wait_for(p);
			if (p->icmp && p->sent + wait_for(p) / 3 < due)
				due = p->sent + wait_for(p) / 3;
			if (due < soonest)
				soonest = due;
			if (!p->icmp)
				fds[nfds] = (struct pollfd){.fd = p->fd, .events = p->len ? POLLIN : POLLOUT},
				owner[nfds++] = i;
		}
		done = 0;
		for (int i = 0; i < count; i++)
			done += probes[i].state == 2;
		if (done == count)
			break;
		if (next < count && open_count < inflight)
			continue;
		int ready = poll(fds, (nfds_t)nfds, (int)(soonest > t ? soonest - t : 0) + 1);
		for (int k = 0; ready > 0 && k < nfds; k++) {
			if (!fds[k].revents)
				continue;
			if (owner[k] < 0)
				icmp_event(probes, count);
			else if (probes[owner[k]].state == 1)
				tcp_event(&probes[owner[k]], owner[k], fds[k].revents);
		}
	}
	struct probe quick = {.quick = 1};
	printf("done probes=%d inflight=%d rtt_ms=%ld quick_ms=%ld\n", count, max_open, slowest, wait_for(&quick));
	return 0;
}
