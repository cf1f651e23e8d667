"""Measure the reachability matrix in a live lab and diff it with the promise.

Each source node runs its whole list of probes from one process, the
prober (``image/prober.c``: non-blocking sockets, ICMP, TCP and UDP, at most
``INFLIGHT`` open at once, each with its own deadline), and a bounded
number of sources probe at once, sized to the machine's cores, so the
answers do not depend on how large the lab is.

Both verdicts are evidence.  "Blocked" means nothing answered two
independent attempts (two TCP flows, two ICMP identifiers), each given a
wait that covers the kernel's first SYN retransmission, so a lost packet or
a late answer cannot decide it; ``Pace`` says what wait was used, how many
blocked verdicts rest on that and which probes only their second attempt
reached (a flaky path is a finding: they are printed).  "Reached" means the
target's stack answered: a completed TCP handshake, whatever follows; the
whoami answer, where there is one, names who served and on which port, and
a probe answered by anyone else is *misdirected*, wrong whatever was
promised.  A source whose prober could not run is an error of the run,
never a column of "blocked".  A probe promised to reach that did not is
tried again alone before it is reported (one source at a time, only
retries in flight), so load can delay a verdict but not turn it red.
Machines over SSH get this machine's static prober copied into the lab's
work directory, so every source probes alike.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from . import expect
from . import image as probe_image
from . import tracing
from .checks import firewall
from .expect import Probe
from .lab import Lab
from .pacing import Pacer, neighbour_budget, neighbour_entries
from .providers.netns import EXT_ARRIVALS, EXT_ICMP_ARRIVALS
from .result import Result

TIMEOUT = 2  # seconds each attempt waits at least (covers the first SYN retransmission, 1 s)
ATTEMPTS = 2  # independent attempts behind every verdict without an answer (image/prober.c)
INFLIGHT = 16  # probes one prober keeps open at once
TRANSCRIPT = "/tmp/netconform-prober.out"  # where a container's prober also writes what it says
REQUEST = r"GET /cgi-bin/whoami HTTP/1.0\r\n\r\n"
NO_ICMP_SOCKET = "(no ICMP socket at the source)"  # the prober's "no-icmp-socket": neither raw nor datagram


ONE_WAY = "arrived one way (the target got it, no answer came back)"  # a Verdict measured so

@dataclass(frozen=True)
class Outcome:
    """What one probe got."""

    reached: bool
    answer: str = ""  # the whoami line, "handshake" (tcp without one), "reply" (icmp)
    why: str = ""  # how a probe that did not reach ended: timeout, refused, unreachable, error
    attempt: int = 0  # the attempt that answered (1 or 2); 0 when none did
    error: str = ""  # the probe could not be run at all (its source's prober failed)
    one_way: bool = False  # no answer came back, but the target saw the datagram (the SYN) arrive
    ports: tuple[int, ...] = ()  # tcp without an answer: each attempt's source port


@dataclass(frozen=True)
class Verdict:
    probe: Probe
    expected: bool
    reached: bool
    answer: str = ""  # the whoami line (tcp), "handshake" or "reply"
    why: str = ""  # how a probe that did not reach ended: timeout, refused, unreachable
    attempt: int = 0  # the attempt that answered; 2 means the first one did not
    misdirected: str = ""  # who answered instead of the intended target ("web on port 80")
    error: str = ""  # why the probe could not be run: no verdict at all
    one_way: bool = False  # reached the target (it saw the datagram or the SYN) but no answer came back
    # Without an answer: the firewall rules the hosts' trace saw drop its packets, either way
    # (tracing.py); () when traced and no rule dropped any; None when not traced.
    stopped_by: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        """As promised: a one-way arrival is a leak where blocking was promised, and a broken
        path where reaching was."""
        return (self.expected == self.reached and not self.misdirected and not self.error
                and not (self.expected and self.one_way))

    @property
    def measured(self) -> str:
        """The verdict in a word or three, as tables and deviations' observations read it."""
        if self.error:
            return "not measured (error)"
        if self.misdirected:
            return f"answered by {self.misdirected}"
        if self.one_way:
            return ONE_WAY
        if not self.reached and self.why == "no-icmp-socket":
            return f"blocked {NO_ICMP_SOCKET}"
        return "reached" if self.reached else "blocked"

    @property
    def observation(self) -> str:
        """The exact observation deviations predict: ``ext -> web (172.30.1.2:80 tcp) reached``."""
        return f"{self.probe} {self.measured}"

    @property
    def served_by(self) -> str:
        found = re.search(r"name=(\S+)", self.answer)
        return found.group(1) if found else ""

    @property
    def served_on(self) -> int | None:
        """The port the server was reached on, as it says (None: it did not say)."""
        found = re.search(r"port=([0-9]+)", self.answer)
        return int(found.group(1)) if found else None

    @property
    def peer(self) -> str:
        """The client address the server saw, without IPv4-mapped IPv6 dressing."""
        found = re.search(r"peer=\[?(?:::ffff:)?([0-9.]+)\]?", self.answer)
        return found.group(1) if found else ""


