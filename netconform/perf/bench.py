"""Measure one path: TCP (one stream and parallel), UDP at a fixed rate, latency.

Every metric becomes a ``Measurement``: the samples, their summary, a
CPU-bound flag, the raw iperf3 JSON, and how long the harness took around
the tools (the overhead ``bench/harness.py`` prints).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..nodes import Node
from . import iperf, latency
from .stats import Summary, summarise


@dataclass(frozen=True)
class Settings:
    samples: int = 3
    seconds: int = 2
    omit: int = 1
    streams: int = 4
    udp_rate: str = "1G"


@dataclass(frozen=True)
class Measurement:
    path: str  # kind: same-host, to-ext, ...
    route: str  # "c1 -> c2"
    metric: str  # tcp, tcp-parallel, udp, icmp-rtt, tcp-rr
    unit: str  # bit/s or us
    summary: Summary
    samples: tuple[float, ...]
    cpu_bound: bool = False
    extra: dict = field(default_factory=dict)
    raw: tuple[str, ...] = ()
    wall_seconds: float = 0.0  # the whole measurement, harness included
    tool_seconds: float = 0.0  # what the tool itself ran for

    @property
    def overhead_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.tool_seconds)


def throughput(kind: str, source: Node, target: Node, address: str, settings: Settings,
               port: int = iperf.PORT, server_port: int | None = None,
               udp: bool = True) -> list[Measurement]:
    """TCP with one stream and with parallel streams (``samples`` each), UDP at a fixed rate
    (one sample: loss and jitter; left out where only TCP is forwarded, as behind ``-p``)."""
    route = f"{source.name} -> {target.name}"
    found = []
    runs = [("tcp", 1, None, settings.samples), ("tcp-parallel", settings.streams, None, settings.samples)]
    if udp:
        runs.append(("udp", 1, settings.udp_rate, 1))
    for metric, streams, rate, count in runs:
        start = time.monotonic()
        samples = [iperf.run(source, target, address, seconds=settings.seconds, omit=settings.omit,
                             streams=streams, udp_rate=rate, port=port, server_port=server_port)
                   for _ in range(count)]
        values = [s.bits_per_second for s in samples]
        extra = {"cpu_sender": [round(s.cpu_sender, 1) for s in samples],
                 "cpu_receiver": [round(s.cpu_receiver, 1) for s in samples],
                 "streams": streams}
        if rate:
            extra.update(rate=rate, lost_percent=[s.lost_percent for s in samples],
                         jitter_ms=[s.jitter_ms for s in samples])
        else:
            extra["retransmits"] = [s.retransmits for s in samples]
        found.append(Measurement(kind, route, metric, "bit/s", summarise(values), tuple(values),
                                 any(s.cpu_bound for s in samples), extra,
                                 tuple(s.raw for s in samples), time.monotonic() - start,
                                 count * (settings.seconds + settings.omit)))
    return found


def round_trips(kind: str, source: Node, target: Node, address: str, port: int | None = None,
                settings: Settings = Settings()) -> list[Measurement]:
    route = f"{source.name} -> {target.name}"
    found = []
    start = time.monotonic()
    icmp = latency.icmp(source, address)
    found.append(_latency(kind, route, "icmp-rtt", icmp, time.monotonic() - start, 1.0))
    if port is None:  # sockperf needs a port of its own on the target; not behind DNAT
        start = time.monotonic()
        rr = latency.tcp_rr(source, target, address, settings.seconds)
        if rr is not None:
            found.append(_latency(kind, route, "tcp-rr", rr, time.monotonic() - start,
                                  settings.seconds))
    return found


def _latency(kind, route, metric, p: latency.Percentiles, wall: float, tool: float) -> Measurement:
    values = (p.p50, p.p90, p.p99)
    summary = Summary(1, p.p50, p.p50, p.p99, (p.p50, p.p50))
    return Measurement(kind, route, metric, p.unit, summary, values,
                       extra={"p50": p.p50, "p90": p.p90, "p99": p.p99, "tool": p.tool},
                       wall_seconds=wall, tool_seconds=tool)


@contextmanager
def paused_web_server(node: Node, port: int):
    """Stop a container's whoami server on ``port`` (by its PID) and start it again after."""
    pidfile = f"/tmp/serve-{port}.pid"
    node.exec(["sh", "-c", f"kill $(cat {pidfile})"]).check("pausing the web server")
    try:
        yield
    finally:
        node.exec(["sh", "-c", f"httpd -f -p {port} -h /www >/dev/null 2>&1 & echo $! > {pidfile}"])


def path_throughput(lab, path, settings: Settings) -> list[Measurement]:
    """Throughput on one of a lab's paths (``perf.paths``), through the real DNAT where published."""
    source, target = lab.node(path.source), lab.node(path.target)
    if not path.paused:
        return throughput(path.kind, source, target, path.address, settings)
    with paused_web_server(target, path.server_port):
        return throughput(path.kind, source, target, path.address, settings, port=path.port,
                          server_port=path.server_port, udp=False)


def path_round_trips(lab, path, settings: Settings) -> list[Measurement]:
    """Latency on one of a lab's paths (no sockperf behind DNAT: it needs a port of its own)."""
    return round_trips(path.kind, lab.node(path.source), lab.node(path.target), path.address,
                       port=path.port if path.paused else None, settings=settings)
