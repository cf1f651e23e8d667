"""Measure the reachability matrix in a live lab and diff it with the promise.

Each source node runs all its probes in one busybox shell script, the
probes in parallel inside it, and all sources run at once: a whole matrix
costs about one probe timeout.  TCP probes fetch the whoami page, so an
answer also says who served it and which peer address the server saw (the
NAT checks read those).  Probes that should have reached but did not get
one more try, since fresh links can take a moment to pass traffic.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import expect
from .expect import Probe
from .lab import Lab

TIMEOUT = 2  # seconds a single probe waits
REQUEST = r"GET /cgi-bin/whoami HTTP/1.0\r\n\r\n"


@dataclass(frozen=True)
class Verdict:
    probe: Probe
    expected: bool
    reached: bool
    answer: str = ""  # the whoami line, for TCP probes that reached

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
class Matrix:
    verdicts: tuple[Verdict, ...]

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
    reached = run_probes(lab, probes)
    retry = [p for p in probes if promised[p] and p not in reached]
    reached.update(run_probes(lab, retry))
    return Matrix(tuple(Verdict(p, promised[p], p in reached, reached.get(p, "")) for p in probes))


def run_probes(lab: Lab, probes: list[Probe]) -> dict[Probe, str]:
    """Run probes; return those that reached, with the TCP answer."""
    by_source: dict[str, list[Probe]] = {}
    for probe in probes:
        by_source.setdefault(probe.source, []).append(probe)
    reached: dict[Probe, str] = {}
    if not by_source:
        return reached
    with ThreadPoolExecutor(len(by_source)) as pool:
        for source_probes, out in zip(by_source.values(), pool.map(
                lambda item: _script_output(lab, *item), by_source.items()), strict=True):
            for line in out.splitlines():
                index, _, rest = line.partition(" ")
                status, _, answer = rest.partition(" ")
                if index.isdigit() and status == "ok":
                    reached[source_probes[int(index)]] = answer
    return reached


def _script_output(lab: Lab, source: str, probes: list[Probe]) -> str:
    lines = []
    for i, p in enumerate(probes):
        if p.proto == "icmp":
            test = f"busybox ping -c 1 -W {TIMEOUT} {p.address} >/dev/null 2>&1 && a=reached"
        else:
            test = (f"a=$(printf '{REQUEST}' | busybox nc -w {TIMEOUT} {p.address} {p.port} "
                    f"2>/dev/null | grep name=)")
        lines.append(f'({test}; [ -n "$a" ] && echo "{i} ok $a" || echo "{i} fail") &')
    lines.append("wait")
    result = lab.node(source).exec(["busybox", "sh", "-c", "\n".join(lines)], timeout=TIMEOUT * 5 + 5)
    return result.stdout


def table(verdicts: list[Verdict]) -> str:
    """The diff as a table people can read in a failure message."""
    rows = [("source", "target", "address", "probe", "promised", "measured")]
    for v in verdicts:
        p = v.probe
        rows.append((p.source, p.target, p.address, f"tcp/{p.port}" if p.port else "icmp",
                     "reach" if v.expected else "blocked", "reached" if v.reached else "blocked"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