@dataclass(frozen=True)
class Pace:
    """How a matrix was measured: how many sources probed at once, how long a silent probe was
    waited for, and what only a second attempt or a retry reached."""

    sources: int
    at_once: int  # sources probing at the same time
    inflight: int  # probes each source kept open at once
    retried: int = 0  # promised probes that did not reach and were tried again alone
    recovered: int = 0  # of those, reached when alone: the load's doing, not the network's
    flushes: int = 0  # times the lab's neighbour tables were emptied to stay under the kernel's limit
    waited: float = 0.0  # seconds sources waited for that (pacing.py)
    seconds: float = 0.0  # the whole measurement, retries included
    wait_ms: int = 0  # the longest wait an attempt was given (at least TIMEOUT; adapted only upwards)
    attempts: int = ATTEMPTS  # independent attempts behind each verdict without an answer
    confirmed: int = 0  # blocked verdicts, each resting on that many silent or refused attempts
    changed: tuple[str, ...] = ()  # probes whose first attempt failed and a later one reached
    errors: int = 0  # probes that could not be run
    # What stopped packets while the matrix was measured: each host's DROP/REJECT rule or DROP
    # policy whose counter rose, with how many packets.  Empty while verdicts are blocked: no rule
    # of an engine dropped anything (no route, no neighbour, no listener), the lab's verdict.
    stopped_by: tuple[str, ...] = ()
    # Targets whose unanswered echoes could not be judged at the receiver (no raw socket there):
    # an echo let in and not answered would read "blocked" at them.
    echoes_unrecorded: tuple[str, ...] = ()
    untraced: tuple[str, ...] = ()  # hosts whose firewall could not be traced, with why
    # Blocked verdicts that no firewall rule accounts for and no stack refused (traced, silent):
    # no route, no neighbour, a packet lost: the lab's doing or the scheme's, not the engine's
    # filtering, which is what an isolation promise usually rests on.
    unaccounted: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = (f"{self.sources} sources, {self.at_once} at a time, up to {self.inflight} probes "
                f"in flight each, {self.seconds:.1f} s; {self.confirmed} blocked verdicts confirmed "
                f"by {self.attempts} independent attempts each, waiting up to {self.wait_ms} ms")
        if self.flushes:
            text += (f", paced by the kernel's neighbour table ({self.flushes} flushes, "
                     f"{self.waited:.1f} s waiting)")
        if self.retried:
            text += f"; {self.retried} probes retried alone, {self.recovered} of them reached then"
        if self.changed:
            text += (f"; {len(self.changed)} reached only on a later attempt (a lossy or slow path): "
                     + ", ".join(self.changed))
        if self.errors:
            text += f"; {self.errors} probes could not be run"
        if self.echoes_unrecorded:
            text += ("; echoes that arrive unanswered cannot be seen at " + ", ".join(self.echoes_unrecorded)
                     + " (no raw socket there)")
        if self.untraced:
            text += "; not traced (which rule stopped a probe is unknown there): " + ", ".join(self.untraced)
        if self.unaccounted:
            text += (f"; {len(self.unaccounted)} blocked by no firewall rule and refused by no stack (a route, "
                     "a neighbour or a lost packet, not the engine's filtering): " + ", ".join(self.unaccounted[:6])
                     + (", ..." if len(self.unaccounted) > 6 else ""))
        if self.stopped_by:
            text += "; packets stopped by " + ", ".join(self.stopped_by)
        elif self.confirmed:
            text += "; no firewall rule counted a dropped packet (blocks by routing, refusal or silence)"
        return text


