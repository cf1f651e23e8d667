"""Measure the reachability matrix in a live lab and diff it with the promise.

Each source node runs its whole list of probes from one process, the
prober (``image/prober.c``: non-blocking sockets, ICMP and TCP, at most
``INFLIGHT`` open at once, each with its own deadline), and a bounded
number of sources probe at once, sized to the machine's cores, so the
answers do not depend on how large the lab is.  TCP probes fetch the
whoami page, so an answer also says who served it and which peer address
the server saw (the NAT checks read those).  A probe promised to reach that
did not is tried again alone before it is reported: one source at a time,
only retries in flight, each with the full timeout, so nothing of the first
pass's load is left; ``Pace`` says how the measurement was paced and how
many probes only a retry reached.  Hosts without the prober
(machines over SSH) run the same probes as one busybox script.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import expect
from . import image as probe_image
from .expect import Probe
from .lab import Lab
from .pacing import Pacer, neighbour_budget

TIMEOUT = 2  # seconds a probe waits at most (the prober waits less once it has measured answers)
INFLIGHT = 16  # probes one prober keeps open at once
PROBER = "/prober"  # in the image; hosts sharing this machine's file system run the cached build
REQUEST = r"GET /cgi-bin/whoami HTTP/1.0\r\n\r\n"


@dataclass(frozen=True)
class Verdict:
    probe: Probe
    expected: bool
    reached: bool
    answer: str = ""  # the whoami line, for TCP probes that reached
    why: str = ""  # how a probe that did not reach ended: timeout, refused, unreachable, noanswer

    @property
    def ok(self) -> bool:
        return self.expected == self.reached

    @property
    def served_by(self) -> str:
        found = re.search(r"name=(\S+)", self.answer)
        return found.group(1) if found else ""

    @property
    def peer(self) -> str:
        """The client address the server saw, without IPv4-mapped IPv6 dressing."""
        found = re.search(r"peer=\[?(?:::ffff:)?([0-9.]+)\]?", self.answer)
        return found.group(1) if found else ""


@dataclass(frozen=True)
class Pace:
    """How a matrix was measured: how many sources probed at once and what had to be retried."""

    sources: int
    at_once: int  # sources probing at the same time
    inflight: int  # probes each source kept open at once
    retried: int = 0  # promised probes that did not reach and were tried again alone
    recovered: int = 0  # of those, reached when alone: the load's doing, not the network's
    flushes: int = 0  # times the lab's neighbour tables were emptied to stay under the kernel's limit
    waited: float = 0.0  # seconds sources waited for that (pacing.py)
    seconds: float = 0.0  # the whole measurement, retries included

    def __str__(self) -> str:
        text = (f"{self.sources} sources, {self.at_once} at a time, up to {self.inflight} probes "
                f"in flight each, {self.seconds:.1f} s")
        if self.flushes:
            text += (f", paced by the kernel's neighbour table ({self.flushes} flushes, "
                     f"{self.waited:.1f} s waiting)")
        if self.retried:
            text += f"; {self.retried} probes retried alone, {self.recovered} of them reached then"
        return text


@dataclass(frozen=True)
class Matrix:
    verdicts: tuple[Verdict, ...]
    pace: Pace | None = None

    def wrong(self, expected: bool) -> list[Verdict]:
        """Probes that were promised ``expected`` and measured otherwise."""
        return [v for v in self.verdicts if v.expected == expected and not v.ok]

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
    pacer, start = Pacer(neighbour_budget(), lambda: flush_neighbours(lab)), time.monotonic()
    outcomes = run(lab, probes, quick={p for p in probes if not promised[p]}, pacer=pacer)
    retry = [p for p in probes if promised[p] and not outcomes[p].reached]
    again = run(lab, retry, pacer=pacer, sources_at_once=1)
    outcomes.update(again)
    sources = len({p.source for p in probes})
    pace = Pace(sources, at_once(sources), INFLIGHT, len(retry), sum(o.reached for o in again.values()),
                pacer.flushes, pacer.waited, time.monotonic() - start)
    return Matrix(tuple(Verdict(p, promised[p], outcomes[p].reached, outcomes[p].answer, outcomes[p].why)
                        for p in probes), pace)


@dataclass(frozen=True)
class Outcome:
    reached: bool
    answer: str = ""  # the whoami line (tcp), "reply" (icmp)
    why: str = ""  # timeout, refused, unreachable, noanswer, error


def at_once(sources: int) -> int:
    """How many sources probe at the same time: two per core, so a large lab queues, not collapses."""
    return max(1, min(sources, 2 * (os.cpu_count() or 1)))


def run_probes(lab: Lab, probes: list[Probe]) -> dict[Probe, str]:
    """Run probes; return those that reached, with the TCP answer."""
    return {p: o.answer for p, o in run(lab, probes).items() if o.reached}


def run(lab: Lab, probes: list[Probe], inflight: int = INFLIGHT, quick: set[Probe] = frozenset(),
        pacer: Pacer | None = None, sources_at_once: int | None = None) -> dict[Probe, Outcome]:
    """Every probe's outcome, each source's list run by one prober, ``sources_at_once``
    sources at a time (``at_once`` unless told).

    ``quick`` probes are promised to be blocked: the prober may stop waiting for them early.
    Each source starts at a different place in the list of targets, so the sources probing at
    once do not all knock on one server at the same moment, and starts only when ``pacer``
    admits the neighbour entries it may make (two per address: its own and the target's)."""
    pacer = pacer or Pacer(neighbour_budget(), lambda: flush_neighbours(lab))
    by_source: dict[str, list[Probe]] = {}
    for probe in probes:
        by_source.setdefault(probe.source, []).append(probe)
    for i, (source, mine) in enumerate(by_source.items()):
        turn = i * len(mine) // len(by_source)
        by_source[source] = mine[turn:] + mine[:turn]
    outcomes = {p: Outcome(False, why="no answer line") for p in probes}
    if not by_source:
        return outcomes
    with ThreadPoolExecutor(sources_at_once or at_once(len(by_source))) as pool:
        for source_probes, out in zip(by_source.values(), pool.map(
                lambda item: _paced(pacer, lab, *item, inflight, quick), by_source.items()), strict=True):
            for line in out.splitlines():
                index, _, rest = line.partition(" ")
                status, _, detail = rest.partition(" ")
                if index.isdigit() and int(index) < len(source_probes):
                    outcomes[source_probes[int(index)]] = (Outcome(True, detail) if status == "ok"
                                                           else Outcome(False, why=detail))
    return outcomes


def _paced(pacer: Pacer, lab: Lab, source: str, probes: list[Probe], inflight: int, quick: set[Probe]) -> str:
    pacer.admit(2 * len({p.address for p in probes}))
    try:
        return _probe_from(lab, source, probes, inflight, quick)
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


def _probe_from(lab: Lab, source: str, probes: list[Probe], inflight: int, quick: set[Probe]) -> str:
    """The prober's output for one source's probes (busybox's, where the node has no prober)."""
    node = lab.node(source)
    binary = PROBER if node.kind == "container" else str(probe_image.prober())
    specs = [("?" if p in quick else "") + (f"icmp:{p.address}" if p.proto == "icmp" else
                                            f"tcp:{p.address}:{p.port}") for p in probes]
    waves = -(-len(probes) // inflight)
    out = node.exec([binary, str(TIMEOUT * 1000), str(inflight), *specs], timeout=TIMEOUT * (waves + 2) + 5).stdout
    if out.startswith("prober 1\n"):
        return out
    return _script_output(node, probes)


def _script_output(node, probes: list[Probe]) -> str:
    """The probes as one busybox script, all at once, for hosts that cannot run the prober."""
    lines = []
    for i, p in enumerate(probes):
        if p.proto == "icmp":
            test = f"busybox ping -c 1 -W {TIMEOUT} {p.address} >/dev/null 2>&1 && a=reply"
        else:
            test = (f"a=$(printf '{REQUEST}' | busybox nc -w {TIMEOUT} {p.address} {p.port} "
                    f"2>/dev/null | grep name=)")
        lines.append(f'({test}; [ -n "$a" ] && echo "{i} ok $a" || echo "{i} fail timeout") &')
    lines.append("wait")
    return node.exec(["busybox", "sh", "-c", "\n".join(lines)], timeout=TIMEOUT * 5 + 5).stdout


def table(verdicts: list[Verdict]) -> str:
    """The diff as a table people can read in a failure message."""
    rows = [("source", "target", "address", "probe", "promised", "measured")]
    for v in verdicts:
        p = v.probe
        rows.append((p.source, p.target, p.address, f"tcp/{p.port}" if p.port else "icmp",
                     "reach" if v.expected else "blocked",
                "reached" if v.reached else f"blocked ({v.why})" if v.why else "blocked"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
