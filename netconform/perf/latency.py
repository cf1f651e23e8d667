"""Latency: ICMP round trips (ping) and TCP request/response round trips (the prober's rr)."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass

from ..image import prober_on
from ..nodes import Node

RR_PORT = 11111


@dataclass(frozen=True)
class Percentiles:
    """Round-trip percentiles of one series, with how many round trips they rest on."""

    p50: float
    p90: float
    p99: float
    count: int
    min: float
    max: float
    unit: str = "us"
    tool: str = ""


class LatencyError(RuntimeError):
    """A latency series could not be measured; the message says why."""


ICMP_COUNT, ICMP_INTERVAL = 100, 0.005  # pings, seconds apart: half a second a path


def icmp(source: Node, address: str, count: int = ICMP_COUNT) -> Percentiles:
    """Round-trip times of ``count`` pings ``ICMP_INTERVAL`` apart, in microseconds."""
    out = source.exec(["busybox", "ping", "-c", str(count), "-i", str(ICMP_INTERVAL), address],
                      timeout=count * 0.05 + 10).check("ping").stdout
    rtts = sorted(float(t) * 1000 for t in re.findall(r"time=([0-9.]+) ms", out))
    if len(rtts) < 2:
        raise LatencyError(f"ping {source.name} -> {address}: {len(rtts)} of {count} replies")
    cuts = statistics.quantiles(rtts, n=100, method="inclusive")
    return Percentiles(cuts[49], cuts[89], cuts[98], len(rtts), rtts[0], rtts[-1], tool="busybox ping")


def tcp_rr(source: Node, target: Node, address: str, seconds: float = 1) -> Percentiles:
    """Round trips of small TCP messages on one connection for ``seconds`` (the prober's rr
    against its echo server, started on the target for the series and ended by its PID);
    LatencyError saying why not."""
    server = target.exec(["sh", "-c", f"{prober_on(target)} echo {RR_PORT} >/dev/null 2>&1 & echo $!"])
    try:
        client = prober_on(source)
        for _ in range(20):  # the server may take a moment to listen
            result = source.exec([client, "rr", address, str(RR_PORT), str(seconds)], timeout=seconds + 20)
            found = re.fullmatch(r"rr (\d+) ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9.]+)\n?", result.stdout)
            if found:
                count, low, p50, p90, p99, high = found.groups()
                return Percentiles(float(p50), float(p90), float(p99), int(count), float(low), float(high),
                                   tool="prober rr (16-byte messages, TCP_NODELAY)")
            if "refused" not in result.stderr:
                break
            time.sleep(0.05)
        raise LatencyError(f"prober rr {source.name} -> {address}: "
                           f"{(result.stdout + result.stderr).strip()[-200:] or f'exit {result.rc}'}")
    finally:  # hosts may be someone else's machines: leave no server behind
        target.exec(["kill", server.stdout.strip()])