@dataclass(frozen=True)
class Matrix:
    verdicts: tuple[Verdict, ...]
    pace: Pace | None = None

    def wrong(self, expected: bool) -> list[Verdict]:
        """Probes that were promised ``expected`` and measured otherwise (misdirected answers and
        probes that could not be run are wrong whatever was promised)."""
        return [v for v in self.verdicts if v.expected == expected and not v.ok]

    def errors(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.error]

    def find(self, source: str, target: str, proto: str = "tcp") -> list[Verdict]:
        return [v for v in self.verdicts
                if v.probe.source == source and v.probe.target == target and v.probe.proto == proto]


def addresses(lab: Lab) -> dict[str, str]:
    """Live addresses: underlay for ext and hosts, the engine's word for containers."""
    topo = lab.topology
    found = {name: node.address for name, node in lab.hosts.items()}
    for c in topo.containers:
        node = lab.containers[c.name]
        node.reload()
        # The address on the network the topology puts it on, even if connected to more.
        address = node.addresses.get(expect.network_of(topo, c.name))
        if address:
            found[c.name] = address
    return found


def measure(lab: Lab) -> Matrix:
    topo = lab.topology
    probes = expect.probes(topo, addresses(lab))
    promised = {p: expect.expected(topo, p) for p in probes}
    pacer, start = Pacer(neighbour_budget(), lambda: flush_neighbours(lab), neighbour_entries()), time.monotonic()
    before = counters(lab)
    token = os.urandom(4).hex()  # names this measurement's datagrams in the targets' arrivals
    with tracing.Trace(lab, token, probes) as trace:
        first = run_all(lab, probes, pacer=pacer, token=token)
        outcomes = dict(first.outcomes)
        retry = [p for p in probes if promised[p] and not outcomes[p].reached and not outcomes[p].error]
        again = run_all(lab, retry, pacer=pacer, sources_at_once=1, token=token)
        outcomes.update(again.outcomes)
    recorded = arrivals(lab, [p for p in probes if p.proto in ("udp", "icmp")
                              and not outcomes[p].reached and not outcomes[p].error], token)
    arrived = set(recorded.arrived) | half_open(lab, {p: outcomes[p].ports for p in probes
                               if p.proto == "tcp" and not outcomes[p].reached and outcomes[p].ports})
    for p in arrived:
        outcomes[p] = Outcome(True, why=outcomes[p].why, one_way=True, ports=outcomes[p].ports)
    names = server_names(lab)
    untraced = tuple(f"{host} ({why})" for host, why in sorted(trace.untraced.items()))
    verdicts = tuple(Verdict(p, promised[p], o.reached, o.answer, o.why, o.attempt,
                             misdirected(topo, p, o, names), o.error, o.one_way, _stopped(trace, p, o))
                     for p, o in ((p, outcomes[p]) for p in probes))
    after = counters(lab)
    stopped = tuple(f"{key} (+{after[key] - before.get(key, 0)})" for key in after
                    if after[key] > before.get(key, 0))
    sources = len({p.source for p in probes})
    changed = tuple(str(p) for p in probes if first.outcomes[p].attempt > 1) + tuple(
        f"{p} (retried alone)" for p in retry if again.outcomes[p].reached)
    pace = Pace(sources, at_once(sources), INFLIGHT, len(retry), sum(o.reached for o in again.outcomes.values()),
                pacer.flushes, pacer.waited, time.monotonic() - start, max(first.wait_ms, again.wait_ms),
                ATTEMPTS, sum(not v.reached and not v.error for v in verdicts), changed,
                sum(bool(v.error) for v in verdicts), stopped, recorded.unrecorded, untraced,
                tuple(str(v.probe) for v in verdicts if v.stopped_by == () and not v.reached
                      and v.why not in ("refused", "no-icmp-socket")))
    return Matrix(verdicts, pace)


def _stopped(trace: tracing.Trace, probe: Probe, outcome: Outcome) -> tuple[str, ...] | None:
    """The rules that dropped an unanswered probe's packets; None where that is not known: the
    probe was answered, or could not be run, or nothing was found while a host was untraced."""
    if (outcome.reached and not outcome.one_way) or outcome.error:
        return None
    found = trace.stopped_by(probe, outcome.ports)
    return found if found or not trace.untraced else None


