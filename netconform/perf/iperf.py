"""iperf3 inside lab nodes: server in the target, client in the source, ``-J`` parsed.

iperf3 runs as a process in the nodes (never libiperf inside pytest).  A
sample is one iperf3 test, timed (``-t``) or sized (``-n``: a number of
bytes, so that a sample can last a fraction of a second), with client and
server pinned to given cores (``-A client,server``).  A run is CPU-bound
when the sender or the receiver used nearly a whole core (iperf3 3.x is
single-threaded), or when the whole machine was nearly saturated over the
sample (``cpu.py``).  A figure iperf3 cannot have meant (UDP loss outside
0-100 %) is the tool's error (``ToolError``), never a figure.
"""

from __future__ import annotations

import json
import secrets
import time
from contextlib import contextmanager
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


class ToolError(ValueError):
    """iperf3 reported something it cannot have meant; the message says what."""


LISTEN_WAIT = 5.0  # seconds a port may take to open or close (``await_port``)


def await_port(node: Node, port: int, listening: bool, what: str) -> None:
    """Wait until a TCP socket listens on ``port`` in ``node``'s network stack (or, with
    ``listening`` false, until none does), read from /proc/net/tcp and tcp6 (state 0A), or
    raise CommandError naming ``what`` after ``LISTEN_WAIT``.  A client cannot tell by itself:
    behind a userland proxy (docker-proxy, on a port Docker publishes where DNAT does not apply,
    as for traffic that arrives on the engine's own bridge) the proxy accepts the connection
    and resets it when the container's port is not open yet, which the client sees as the
    path's failure, not as a server still starting."""
    pattern = f":{port:04X} [0-9A-F]+:[0-9A-F]{{4}} 0A "
    negate = "" if listening else "!"
    script = (f"i=0; while [ $i -lt {int(LISTEN_WAIT / 0.05)} ]; do "
              f"{negate} grep -qE '{pattern}' /proc/net/tcp /proc/net/tcp6 2>/dev/null && exit 0; "
              "sleep 0.05; i=$((i+1)); done; exit 1")
    node.exec(["sh", "-c", script], timeout=LISTEN_WAIT + 30).check(what)


@contextmanager
def server(node: Node, port: int = PORT, core: int | None = None):
    """An iperf3 server in the background of ``node`` for a series of tests, listening before
    the first test (``await_port``), ended by its PID afterwards."""
    pidfile = f"/tmp/iperf3-{port}-{secrets.token_hex(3)}.pid"
    argv = ["iperf3", "-s", "-D", "-p", str(port), "-I", pidfile]
    node.exec(argv + (["-A", str(core)] if core is not None else []))
    try:
        await_port(node, port, True, f"iperf3's server on {node.name} listening on port {port}")
        yield
    finally:
        node.exec(["sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null; rm -f {pidfile}"])


def run(source: Node, address: str, *, seconds: int = 1, size: int | None = None,
        streams: int = 1, udp_rate: int | None = None, port: int = PORT,
        cores: tuple[int, int] | None = None) -> Sample:
    """One iperf3 test from ``source`` to ``address``, whose server is running (``server``):
    ``size`` bytes if given, else ``seconds``; client and server on ``cores`` if given."""
    argv = ["iperf3", "-c", address, "-p", str(port), "-J", "--connect-timeout", str(CONNECT_TIMEOUT_MS)]
    argv += ["-n", str(size)] if size else ["-t", str(seconds)]
    if cores:
        argv += ["-A", f"{cores[0]},{cores[1]}"]
    if streams > 1:
        argv += ["-P", str(streams)]
    if udp_rate:
        argv += ["-u", "-b", str(udp_rate)]
    timeout = (seconds if not size else 5) + 30
    # iperf3's server opens its listening socket for each test and closes it after (esnet/iperf's
    # iperf_run_server, cleanup_server): a test right after another can be refused for a moment.
    for _ in range(20):
        result = source.exec(argv, timeout=timeout)
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
    before) and the rate that was delivered, the receiver's less what was lost.  Loss
    outside 0-100 % (iperf3 3.12 reports over 100 % when a rate above what the path carries
    meets ``-O``, esnet/iperf#1489) raises ToolError: no goodput can be computed from it.
    """
    end = data["end"]
    cpu = end.get("cpu_utilization_percent", {})
    if data["start"]["test_start"]["protocol"] == "UDP":
        received = end.get("sum_received", end["sum"])
        lost, jitter, retransmits = received["lost_percent"], received["jitter_ms"], None
        if not 0 <= lost <= 100:
            raise ToolError(f"iperf3 reported lost_percent {lost:g} (outside 0-100: "
                            f"{received.get('lost_packets')} of {received.get('packets')} datagrams): "
                            "the tool's error, not a figure")
        bps = received["bits_per_second"] * (1 - lost / 100)
    else:
        bps = end["sum_received"]["bits_per_second"]
        retransmits = end.get("sum_sent", {}).get("retransmits")
        lost = jitter = None
    return Sample(bps, cpu.get("host_total", 0.0), cpu.get("remote_total", 0.0), retransmits, lost,
                  jitter, raw, seconds)
