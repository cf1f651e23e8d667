"""iperf3 inside lab nodes: server in the target, client in the source, ``-J`` parsed.

iperf3 runs as a process in the nodes (never libiperf inside pytest); the
warm-up is omitted with ``-O``.  A run is CPU-bound when the sender or the
receiver used nearly a whole core (iperf3 3.x is single-threaded), or when
the whole machine was nearly saturated over the sample (``cpu.py``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..nodes import Node
from ..result import CommandError

PORT = 5201
CPU_BOUND = 90.0  # percent of a core


@dataclass(frozen=True)
class Sample:
    bits_per_second: float
    cpu_sender: float
    cpu_receiver: float
    retransmits: int | None
    lost_percent: float | None  # UDP
    jitter_ms: float | None  # UDP
    raw: str  # iperf3's JSON, for the report
    seconds: float  # wall time of the client command, iperf3's own run included

    @property
    def cpu_bound(self) -> bool:
        return max(self.cpu_sender, self.cpu_receiver) >= CPU_BOUND


# A path that drops the connection's packets fails in this time, not after the kernel's SYN
# retries (two minutes) times the retries for a server that is still starting.
CONNECT_TIMEOUT_MS = 3000


def server(node: Node, port: int = PORT) -> None:
    """A one-shot iperf3 server in the background of ``node`` (the client retries until it listens)."""
    node.exec(["iperf3", "-s", "-1", "-D", "-p", str(port)])


def run(source: Node, target: Node, address: str, *, seconds: int, omit: int, streams: int = 1,
        udp_rate: str | None = None, port: int = PORT, server_port: int | None = None) -> Sample:
    """One iperf3 test from ``source`` to ``address`` (served by ``target``)."""
    server(target, server_port or port)
    argv = ["iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-O", str(omit), "-J",
            "--connect-timeout", str(CONNECT_TIMEOUT_MS)]
    if streams > 1:
        argv += ["-P", str(streams)]
    if udp_rate:
        argv += ["-u", "-b", udp_rate]
    for _ in range(20):  # the server may take a moment to listen
        result = source.exec(argv, timeout=seconds + omit + 30)
        data = _json(result.stdout)
        if data and "error" not in data:
            return sample_of(data, result.stdout, result.duration)
        if "refused" not in (data or {}).get("error", "refused"):
            break  # not a server still starting: a path that does not carry the test
        time.sleep(0.1)
    raise CommandError(result, f"iperf3 {source.name} -> {address}")


def _json(text: str) -> dict | None:
    try:
        return json.loads(text)
    except ValueError:
        return None


def sample_of(data: dict, raw: str, seconds: float) -> Sample:
    """One sample from iperf3's JSON, read by the protocol the test ran.

    TCP: the receiver's rate, the sender's retransmits.  UDP: loss and jitter
    as the receiver measured them (``sum_received`` since iperf3 3.11, ``sum``
    before) and the rate that was delivered, the receiver's less what was lost.
    """
    end = data["end"]
    cpu = end.get("cpu_utilization_percent", {})
    if data["start"]["test_start"]["protocol"] == "UDP":
        received = end.get("sum_received", end["sum"])
        lost, jitter, retransmits = received["lost_percent"], received["jitter_ms"], None
        bps = received["bits_per_second"] * (1 - lost / 100)
    else:
        bps = end["sum_received"]["bits_per_second"]
        retransmits = end.get("sum_sent", {}).get("retransmits")
        lost = jitter = None
    return Sample(bps, cpu.get("host_total", 0.0), cpu.get("remote_total", 0.0), retransmits, lost,
                  jitter, raw, seconds)