ICMP_ARRIVALS = "/tmp/icmp.arrivals"  # a container's record of the probe echoes that reached it (image/serve)


@dataclass(frozen=True)
class Arrivals:
    arrived: frozenset[Probe]
    unrecorded: tuple[str, ...]  # targets of ICMP probes whose arrivals nobody could note


def arrivals(lab: Lab, probes: list[Probe], token: str) -> Arrivals:
    """Of UDP and ICMP probes that got no answer, those whose datagram or echo the target saw
    arrive in this measurement (its record names each sender and the measurement's token): one-way
    leaks, judged at the receiver.  A datagram is recorded by the server of the probed port (the
    one that would answer, or the one on the target's stack); an echo by the target's recorder
    (``prober icmp-arrivals``, in every container the runtime lets open a raw socket, and in ext).
    Read from each host in one shell, through the containers' own file systems (/proc/PID/root);
    ext's from the lab's own files.  A record that does not exist (a container without NET_RAW
    has no echo recorder) is named, so a verdict that could not be judged there is not hidden."""
    topo, wanted = lab.topology, {}
    for probe in probes:
        found = _recorder(topo, probe)
        if found is not None:
            wanted.setdefault(found, []).append(probe)
    seen: dict[tuple[str, str], set[str]] = {}
    by_host: dict[str, list[tuple[str, str]]] = {}
    for who, path in wanted:
        if who == "ext":
            read = lab.ext.exec(["cat", path])
            if read.ok:
                seen[(who, path)] = set(read.stdout.split("\n"))
        else:
            by_host.setdefault(topo.container(who).host, []).append((who, path))
    for host, records in by_host.items():
        script = "; ".join(f"f=/proc/{lab.containers[who].pid}/root{path}; [ -f $f ] && echo '== {who} {path}' "
                           "&& cat $f" for who, path in records)
        current = None
        for line in lab.hosts[host].exec(["sh", "-c", script]).stdout.splitlines():
            if line.startswith("== "):
                current = seen.setdefault(tuple(line[3:].split()), set())
            elif current is not None:
                current.add(line)
    return Arrivals(frozenset(p for record, mine in wanted.items() for p in mine
                              if any(line.startswith(f"{p.source}/{token} ") for line in seen.get(record, ()))),
                    tuple(sorted({record[0] for record, mine in wanted.items()
                                  if record not in seen and any(p.proto == "icmp" for p in mine)})))


def _recorder(topo, probe: Probe) -> tuple[str, str] | None:
    """Who notes the probe's arrival, and in which file: (node, path), or None where nobody can."""
    if probe.proto == "icmp":
        if probe.target == "ext":
            return "ext", EXT_ICMP_ARRIVALS
        owner = expect.stack(topo, probe.target)
        return (owner.owner, ICMP_ARRIVALS) if owner.kind == "container" else None
    found = expect.server(topo, probe.target, probe.port, "udp")
    if found is None and probe.target != "ext":  # nobody may answer: who would see it is its stack's server
        found = next(((c.name, probe.port) for c in topo.containers
                      if expect.stack(topo, c.name).owner == expect.stack(topo, probe.target).owner
                      and probe.port in c.ports), None)
    if found is None:
        return None
    who, port = found
    return who, f"{EXT_ARRIVALS}-{port}" if who == "ext" else f"/tmp/udp-{port}.arrivals"


SYN_RECV = "03"  # /proc/net/tcp's state of a connection whose SYN arrived and was answered


