"""Measure one path: TCP (one stream and parallel), UDP at a fixed rate, latency.

Every metric becomes a ``Measurement``: the samples, their summary, a
CPU-bound flag, the raw iperf3 JSON, and how long the harness took around
the tools (the overhead ``bench/harness.py`` prints).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from ..nodes import Node
from ..result import CommandError
from . import cpu, iperf, latency
from .stats import Summary, summarise


@dataclass(frozen=True)
class Settings:
    samples: int = 3
    seconds: int = 2
    omit: int = 1
    streams: int = 4
    udp_rate: str = "1G"
    machine_cpu: bool = True  # meter this machine's CPU (the nodes run on its kernel)


@dataclass(frozen=True)
class Measurement:
    """One metric on one path.  A measurement that failed keeps its error and has no summary:
    a figure that was not measured is absent, never zero."""

    path: str  # kind: same-host, to-ext, ...
    route: str  # "c1 -> c2"
    metric: str  # tcp, tcp-parallel, udp, icmp-rtt, tcp-rr
    unit: str  # bit/s or us
    summary: Summary | None
    samples: tuple[float, ...]
    cpu_bound: bool = False
    extra: dict = field(default_factory=dict)
    raw: tuple[str, ...] = ()
    wall_seconds: float = 0.0  # the whole measurement, harness included
    tool_seconds: float = 0.0  # what the tool itself ran for
    error: str | None = None  # why it could not be measured

    @classmethod
    def failed(cls, path: str, route: str, metric: str, unit: str, error: Exception,
               wall: float) -> Measurement:
        return cls(path, route, metric, unit, None, (), error=str(error), wall_seconds=wall)

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
        samples, uses = [], []
        try:
            for _ in range(count):
                with cpu.Meter() as meter:
                    samples.append(iperf.run(source, target, address, seconds=settings.seconds,
                                             omit=settings.omit, streams=streams, udp_rate=rate,
                                             port=port, server_port=server_port))
                uses.append(meter.use if settings.machine_cpu else None)
        except CommandError as err:
            found.append(Measurement.failed(kind, route, metric, "bit/s", err, time.monotonic() - start))
            continue
        values = [s.bits_per_second for s in samples]
        extra = {"cpu_sender": [round(s.cpu_sender, 1) for s in samples],
                 "cpu_receiver": [round(s.cpu_receiver, 1) for s in samples],
                 "machine_cpu": [str(u) if u else "not metered (not this machine's kernel)"
                                 for u in uses],
                 "streams": streams}
        if rate:
            extra.update(rate=rate, lost_percent=[s.lost_percent for s in samples],
                         jitter_ms=[s.jitter_ms for s in samples])
        else:
            extra["retransmits"] = [s.retransmits for s in samples]
        bound = any(s.cpu_bound for s in samples) or any(u and u.bound for u in uses)
        found.append(Measurement(kind, route, metric, "bit/s", summarise(values), tuple(values),
                                 bound, extra,
                                 tuple(s.raw for s in samples), time.monotonic() - start,
                                 count * (settings.seconds + settings.omit)))
    return found


def round_trips(kind: str, source: Node, target: Node, address: str, port: int | None = None,
                settings: Settings = Settings(), pinger: Node | None = None) -> list[Measurement]:
    """ICMP round trips (from ``pinger``: the source's stack, by default the source itself), and
    TCP request/response round trips where the target has a port of its own for sockperf (not
    behind DNAT); a series that fails is recorded with its error."""
    route = f"{source.name} -> {target.name}"
    series = [("icmp-rtt", lambda: latency.icmp(pinger or source, address), 1.0)]
    if port is None:
        series.append(("tcp-rr", lambda: latency.tcp_rr(source, target, address, settings.seconds),
                       settings.seconds))
    found = []
    for metric, measure, tool in series:
        start = time.monotonic()
        try:
            found.append(_latency(kind, route, metric, measure(), time.monotonic() - start, tool))
        except (latency.LatencyError, CommandError) as err:
            found.append(Measurement.failed(kind, route, metric, "us", err, time.monotonic() - start))
    return found


def _latency(kind, route, metric, p: latency.Percentiles, wall: float, tool: float) -> Measurement:
    """Percentiles of one series of ``p.count`` round trips: median p50, min and max the extreme
    round trips, and no confidence interval (there is one series, not repeated samples)."""
    summary = Summary(p.count, p.p50, p.min, p.max, None)
    return Measurement(kind, route, metric, p.unit, summary, (p.p50, p.p90, p.p99),
                       extra={"p50": p.p50, "p90": p.p90, "p99": p.p99, "round_trips": p.count,
                              "tool": p.tool},
                       wall_seconds=wall, tool_seconds=tool)


@contextmanager
def paused_web_server(node: Node, port: int):
    """Stop a container's whoami server on ``port`` (by its PID) and start it again after."""
    pidfile = f"/tmp/serve-{port}.pid"
    node.exec(["sh", "-c", f"kill $(cat {pidfile})"]).check("pausing the web server")
    try:
        yield
    finally:
        node.exec(["sh", "-c", f"/prober serve {port} >/dev/null 2>&1 & echo $! > {pidfile}"])


def path_throughput(lab, path, settings: Settings) -> list[Measurement]:
    """Throughput on one of a lab's paths (``perf.paths``), through the real DNAT where published."""
    source, target = lab.node(path.source), lab.node(path.target)
    settings = replace(settings, machine_cpu=lab.provider.local_kernel)
    if not path.paused:
        return throughput(path.kind, source, target, path.address, settings)
    with paused_web_server(target, path.server_port):
        return throughput(path.kind, source, target, path.address, settings, port=path.port,
                          server_port=path.server_port, udp=False)


def path_round_trips(lab, path, settings: Settings) -> list[Measurement]:
    """Latency on one of a lab's paths (no sockperf behind DNAT: it needs a port of its own).
    ICMP goes from the source's stack with the host's busybox ping, whatever capabilities the
    engine gives the container (the ping check reports those): the figure is the datapath's."""
    return round_trips(path.kind, lab.node(path.source), lab.node(path.target), path.address,
                       port=path.port if path.paused else None, settings=settings,
                       pinger=lab.stack_tools(path.source))
