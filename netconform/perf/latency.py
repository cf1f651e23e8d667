"""Latency: ICMP round trips (ping) and TCP request/response round trips (sockperf)."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from ..nodes import Node

SOCKPERF_PORT = 11111


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


def icmp(source: Node, address: str, count: int = 100) -> Percentiles:
    """Round-trip times of ``count`` pings 10 ms apart, in microseconds."""
    out = source.exec(["busybox", "ping", "-c", str(count), "-i", "0.01", address],
                      timeout=count * 0.05 + 10).check("ping").stdout
    rtts = sorted(float(t) * 1000 for t in re.findall(r"time=([0-9.]+) ms", out))
    if len(rtts) < 2:
        raise LatencyError(f"ping {source.name} -> {address}: {len(rtts)} of {count} replies")
    cuts = statistics.quantiles(rtts, n=100, method="inclusive")
    return Percentiles(cuts[49], cuts[89], cuts[98], len(rtts), rtts[0], rtts[-1], tool="busybox ping")


def tcp_rr(source: Node, target: Node, address: str, seconds: int = 2) -> Percentiles:
    """Full round trips of small TCP messages (sockperf ping-pong); LatencyError saying why not."""
    for node in (source, target):
        if not node.exec(["sh", "-c", "command -v sockperf"]).ok:
            raise LatencyError(f"sockperf is not installed on {node.name}")
    server = target.exec(["sh", "-c", f"sockperf sr --tcp -p {SOCKPERF_PORT} >/dev/null 2>&1 & echo $!"])
    try:
        for _ in range(20):
            result = source.exec(["sockperf", "pp", "--tcp", "-i", address, "-p", str(SOCKPERF_PORT),
                                  "-t", str(seconds), "--full-rtt"], timeout=seconds + 20)
            found = dict(re.findall(r"percentile (\d+)\.000 =\s+([0-9.]+)", result.stdout))
            count = re.search(r"Total (\d+) observations", result.stdout)
            low = re.search(r"<MIN> observation =\s+([0-9.]+)", result.stdout)
            high = re.search(r"<MAX> observation =\s+([0-9.]+)", result.stdout)
            if {"50", "90", "99"} <= found.keys() and count and low and high:
                return Percentiles(float(found["50"]), float(found["90"]), float(found["99"]),
                                   int(count.group(1)), float(low.group(1)), float(high.group(1)),
                                   tool="sockperf ping-pong")
        raise LatencyError(f"sockperf {source.name} -> {address}: no percentiles "
                           f"({str(result).splitlines()[0][:200]})")
    finally:  # hosts may be someone else's machines: leave no server behind
        target.exec(["kill", server.stdout.strip()])