def half_open(lab: Lab, unanswered: dict[Probe, tuple[int, ...]]) -> set[Probe]:
    """Of TCP probes that got no answer, those whose SYN the target's stack received and answered
    while the answer was lost on the way back: the target holds a half-open connection (SYN_RECV,
    kept while it resends its SYN-ACK, about a minute) on the probed port from one of the probe's
    own source ports.  One-way leaks, judged at the receiver, as ``arrivals`` does for UDP and
    ICMP.  A host's published port is followed to where its DNAT leads (the publishing container,
    on its container port; the source port survives DNAT).  Read from each stack's own network
    namespace (a container's through /proc/PID/net on its host).  Not seen: a SYN-ACK dropped inside the
    target's own stack (its OUTPUT chain) fails to send, and the kernel then forgets the half-open
    connection at its first retransmission, 1 s later."""
    topo, tables = lab.topology, {}
    places = {p: _syn_places(topo, p) for p in unanswered}
    by_host: dict[str, list[str]] = {}
    for stack in {where for found in places.values() for where, _ in found}:
        if stack in lab.containers:
            by_host.setdefault(topo.container(stack).host, []).append(stack)
        else:  # a host, ext: a namespace of the lab, its own /proc/net
            tables[stack] = lab.node(stack).exec(["cat", "/proc/net/tcp"]).stdout
    for host, stacks in by_host.items():
        script = "; ".join(f"echo '== {t}'; cat /proc/{lab.containers[t].pid}/net/tcp 2>/dev/null" for t in stacks)
        current = None
        for line in lab.hosts[host].exec(["sh", "-c", script]).stdout.splitlines():
            if line.startswith("== "):
                current = line[3:]
                tables[current] = ""
            elif current is not None:
                tables[current] += line + "\n"
    half = {(stack, _port(fields[1]), _port(fields[2])) for stack, text in tables.items()
            for fields in (line.split() for line in text.splitlines()[1:]) if len(fields) > 3 and fields[3] == SYN_RECV}
    return {p for p, ports in unanswered.items()
            if any((stack, on, port) in half for stack, on in places[p] for port in ports)}


def _syn_places(topo, probe: Probe) -> list[tuple[str, int]]:
    """Where a probe's SYN would wait half-open: the target's stack on the probed port, and for a
    host's published port also the publishing container's on its container port."""
    found = [(probe.target, probe.port)]
    served = expect.server(topo, probe.target, probe.port, "tcp")
    if served and served[0] != probe.target and probe.target in {h.name for h in topo.hosts}:
        found.append(served)
    return found


def _port(address: str) -> int:
    """The port of /proc/net/tcp's ``0A0A0102:0050``."""
    return int(address.rsplit(":", 1)[1], 16)


def counters(lab: Lab) -> dict[str, int]:
    """Every host's stopping rules and their packet counts (``firewall.stopping``), by host."""
    with ThreadPoolExecutor(max(1, len(lab.topology.hosts))) as pool:
        found = pool.map(lambda h: (h.name, firewall.stopping(lab.hosts[h.name])), lab.topology.hosts)
    return {f"{host} {key}": n for host, rules in found for key, n in rules.items()}


def server_names(lab: Lab) -> dict[str, str]:
    """The name each serving container answers with: the hostname the runtime gave it (its own
    name for a stack of its own; host and container mode share a hostname, read live)."""
    names = {"ext": "ext"}
    for c in lab.topology.containers:
        if c.ports or c.publish:
            shared = c.mode in ("host", "container")
            names[c.name] = lab.containers[c.name].exec(["hostname"]).stdout.strip() if shared else c.name
    return names


def misdirected(topo, probe: Probe, outcome: Outcome, names: dict[str, str]) -> str:
    """Who answered a TCP probe instead of the one that must ("api on port 80"), or "" when the
    right server answered, the answer names nobody (a bare handshake), or nobody may answer."""
    if probe.proto not in ("tcp", "udp") or not outcome.reached:
        return ""
    name = re.search(r"name=(\S+)", outcome.answer)
    port = re.search(r"port=([0-9]+)", outcome.answer)
    wanted = expect.server(topo, probe.target, probe.port, probe.proto)
    if name is None or wanted is None:
        return ""
    who, on = wanted
    if name.group(1) != names.get(who, who) or (port is not None and int(port.group(1)) != on):
        return f"{name.group(1)} on port {port.group(1) if port else '?'}, not {who} on {on}"
    return ""


def at_once(sources: int) -> int:
    """How many sources probe at the same time: two per core, so a large lab queues, not collapses."""
    return max(1, min(sources, 2 * (os.cpu_count() or 1)))


def run_probes(lab: Lab, probes: list[Probe]) -> dict[Probe, str]:
    """Run probes; return those that reached, with the TCP answer."""
    return {p: o.answer for p, o in run(lab, probes).items() if o.reached}


def run(lab: Lab, probes: list[Probe], inflight: int = INFLIGHT) -> dict[Probe, Outcome]:
    """Every probe's outcome (see ``run_all``)."""
    return run_all(lab, probes, inflight).outcomes


