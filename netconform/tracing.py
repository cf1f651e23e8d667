"""Which firewall rule stopped each probe: the kernel's own packet trace, per host.

A "blocked" verdict says nothing answered; the user's next question is who
stopped it: an engine's isolation rule, a DROP policy, or no rule at all (no
route, no listener).  Counters say it per lab, not per probe.  While a matrix
is measured, every host marks the packets that decide reachability for
netfilter's tracing, from a table of our own that runs before any other
(``TABLE``, at priority -350: before the raw table, where Docker 28 guards
direct routing), and ``nft monitor trace`` writes what each packet met in
every table (iptables-nft's, netavark's nftables ones): each rule, and the
verdict that ended its way through a chain.  A probe's packets are found in
that trace by their flow (TCP and UDP: its attempts' source ports, which the
prober reports, the probed port or the container port it is published on,
and the addresses; ICMP: the addresses), in both directions, so an answer
dropped on its way back is named too.

Marked are TCP handshakes' first two packets, the probed UDP ports'
datagrams and ICMP: what a firewall decides on, few enough that the monitor
keeps up.  A host without ``nft``, or with iptables-legacy rules (not in
nf_tables, so never traced), or whose monitor fell behind, is named as
untraced, and a probe with no drop found is then "not known", never "no rule
stopped it".
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import expect
from .expect import Probe
from .lab import Lab

TABLE = "netconform_trace"
READY_PORT = 9  # discard: a datagram to loopback, traced, tells that the monitor is listening


def ruleset(udp_ports: set[int]) -> str:
    """Our table, for ``nft -f -``: marks in prerouting (arriving) and output (sent by the host)."""
    ports = ", ".join(map(str, sorted(udp_ports)))
    marks = ("tcp flags & (syn | ack | fin | rst) == syn meta nftrace set 1",
             "tcp flags & (syn | ack | fin | rst) == syn | ack meta nftrace set 1",
             f"udp sport {{ {ports} }} meta nftrace set 1", f"udp dport {{ {ports} }} meta nftrace set 1",
             "ip protocol icmp meta nftrace set 1")
    chains = "".join(f"  chain {hook} {{ type filter hook {hook} priority -350; policy accept;\n"
                     + "".join(f"    {mark}\n" for mark in marks) + "  }\n" for hook in ("prerouting", "output"))
    return f"table ip {TABLE} {{\n{chains}}}\n"


@dataclass(frozen=True)
class Packet:
    """One traced packet as the monitor printed it."""

    src: str
    dst: str
    sport: int | None  # None: not TCP or UDP (the probes' ICMP)
    dport: int | None
    icmp: str = ""  # the ICMP type: "echo-request", "echo-reply", ...


@dataclass(frozen=True)
class Drop:
    """A rule (or a chain's policy) that dropped a packet on a host."""

    host: str
    packet: Packet
    rule: str  # "ip filter FORWARD policy drop", "ip filter DOCKER-ISOLATION-STAGE-2: oifname "back" drop"

    def __str__(self) -> str:
        return f"{self.host} {self.rule}"


_PACKET = re.compile(r"^trace id (\w+) \S+ \S+ \S+ packet: .*?ip saddr (\S+) ip daddr (\S+)"
                     r"(?:.* (?:tcp|udp) sport (\d+) (?:tcp|udp) dport (\d+)|.* icmp type (\S+))?")
_RULE = re.compile(r"^trace id (\w+) (\S+ \S+) (\S+) rule (.*?) \(verdict drop\)\s*$")
_POLICY = re.compile(r"^trace id (\w+) (\S+ \S+) (\S+) policy drop\s*$")
_COUNTER = re.compile(r"counter packets \d+ bytes \d+ ?")


def parse(host: str, text: str) -> list[Drop]:
    """The drops in one host's trace (``nft monitor trace`` output)."""
    packets: dict[str, Packet] = {}
    drops = []
    for line in text.splitlines():
        found = _PACKET.match(line)
        if found:
            trace_id, src, dst, sport, dport, icmp = found.groups()
            packets[trace_id] = Packet(src, dst, int(sport) if sport else None, int(dport) if dport else None,
                                       icmp or "")
        elif (found := _RULE.match(line)) and found.group(1) in packets:
            trace_id, table, chain, rule = found.groups()
            drops.append(Drop(host, packets[trace_id], f"{table} {chain}: {_COUNTER.sub('', rule).strip()}"))
        elif (found := _POLICY.match(line)) and found.group(1) in packets:
            trace_id, table, chain = found.groups()
            drops.append(Drop(host, packets[trace_id], f"{table} {chain} policy drop"))
    return drops


class Trace:
    """Tracing on every host of a lab while it is entered; then which rules stopped a probe."""

    def __init__(self, lab: Lab, name: str, probes: list[Probe]) -> None:
        self.lab, self.name = lab, name
        topo = lab.topology
        served = (expect.server(topo, p.target, p.port, "udp") for p in probes if p.proto == "udp")
        self.table = ruleset({READY_PORT} | {p.port for p in probes if p.proto == "udp"} | {s[1] for s in served if s})
        self.untraced: dict[str, str] = {}  # host: why its firewall could not be traced
        self.own: dict[str, set[str]] = {}  # each host's and ext's IPv4 addresses (sources, masquerade)
        self.started: set[str] = set()  # hosts with a monitor and our table, to undo
        self.drops: list[Drop] = []

    def _log(self, host: str) -> str:
        return f"{self.lab.hosts[host].workdir}/trace/{host}-{self.name}.log"  # netns hosts share /run/lab

    def __enter__(self) -> Trace:
        try:
            with ThreadPoolExecutor(len(self.lab.hosts)) as pool:
                for host, why in pool.map(self._start, list(self.lab.hosts)):
                    if why:
                        self.untraced[host] = why
        except BaseException:
            self.__exit__()  # what did start is undone: no monitor or table outlives a failed start
            raise
        return self

    def _start(self, host: str) -> tuple[str, str]:
        node, log = self.lab.hosts[host], self._log(host)
        self.own[host] = set(re.findall(r" inet ([0-9.]+)/", node.exec(["ip", "-4", "-o", "addr", "show"]).stdout))
        if host == "ext":  # the lab's outside: no firewall of an engine or scheme
            return host, ""
        can = node.exec(["sh", "-c", "command -v nft >/dev/null || { echo no nft; exit 1; }; "
                                     "! [ -s /proc/net/ip_tables_names ] || { echo iptables-legacy rules; exit 1; }"])
        if not can.ok:
            return host, can.stdout.strip() or can.stderr.strip()
        node.exec(["mkdir", "-p", log.rsplit("/", 1)[0]]).check(f"a trace directory on {host}")
        node.spawn(["sh", "-c", f"echo $$ > {log}.pid; exec stdbuf -oL nft monitor trace"], log)
        self.started.add(host)
        node.exec(["nft", "-f", "-"], input=self.table).check(f"the trace table on {host}")
        # The monitor listens once a datagram it traced is in its log (loopback, in the host).
        ready = node.exec(["bash", "-c", f"for i in $(seq 50); do echo . > /dev/udp/127.0.0.1/{READY_PORT} "
                                       f"2>/dev/null; grep -q 'udp dport {READY_PORT} ' {log} && exit 0; sleep 0.1; "
                                       "done; exit 1"], timeout=15)
        return host, "" if ready.ok else "the trace monitor did not start within 5 s"

    def __exit__(self, *exc: object) -> None:
        with ThreadPoolExecutor(max(1, len(self.started))) as pool:
            self.drops = [drop for drops in pool.map(self._stop, sorted(self.started)) for drop in drops]

    def _stop(self, host: str) -> list[Drop]:
        node, log = self.lab.hosts[host], self._log(host)
        node.exec(["nft", "delete", "table", "ip", TABLE])
        node.exec(["sh", "-c", f"kill $(cat {log}.pid)"])
        text = node.read(log)
        if "lost some netlink events" in text:  # it fell behind: what it missed is unknown
            self.untraced[host] = "the trace monitor fell behind and lost events"
        return parse(host, text)

    def stopped_by(self, probe: Probe, ports: tuple[int, ...]) -> tuple[str, ...]:
        """The rules that dropped this probe's packets, either way, each once ("h1 ip filter FORWARD
        policy drop"): TCP and UDP by the attempts' source ports, the probed (or published-to)
        port and the addresses at both ends; ICMP by the addresses."""
        topo = self.lab.topology
        sources = self._addresses(probe.source)
        targets = {probe.address}
        served = expect.server(topo, probe.target, probe.port, probe.proto) if probe.port else None
        if served and served[0] != probe.target:
            targets |= self._addresses(served[0])
        on = {probe.port, served[1]} if served else {probe.port}
        found: list[str] = []
        for drop in self.drops:
            p = drop.packet
            there = p.src in sources and p.dst in targets
            back = p.src in targets and p.dst in sources
            if probe.proto == "icmp":  # the echo, or its reply: not another source's echo the other way
                ours = (there and p.icmp == "echo-request") or (back and p.icmp == "echo-reply")
            else:
                ours = (there and p.sport in ports and p.dport in on) or (back and p.dport in ports and p.sport in on)
            if ours and str(drop) not in found:
                found.append(str(drop))
        return tuple(found)

    def _addresses(self, name: str) -> set[str]:
        """Addresses a node's packets may carry: its stack's own, and its host's (masquerade)."""
        where = expect.stack(self.lab.topology, name)
        if where.kind in ("ext", "host"):
            return self.own.get(where.owner, set())
        if where.kind == "none":
            return set()
        return {*self.lab.containers[where.owner].addresses.values(), *self.own.get(where.host, set())}
