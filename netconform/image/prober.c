/*
 * prober: run a whole list of reachability probes from one process.
 *
 *   prober [-n NAME] [-o FILE] TIMEOUT_MS INFLIGHT PROBE...
 *                                  PROBE: icmp:ADDR | tcp:ADDR:PORT | udp:ADDR:PORT
 *
 * Prints "prober 2", then one line per probe as it is decided:
 *   INDEX ok ATTEMPT ANSWER    (tcp: the whoami line "name=... peer=... port=...", or
 *                               "handshake" when the connection opened and no such line
 *                               came; udp: the whoami line the server sent back; icmp:
 *                               "reply"; an echo carries "netconform NAME"); ATTEMPT: 1 or 2, the one that answered
 *   INDEX fail 2 REASON        (timeout, refused, unreachable, no-icmp-socket, error);
 *                              tcp and udp add " ports=P1,P2": each attempt's source port
 *                              (0: not opened), so the target can be asked whether the SYNs
 *                              arrived, and a trace of the hosts' firewalls read per flow
 * and finally "done probes=N inflight=K rtt_ms=R wait_ms=W" (the slowest
 * answer, and the longest wait an attempt was given).  With -o, every line
 * also goes to FILE as it is said, so what an engine's exec lost can be read.
 *
 * A "blocked" verdict is evidence, not the absence of an answer within a
 * short wait: every probe that is not answered is tried twice, by two
 * independent attempts (a new socket, so a new TCP flow with its own
 * source port; an ICMP echo with its own identifier), the second opened
 * SECOND_MS after the first or as soon as the first fails, each waiting
 * at least TIMEOUT_MS (which covers the kernel's first SYN
 * retransmission, 1 s after the SYN).  So a leak that answers only a
 * flow's second packet, or answers a second late, is reported reached.
 * The wait adapts to the lab's load, and only upwards: 8 times the
 * slowest answer seen so far, when that is longer (at most 3 x TIMEOUT_MS).
 * An ICMP echo is sent again every third of the wait; an ICMP error
 * naming an attempt (unreachable, prohibited) or a TCP reset ends that
 * attempt at once.
 *
 * A UDP probe sends the datagram "netconform NAME" (NAME: -n, the source's
 * name) every third of the wait from a connected socket (an ICMP port
 * unreachable ends the attempt as "refused"); the server answers it and
 * also notes who arrived, so a datagram that gets in while its answer is
 * dropped on the way back is seen at the target (a one-way leak).
 *
 * Reached means the target's stack answered: a completed TCP handshake is
 * reached whatever follows (a listener that says nothing is an open port),
 * and the whoami line, when there is one, names who served and on which
 * port, so a probe answered by the wrong node is seen as such.
 *
 * At most INFLIGHT probes are opened within any 250 ms still unanswered
 * (silent ones then wait aside, at most 400 open in all), and each
 * attempt's time starts when it is opened, not when the list starts, so a
 * long list cannot eat its own timeout and silence does not queue the rest.
 *
 *   prober icmp-arrivals FILE
 *
 * Appends "SENDER PEER" to FILE for every echo request carrying a probe's payload that reaches
 * this stack (a raw socket; the kernel still answers), so a ping let in while its reply is
 * dropped is seen at the target.
 *
 *   prober serve PORT [NAME [ARRIVALS]]
 *
 * The whoami service the probes read: answers every HTTP request on TCP
 * PORT, and every datagram on UDP PORT, with "name=NAME peer=CLIENT
 * port=PORT" (NAME: the hostname unless given), and appends "SENDER PEER"
 * for each probe datagram to ARRIVALS (default /tmp/udp-PORT.arrivals), from one process, without a fork per request (a CGI under
 * busybox httpd forks three processes per answer, which a 100-container
 * matrix turns into the bottleneck and its SYN backlog into dropped
 * connections).
 *
 *   prober echo PORT
 *   prober rr ADDR PORT SECONDS
 *
 * TCP request/response round trips for the benchmarks: echo sends back every byte a
 * connection brings (one connection at a time); rr opens one connection (TCP_NODELAY), sends
 * a RR_MESSAGE-byte message and waits for all of it to come back, again and again: for a tenth
 * of a second not counted (neighbours, caches), then for SECONDS, and prints
 * "rr COUNT MIN P50 P90 P99 MAX" (microseconds, each round trip timed on its own).  sockperf
 * does the same but sleeps 2 s after its warm-up in every run.
 *
 * Built static by netconform/image.py with the machine's cc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REQUEST "GET /cgi-bin/whoami HTTP/1.0\r\n\r\n"
#define BUF 2048
#define ATTEMPTS 2
#define SECOND_MS 500 /* when the second attempt opens if the first is still silent */
#define YOUNG_MS 250 /* a probe unanswered this long waits without counting against INFLIGHT */
#define OPEN_MAX 400 /* probes open at once in all (two sockets each) */