@dataclass(frozen=True)
class Probed:
    outcomes: dict[Probe, Outcome]
    wait_ms: int = 0  # the longest wait a prober gave an attempt


def run_all(lab: Lab, probes: list[Probe], inflight: int = INFLIGHT, pacer: Pacer | None = None,
            sources_at_once: int | None = None, token: str = "") -> Probed:
    """Every probe's outcome, each source's list run by one prober, ``sources_at_once``
    sources at a time (``at_once`` unless told).

    Each source starts at a different place in the list of targets, so the sources probing at
    once do not all knock on one server at the same moment, and starts only when ``pacer``
    admits the neighbour entries it may make (two per address: its own and the target's).  A
    source whose prober gave no verdict for a probe (it could not run, or died) leaves that probe
    an error, never a "blocked"."""
    pacer = pacer or Pacer(neighbour_budget(), lambda: flush_neighbours(lab), neighbour_entries())
    by_source: dict[str, list[Probe]] = {}
    for probe in probes:
        by_source.setdefault(probe.source, []).append(probe)
    for i, (source, mine) in enumerate(by_source.items()):
        turn = i * len(mine) // len(by_source)
        by_source[source] = mine[turn:] + mine[:turn]
    outcomes, wait = {}, 0
    if not by_source:
        return Probed(outcomes)
    with ThreadPoolExecutor(sources_at_once or at_once(len(by_source))) as pool:
        for (source, source_probes), out in zip(by_source.items(), pool.map(
                lambda item: _paced(pacer, lab, *item, inflight, token), by_source.items()), strict=True):
            for line in out.splitlines():
                words = line.split(" ", 3)
                if words[0] == "done":
                    found = re.search(r"wait_ms=([0-9]+)", line)
                    wait = max(wait, int(found.group(1)) if found else 0)
                    continue
                if len(words) < 4 or not words[0].isdigit() or int(words[0]) >= len(source_probes):
                    continue
                index, status, attempt, detail = int(words[0]), words[1], words[2], words[3]
                attempt = int(attempt) if attempt.isdigit() else 0
                why, _, rest = detail.partition(" ")
                ports = re.search(r"ports=([0-9,]+)", rest)
                outcomes[source_probes[index]] = (
                    Outcome(True, detail, attempt=attempt) if status == "ok"
                    else Outcome(False, why=why, ports=tuple(int(x) for x in ports.group(1).split(",") if x != "0")
                                 if ports else ()))
            said = out.strip().splitlines()[-1:] or ["no output at all"]
            for probe in source_probes:
                if probe not in outcomes:
                    outcomes[probe] = Outcome(False, error=f"the prober on {source} gave no verdict "
                                                           f"(its last words: {said[0][:200]})")
    return Probed(outcomes, wait)


def _paced(pacer: Pacer, lab: Lab, source: str, probes: list[Probe], inflight: int, token: str) -> str:
    pacer.admit(2 * len({p.address for p in probes}))
    try:
        return _probe_from(lab, source, probes, inflight, token)
    finally:
        pacer.release()


def flush_neighbours(lab: Lab) -> None:
    """Empty the dynamic ARP entries of every namespace of the lab (hosts, ext, containers with
    a stack of their own); permanent ones, as an engine or scheme may have set, stay."""
    flush = "ip -4 neigh flush all"
    stacks: dict[str, list[int]] = {name: [] for name in lab.hosts}
    for c in lab.topology.containers:
        if c.mode not in ("host", "container", "none"):
            node = lab.containers[c.name]
            stacks[node.host].append(node.pid)
    # One shell per host that enters each of its containers' namespaces: a command per
    # container through the engine would make flushing the slowest part of a large matrix.
    scripts = {host: "; ".join([flush, *(f"nsenter --net=/proc/{pid}/ns/net {flush}" for pid in pids)])
               for host, pids in stacks.items()}
    with ThreadPoolExecutor(len(scripts)) as pool:
        list(pool.map(lambda item: lab.hosts[item[0]].exec(["sh", "-c", item[1]]), scripts.items()))