struct attempt {
	int fd, state; /* state: 0 not opened, 1 open, 2 failed */
	unsigned short sport; /* tcp, udp: the source port of this attempt's flow */
	long start, sent; /* ms */
	const char *why;
	size_t len;
	char buf[BUF];
};

struct probe {
	int icmp, udp, state; /* state: 0 waiting, 1 open, 2 done */
	struct sockaddr_in to;
	struct attempt a[ATTEMPTS];
};

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static long timeout_ms, slowest = -1, longest_wait;
static int icmp_fd[ATTEMPTS] = {-1, -1}, icmp_raw, open_count;
static unsigned short echo_id[ATTEMPTS];
static char payload[128] = "netconform ?\n";

static long wait_ms(void)
{
	long t = slowest * 8 > timeout_ms ? slowest * 8 : timeout_ms;
	if (t > 3 * timeout_ms)
		t = 3 * timeout_ms;
	if (t > longest_wait)
		longest_wait = t;
	return t;
}

static void close_attempts(struct probe *p)
{
	for (int k = 0; k < ATTEMPTS; k++) {
		if (p->a[k].fd >= 0)
			close(p->a[k].fd);
		p->a[k].fd = -1;
	}
}

/* What the prober says goes to stdout and, with -o, to a file as well: an engine's exec can lose
 * lines of its output (moby#27289, podman#9096), and the file can then be read again. */
static FILE *transcript;

static void say(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	if (transcript) {
		va_list again;
		va_copy(again, args);
		vfprintf(transcript, format, again);
		va_end(again);
		fflush(transcript);
	}
	vprintf(format, args);
	va_end(args);
}

static void finish(struct probe *p, int index, int k, const char *verdict, const char *what)
{
	if (p->state == 1)
		open_count--;
	p->state = 2;
	close_attempts(p);
	if (!strcmp(verdict, "ok")) {
		long rtt = now_ms() - p->a[k].start;
		if (rtt > slowest)
			slowest = rtt;
	}
	if (strcmp(verdict, "ok") && !p->icmp)
		say("%d %s %d %s ports=%u,%u\n", index, verdict, k + 1, what, p->a[0].sport, p->a[1].sport);
	else
		say("%d %s %d %s\n", index, verdict, k + 1, what);
}

/* One attempt failed: the probe fails once every attempt has. */
static void attempt_failed(struct probe *p, int index, int k, const char *why)
{
	struct attempt *a = &p->a[k];
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	a->state = 2;
	a->why = why;
	for (int j = 0; j < ATTEMPTS; j++)
		if (p->a[j].state != 2)
			return;
	finish(p, index, ATTEMPTS - 1, "fail", why);
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

/* An echo request carries the payload "netconform NAME" (as a probe datagram does), so the
 * target's recorder (prober icmp-arrivals) can tell which source's echo arrived. */
static int echo(struct probe *p, int index, int k)
{
	char pkt[sizeof(struct icmphdr) + sizeof payload] = {0};
	struct icmphdr *h = (struct icmphdr *)pkt;
	size_t len = sizeof *h + strlen(payload);
	h->type = ICMP_ECHO;
	h->un.echo.id = htons(echo_id[k]);
	h->un.echo.sequence = htons((unsigned short)index);
	memcpy(pkt + sizeof *h, payload, strlen(payload));
	h->checksum = checksum(pkt, len);
	p->a[k].sent = now_ms();
	return (int)sendto(icmp_fd[k], pkt, len, 0, (struct sockaddr *)&p->to, sizeof p->to);
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

static void datagram(struct probe *p, int index, int k)
{
	struct attempt *a = &p->a[k];
	a->sent = now_ms();
	if (send(a->fd, payload, strlen(payload), MSG_NOSIGNAL) < 0 && errno != EAGAIN)
		attempt_failed(p, index, k, reason(errno));
}

static void udp_event(struct probe *p, int index, int k)
{
	struct attempt *a = &p->a[k];
	ssize_t got = recv(a->fd, a->buf, BUF - 1, MSG_DONTWAIT);
	if (got < 0) {
		if (errno != EAGAIN && errno != EINTR)
			attempt_failed(p, index, k, reason(errno)); /* ICMP port unreachable: refused */
		return;
	}
	a->buf[got] = 0;
	char *line = strstr(a->buf, "name=");
	if (!line)
		return; /* not the whoami answer: keep waiting */
	line[strcspn(line, "\r\n")] = 0;
	finish(p, index, k, "ok", line);
}

static void open_attempt(struct probe *p, int index, int k)
{
	struct attempt *a = &p->a[k];
	a->start = now_ms();
	a->state = 1;
	if (k == 0) {
		p->state = 1;
		open_count++;
	}
	if (p->icmp) {
		if (icmp_fd[k] < 0) /* neither NET_RAW nor a ping_group_range admitting us */
			attempt_failed(p, index, k, "no-icmp-socket");
		else if (echo(p, index, k) < 0 && (errno == ENETUNREACH || errno == EHOSTUNREACH))
			attempt_failed(p, index, k, "unreachable");
		return;
	}
	a->fd = socket(AF_INET, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
	if (a->fd < 0 || (connect(a->fd, (struct sockaddr *)&p->to, sizeof p->to) < 0 && errno != EINPROGRESS)) {
		attempt_failed(p, index, k, reason(errno));
	} else {
		struct sockaddr_in me;
		socklen_t n = sizeof me;
		if (getsockname(a->fd, (struct sockaddr *)&me, &n) == 0)
			a->sport = ntohs(me.sin_port);
		if (p->udp)
			datagram(p, index, k);
	}
}

static void tcp_event(struct probe *p, int index, int k, short revents)
{
	struct attempt *a = &p->a[k];
	if (a->len == 0) { /* connect finished, one way or the other */
		int err = 0;
		socklen_t n = sizeof err;
		getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &n);
		if (err) {
			attempt_failed(p, index, k, reason(err));
			return;
		}
		/* The handshake completed: the port is reachable, whatever follows. */
		send(a->fd, REQUEST, strlen(REQUEST), MSG_NOSIGNAL);
		a->len = 1; /* request sent: buf holds a leading marker byte */
		a->buf[0] = 0;
		if (!(revents & (POLLIN | POLLHUP | POLLERR)))
			return;
	}
	ssize_t got = read(a->fd, a->buf + a->len, BUF - 1 - a->len);
	if (got > 0) {
		a->len += (size_t)got;
		if (a->len < BUF - 1)
			return; /* more may come: the answer is complete at end of stream */
	}
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	a->buf[a->len] = 0;
	char *line = strstr(a->buf + 1, "name=");
	if (!line) { /* closed or reset after the handshake without a whoami line */
		finish(p, index, k, "ok", "handshake");
		return;
	}
	line[strcspn(line, "\r\n")] = 0;
	finish(p, index, k, "ok", line);
}

static void icmp_event(struct probe *probes, int count, int k)
{
	char pkt[1500];
	struct sockaddr_in from;
	socklen_t n = sizeof from;
	ssize_t got;
	while ((got = recvfrom(icmp_fd[k], pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&from, &n)) > 0) {
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
			int index = ntohs(h->un.echo.sequence), which = k;
			if (icmp_raw) { /* one raw socket sees every echo reply: the identifier says whose */
				for (which = 0; which < ATTEMPTS && ntohs(h->un.echo.id) != echo_id[which]; which++)
					;
				if (which == ATTEMPTS)
					continue; /* another prober's, in a shared namespace */
			}
			/* A reply to an attempt that already timed out still counts while the probe is open:
			 * the target answered, late. */
			if (index < count && probes[index].icmp && probes[index].state == 1 &&
			    probes[index].to.sin_addr.s_addr == from.sin_addr.s_addr)
				finish(&probes[index], index, which, "ok", "reply");
		} else if (icmp_raw && (h->type == ICMP_DEST_UNREACH || h->type == ICMP_TIME_EXCEEDED) &&
			   (size_t)got >= sizeof *h + sizeof(struct iphdr) + sizeof(struct icmphdr)) {
			const struct iphdr *inner = (const void *)(at + sizeof *h);
			const struct icmphdr *orig = (const void *)((const char *)inner + inner->ihl * 4);
			if ((const char *)orig + sizeof *orig > at + got || inner->protocol != IPPROTO_ICMP)
				continue;
			int which;
			for (which = 0; which < ATTEMPTS && ntohs(orig->un.echo.id) != echo_id[which]; which++)
				;
			int index = ntohs(orig->un.echo.sequence);
			if (which < ATTEMPTS && index < count && probes[index].icmp && probes[index].state == 1 &&
			    probes[index].a[which].state == 1 && probes[index].to.sin_addr.s_addr == inner->daddr)
				attempt_failed(&probes[index], index, which, "unreachable");
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

static void answer(struct client *c, const char *name, int port)
{
	char out[512];
	int n = snprintf(out, sizeof out, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
			 "name=%s peer=%s port=%d\n", name, inet_ntoa(c->from.sin_addr), port);
	if (send(c->fd, out, (size_t)n, MSG_NOSIGNAL) < 0) { /* the client went away */ }
	shutdown(c->fd, SHUT_WR);
	close(c->fd);
	c->fd = -1;
}

/* A probe datagram: answer it from the address it was sent to (IP_PKTINFO, as a multi-homed
 * UDP server must: a reply from another of the stack's addresses would not reach a connected
 * client), and note who it says sent it and from which address it came. */
static void datagram_in(int ufd, const char *name, int port, FILE *arrivals)
{
	char in[256], out[512], control[256];
	struct sockaddr_in from;
	struct iovec iov = {.iov_base = in, .iov_len = sizeof in - 1};
	struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control, .msg_controllen = sizeof control};
	ssize_t got = recvmsg(ufd, &msg, MSG_DONTWAIT);
	if (got <= 0)
		return;
	in[got] = 0;
	char sender[128] = "?";
	if (sscanf(in, "netconform %127s", sender) == 1 && arrivals) {
		fprintf(arrivals, "%s %s\n", sender, inet_ntoa(from.sin_addr));
		fflush(arrivals);
	}
	int len = snprintf(out, sizeof out, "name=%s peer=%s port=%d\n", name, inet_ntoa(from.sin_addr), port);
	struct in_pktinfo *info = NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
			info = (struct in_pktinfo *)CMSG_DATA(c);
	char reply_control[CMSG_SPACE(sizeof(struct in_pktinfo))] = {0};
	struct iovec out_iov = {.iov_base = out, .iov_len = (size_t)len};
	struct msghdr reply = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &out_iov, .msg_iovlen = 1};
	if (info) {
		reply.msg_control = reply_control;
		reply.msg_controllen = sizeof reply_control;
		struct cmsghdr *c = CMSG_FIRSTHDR(&reply);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
		struct in_pktinfo answer = {.ipi_spec_dst = info->ipi_addr};
		memcpy(CMSG_DATA(c), &answer, sizeof answer);
	}
	sendmsg(ufd, &reply, 0);
}

static int serve(const char *port, const char *given, const char *log)
{
	char name[256] = "", path[256];
	if (given)
		snprintf(name, sizeof name, "%s", given);
	else
		gethostname(name, sizeof name - 1);
	snprintf(path, sizeof path, "/tmp/udp-%s.arrivals", port);
	FILE *arrivals = fopen(log ? log : path, "a");
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(ufd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&at, sizeof at) < 0 || listen(lfd, 4096) < 0 ||
	    bind(ufd, (struct sockaddr *)&at, sizeof at) < 0) {
		perror("prober serve");
		return 1;
	}
	static struct client clients[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		clients[i].fd = -1;
	for (;;) {
		struct pollfd fds[CLIENTS + 2];
		int who[CLIENTS + 2], n = 0, free_slot = -1;
		fds[n] = (struct pollfd){.fd = ufd, .events = POLLIN}, who[n++] = -2;
		long t = now_ms();
		for (int i = 0; i < CLIENTS; i++) {
			if (clients[i].fd >= 0 && t - clients[i].since > 2000)
				answer(&clients[i], name, atoi(port)); /* no full request in 2 s: answer what came */
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
			if (who[k] == -2) {
				datagram_in(ufd, name, atoi(port), arrivals);
				continue;
			}
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
				answer(c, name, atoi(port));
		}
	}
}

/* Note every probe echo request that reaches this network stack ("SENDER PEER" to ARRIVALS):
 * the kernel answers echoes itself, so an echo let in while its reply is dropped on the way back
 * is seen only here (a one-way leak, judged at the receiver).  Needs a raw socket (NET_RAW):
 * without one it says so and ends, and such a target's echoes are not judged at the receiver. */
static int icmp_arrivals(const char *log)
{
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	FILE *arrivals = fd < 0 ? NULL : fopen(log, "a"); /* no file: nothing can be noted here */
	if (!arrivals) {
		perror("prober icmp-arrivals");
		return 1;
	}
	for (;;) {
		char pkt[1500], sender[128];
		struct sockaddr_in from;
		socklen_t n = sizeof from;
		ssize_t got = recvfrom(fd, pkt, sizeof pkt - 1, 0, (struct sockaddr *)&from, &n);
		if (got <= 0)
			continue;
		size_t hl = (size_t)(((const struct iphdr *)pkt)->ihl) * 4;
		if ((size_t)got < hl + sizeof(struct icmphdr) || ((const struct icmphdr *)(pkt + hl))->type != ICMP_ECHO)
			continue;
		pkt[got] = 0;
		if (sscanf(pkt + hl + sizeof(struct icmphdr), "netconform %127s", sender) == 1) {
			fprintf(arrivals, "%s %s\n", sender, inet_ntoa(from.sin_addr));
			fflush(arrivals);
		}
	}
}

#define RR_MESSAGE 16
#define RR_MAX 4000000

static int echo_server(const char *port)
{
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&at, sizeof at) < 0 || listen(lfd, 16) < 0) {
		perror("prober echo");
		return 1;
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		char buf[BUF];
		ssize_t got;
		while ((got = read(fd, buf, sizeof buf)) > 0)
			if (write(fd, buf, (size_t)got) != got)
				break;
		close(fd);
	}
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One round trip: the message out, all of it back; the microseconds it took, or -1. */
static double round_trip(int fd)
{
	char msg[RR_MESSAGE] = "netconform rr", back[RR_MESSAGE];
	double start = now_us();
	if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
		return -1;
	for (size_t have = 0; have < sizeof back;) {
		ssize_t got = read(fd, back + have, sizeof back - have);
		if (got <= 0)
			return -1;
		have += (size_t)got;
	}
	return now_us() - start;
}

static int rr(const char *addr, const char *port, const char *seconds)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	struct timeval limit = {.tv_sec = 3};
	if (inet_pton(AF_INET, addr, &to.sin_addr) != 1) {
		fprintf(stderr, "prober rr: not an IPv4 address: %s\n", addr);
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
	if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
		perror("prober rr: connect");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	double *rtt = malloc(RR_MAX * sizeof *rtt), until = now_us() + 1e5;
	while (now_us() < until)
		if (round_trip(fd) < 0)
			goto broken;
	size_t n = 0;
	for (until = now_us() + atof(seconds) * 1e6; n < RR_MAX && now_us() < until; n++)
		if ((rtt[n] = round_trip(fd)) < 0)
			goto broken;
	if (n < 2) {
		fprintf(stderr, "prober rr: %zu round trips\n", n);
		return 1;
	}
	qsort(rtt, n, sizeof *rtt, by_value);
	printf("rr %zu %.1f %.1f %.1f %.1f %.1f\n", n, rtt[0], rtt[n / 2], rtt[n * 9 / 10], rtt[n * 99 / 100],
	       rtt[n - 1]);
	return 0;
broken:
	perror("prober rr: the connection broke");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "echo"))
		return echo_server(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "rr"))
		return rr(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "icmp-arrivals"))
		return icmp_arrivals(argv[2]);
	if (argc >= 3 && argc <= 5 && !strcmp(argv[1], "serve"))
		return serve(argv[2], argc >= 4 ? argv[3] : NULL, argc == 5 ? argv[4] : NULL);
	for (; argc > 2 && (!strcmp(argv[1], "-n") || !strcmp(argv[1], "-o")); argv += 2, argc -= 2) {
		if (!strcmp(argv[1], "-n"))
			snprintf(payload, sizeof payload, "netconform %s\n", argv[2]);
		else if (!(transcript = fopen(argv[2], "w"))) /* a backup only: probe without it */
			fprintf(stderr, "prober: no transcript, cannot write %s: %s\n", argv[2], strerror(errno));
	}
	if (argc < 3) {
		fprintf(stderr, "usage: prober [-n NAME] [-o FILE] TIMEOUT_MS INFLIGHT icmp:ADDR|tcp:ADDR:PORT|udp:ADDR:PORT...\n");
		return 2;
	}
	timeout_ms = atol(argv[1]);
	int inflight = atoi(argv[2]), count = argc - 3, max_open = 0;
	struct probe *probes = calloc((size_t)count + 1, sizeof *probes);
	struct pollfd *fds = calloc((size_t)ATTEMPTS * count + ATTEMPTS + 1, sizeof *fds);
	int *owner = calloc((size_t)ATTEMPTS * count + ATTEMPTS + 1, sizeof *owner);
	setvbuf(stdout, NULL, _IOLBF, 0);
	say("prober 2\n");
	for (int i = 0; i < count; i++) {
		char spec[128], *addr, *port;
		snprintf(spec, sizeof spec, "%s", argv[i + 3]);
		for (int k = 0; k < ATTEMPTS; k++)
			probes[i].a[k].fd = -1;
		probes[i].to.sin_family = AF_INET;
		probes[i].icmp = !strncmp(spec, "icmp:", 5);
		addr = strchr(spec, ':');
		addr = addr ? addr + 1 : spec;
		port = probes[i].icmp ? NULL : strchr(addr, ':');
		if (port)
			*port++ = 0;
		probes[i].udp = !strncmp(spec, "udp:", 4);
		if ((!probes[i].icmp && ((strncmp(spec, "tcp:", 4) && !probes[i].udp) || !port)) ||
		    inet_pton(AF_INET, addr, &probes[i].to.sin_addr) != 1) {
			fprintf(stderr, "prober: bad probe %s\n", argv[i + 3]);
			return 2;
		}
		probes[i].to.sin_port = port ? htons((unsigned short)atoi(port)) : 0;
	}
	/* One ICMP socket per attempt: with raw sockets (NET_RAW) the identifier tells the attempts
	 * apart; without (an ICMP datagram socket, net.ipv4.ping_group_range) the kernel gives each
	 * socket an identifier of its own.  Either way the two echoes are two flows. */
	unsigned int seed = (unsigned int)(getpid() ^ now_ms());
	unsigned short id = (unsigned short)(rand_r(&seed) & 0xffff);
	icmp_fd[0] = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP);
	icmp_raw = icmp_fd[0] >= 0;
	for (int k = 0; k < ATTEMPTS; k++) {
		echo_id[k] = (unsigned short)(id + k);
		if (k > 0 && icmp_raw)
			icmp_fd[k] = icmp_fd[0];
		else if (!icmp_raw)
			icmp_fd[k] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_ICMP);
	}
	int next = 0, done = 0;
	while (done < count) {
		/* INFLIGHT bounds the probes still expecting a quick answer (opened less than YOUNG_MS
		 * ago): a probe that stays silent costs only its socket while it waits, so silence does
		 * not hold up the rest of the list; OPEN_MAX bounds the sockets. */
		long now = now_ms();
		int young = 0;
		for (int i = 0; i < next; i++)
			young += probes[i].state == 1 && now - probes[i].a[0].start < YOUNG_MS;
		while (next < count && young < inflight && open_count < OPEN_MAX)
			open_attempt(&probes[next], next, 0), next++, young++;
		if (open_count > max_open)
			max_open = open_count;
		int nfds = 0;
		for (int k = 0; k < ATTEMPTS; k++)
			if (icmp_fd[k] >= 0 && (k == 0 || icmp_fd[k] != icmp_fd[0]))
				fds[nfds] = (struct pollfd){.fd = icmp_fd[k], .events = POLLIN}, owner[nfds++] = -1 - k;
		long t = now_ms(), wait = wait_ms(), soonest = t + wait;
		for (int i = 0; i < next; i++) {
			struct probe *p = &probes[i];
			for (int k = 0; k < ATTEMPTS && p->state == 1; k++) {
				struct attempt *a = &p->a[k];
				if (a->state == 0) { /* the second attempt: once the first failed or stayed silent */
					long at = p->a[0].state == 2 ? t : p->a[0].start + SECOND_MS;
					if (t >= at)
						open_attempt(p, i, k);
					else if (at < soonest)
						soonest = at;
				}
				if (a->state != 1)
					continue;
				if (t - a->start >= wait) {
					attempt_failed(p, i, k, "timeout");
					continue;
				}
				int resends = p->icmp || p->udp; /* no kernel retransmission: we send again */
				if (p->icmp && t - a->sent >= wait / 3)
					echo(p, i, k);
				else if (p->udp && t - a->sent >= wait / 3)
					datagram(p, i, k);
				if (a->state != 1)
					continue;
				long due = a->start + wait;
				if (resends && a->sent + wait / 3 < due)
					due = a->sent + wait / 3;
				if (due < soonest)
					soonest = due;
				if (!p->icmp && a->fd >= 0)
					fds[nfds] = (struct pollfd){.fd = a->fd, .events = a->len || p->udp ? POLLIN : POLLOUT},
					owner[nfds++] = i * ATTEMPTS + k;
			}
		}
		done = 0;
		for (int i = 0; i < count; i++)
			done += probes[i].state == 2;
		if (done == count)
			break;
		if (next < count && young < inflight && open_count < OPEN_MAX)
			continue;
		if (next < count && open_count < OPEN_MAX) { /* a young probe ages out: admit more then */
			long oldest = t;
			for (int i = 0; i < next; i++)
				if (probes[i].state == 1 && probes[i].a[0].start + YOUNG_MS < soonest &&
				    t - probes[i].a[0].start < YOUNG_MS && probes[i].a[0].start < oldest)
					oldest = probes[i].a[0].start;
			if (oldest + YOUNG_MS < soonest)
				soonest = oldest + YOUNG_MS;
		}
		int ready = poll(fds, (nfds_t)nfds, (int)(soonest > t ? soonest - t : 0) + 1);
		for (int j = 0; ready > 0 && j < nfds; j++) {
			if (!fds[j].revents)
				continue;
			if (owner[j] < 0)
				icmp_event(probes, count, -1 - owner[j]);
			else if (probes[owner[j] / ATTEMPTS].state == 1 &&
				 probes[owner[j] / ATTEMPTS].a[owner[j] % ATTEMPTS].state == 1)
				(probes[owner[j] / ATTEMPTS].udp ? (void)udp_event(&probes[owner[j] / ATTEMPTS],
									  owner[j] / ATTEMPTS, owner[j] % ATTEMPTS)
				 : tcp_event(&probes[owner[j] / ATTEMPTS], owner[j] / ATTEMPTS, owner[j] % ATTEMPTS,
					     fds[j].revents));
		}
	}
	say("done probes=%d inflight=%d rtt_ms=%ld wait_ms=%ld\n", count, max_open, slowest, longest_wait);
	return 0;
}