def prober_guard(probes: int, inflight: int) -> float:
    """How long a prober may run before it is taken for hung and stopped.

    The prober ends itself: each wave of ``inflight`` probes is decided within the longest
    adapted wait (3 x TIMEOUT) plus the second attempt's start, about 3.5 x TIMEOUT.  The guard
    is three times that, and 30 s more, because on a host under software emulation (QEMU TCG)
    starting a process through SSH and sudo alone takes seconds: a stopped prober leaves its
    probes "not measured", so the guard must never be what decides a verdict."""
    waves = -(-probes // inflight)
    return 3 * 3.5 * TIMEOUT * waves + 30


def _probe_from(lab: Lab, source: str, probes: list[Probe], inflight: int, token: str = "") -> str:
    """The prober's output for one source's probes.

    Every node runs the same prober (a host over SSH gets this machine's static build copied
    once), so every verdict has the same waits, attempts and one-way detection.  A prober that
    did not start, or was stopped by its guard, says so: its probes are then not measured."""
    node = lab.node(source)
    binary = probe_image.prober_on(node)
    specs = [f"icmp:{p.address}" if p.proto == "icmp" else f"{p.proto}:{p.address}:{p.port}" for p in probes]
    guard = prober_guard(len(probes), inflight)
    # A container's prober also writes what it says to a file of the container's own (gone
    # with it): an engine's exec can lose lines of its output, seen in CI on Docker 20.10 (all of
    # it, or all but six verdicts) and on 28.5 (all but the header and "done"), as in
    # moby#27289 and podman#9096.  A host's command runs as a process of its own and loses
    # nothing, so nothing is left on it.
    kept = node.kind == "container"
    argv = [binary, "-n", f"{source}/{token or '-'}", *(("-o", TRANSCRIPT) if kept else ()),
            str(TIMEOUT * 1000), str(inflight), *specs]
    done = _complete(node, node.exec(argv, timeout=guard), len(probes), kept)
    if done.rc == 0 and _lost_output(done.stdout, len(probes)):
        # Still short (no transcript on a host; none at all where the prober never started): run
        # it again, once.
        done = _complete(node, node.exec(argv, timeout=guard), len(probes), kept)
    if not done.stdout.startswith("prober 2\n"):  # it did not run: say why, never guess
        return f"the prober did not run: {(done.stdout + done.stderr).strip()[-300:] or f'exit {done.rc}'}"
    if "\ndone " in done.stdout:
        return done.stdout
    return (done.stdout + done.stderr.strip() +
            f"\nstopped after {done.duration:.0f} s (exit {done.rc}; a prober is stopped at {guard:.0f} s)")


def _complete(node, done: Result, probes: int, kept: bool) -> Result:
    """``done`` with the prober's output read back from its transcript (up to three times: the
    reading is an exec too) where the exec lost part of it; ``done`` as it is otherwise."""
    for _ in range(3 if kept and done.rc == 0 and _lost_output(done.stdout, probes) else 0):
        again = node.exec(["cat", TRANSCRIPT])
        if again.rc == 0 and not _lost_output(again.stdout, probes):
            return replace(done, stdout=again.stdout)
    return done


def _lost_output(said: str, probes: int) -> bool:
    """Whether a prober that exited cleanly said less than it always says then: its header, a
    verdict for each of its ``probes`` and "done"."""
    verdicts = {line.split(" ", 1)[0] for line in said.splitlines() if line.split(" ", 1)[0].isdigit()}
    return not said.startswith("prober 2\n") or "\ndone " not in said or len(verdicts) < probes


def table(verdicts: list[Verdict]) -> str:
    """The diff as a table people can read in a failure message."""
    rows = [("source", "target", "address", "probe", "promised", "measured")]
    for v in verdicts:
        p = v.probe
        measured = v.measured
        if v.why and not v.reached and not v.error:
            measured += f" ({v.why}, {ATTEMPTS} attempts)"
        elif v.attempt > 1:
            measured += f" (attempt {v.attempt})"
        elif v.error:
            measured += f": {v.error}"
        if v.stopped_by:
            measured += "; dropped by " + ", ".join(v.stopped_by)
        elif v.stopped_by == ():
            measured += "; no firewall rule dropped it"
        rows.append((p.source, p.target, p.address, f"{p.proto}/{p.port}" if p.port else "icmp",
                     "reach" if v.expected else "blocked", measured))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
