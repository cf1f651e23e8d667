"""The whole machine's CPU over a measurement: /proc/stat (softirq included) and the busiest process.

iperf3 reports only its own CPU; a sample can be CPU-bound with iperf3 at
half a core while ovs-vswitchd or softirq processing fills the rest.  The
meter reads this machine's /proc, where every lab process of the netns
provider is visible, before and after a sample.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
HZ = os.sysconf("SC_CLK_TCK")
MACHINE_BOUND = 90.0  # percent of all cores
# Processes that are part of a measurement, by exact name: the tools, the datapath's daemons and
# the engines a sample is started through; and the kernel's own threads, by their families'
# prefixes.  Anything else using a quarter of a core meanwhile competes with the measurement
# (``CpuUse.intruder``), also a shell or busybox (the wrappers a sample is started through wait,
# they never use a core).
MEASURED = frozenset({"iperf3", "prober", "ping", "ovs-vswitchd", "weaver", "docker-proxy", "dockerd",
                      "containerd", "containerd-shim", "runc", "podman", "conmon", "crun", "slirp4netns",
                      "rootlessport"})
KERNEL = ("ksoftirqd/", "kworker/", "rcu_", "migration/", "swapper", "irq/")


@dataclass(frozen=True)
class CpuUse:
    """CPU use over one interval."""

    busy_percent: float  # of all cores: everything but idle and iowait
    softirq_percent: float  # of all cores
    busiest: str  # "ovs-vswitchd (pid 812)"
    busiest_percent: float  # of one core
    intruder: str = "none"  # the busiest process outside the measurement (not MEASURED, not us)
    intruder_percent: float = 0.0  # of one core
    steal_percent: float = 0.0  # of one core: time the hypervisor ran something else on our cores

    @property
    def competitor(self) -> tuple[str, float]:
        """What competed with the measurement most, and how much of a core it took: a process
        outside the measurement, or the hypervisor (steal: another guest on our cores)."""
        if self.steal_percent > self.intruder_percent:
            return "the hypervisor (steal time)", self.steal_percent
        return self.intruder, self.intruder_percent

    @property
    def bound(self) -> bool:
        return self.busy_percent >= MACHINE_BOUND

    def __str__(self) -> str:
        return (f"machine {self.busy_percent:.0f}% busy (softirq {self.softirq_percent:.0f}%), "
                f"busiest {self.busiest} at {self.busiest_percent:.0f}% of a core")


@dataclass(frozen=True)
class _Snapshot:
    at: float
    cpu: tuple[int, ...]  # the aggregate "cpu" line of /proc/stat
    processes: dict[int, tuple[str, int]]  # pid -> (comm, utime + stime ticks)


def _snapshot() -> _Snapshot:
    cpu = tuple(int(x) for x in (PROC / "stat").read_text().splitlines()[0].split()[1:])
    processes = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = text[text.index("(") + 1: text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        processes[int(entry.name)] = (comm, int(fields[11]) + int(fields[12]))
    return _Snapshot(time.monotonic(), cpu, processes)


def _busy(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[float, float, int]:
    """(busy, softirq) percent of all cores between two aggregate /proc/stat lines, and the
    steal ticks between them."""
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8]) or 1  # user nice system idle iowait irq softirq steal
    return 100.0 * (total - delta[3] - delta[4]) / total, 100.0 * delta[6] / total, delta[7]


class Meter:
    """``with Meter() as m: ...`` then ``m.use``: the machine's CPU over the block.

    Processes are sampled every ``interval`` seconds while the block runs, so
    that short-lived ones (each iperf3 sample's client and server) are counted
    before they exit.
    """

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.use: CpuUse | None = None

    def __enter__(self) -> Meter:
        self._first = self._last = _snapshot()
        self._ticks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._account(_snapshot())

    def _account(self, now: _Snapshot) -> None:
        """Add each process's CPU since the last snapshot (a new one's since it started)."""
        for pid, (comm, used) in now.processes.items():
            grew = used - self._last.processes.get(pid, (comm, 0))[1]
            self._ticks[pid] = (comm, self._ticks.get(pid, (comm, 0))[1] + max(grew, 0))
        self._last = now

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        last = _snapshot()
        self._account(last)
        busy, softirq, steal = _busy(self._first.cpu, last.cpu)
        seconds = max(last.at - self._first.at, 1e-6)
        pid, (comm, ticks) = _busiest(self._ticks.items())
        other, (name, used) = _busiest((pid, use) for pid, use in self._ticks.items()
                                       if pid != os.getpid() and use[0] not in MEASURED and not use[0].startswith(KERNEL))
        self.use = CpuUse(busy, softirq, f"{comm} (pid {pid})", 100.0 * ticks / HZ / seconds,
                          f"{name} (pid {other})", 100.0 * used / HZ / seconds, 100.0 * steal / HZ / seconds)


def measurement_core() -> int | None:
    """The core a measurement's client and server share: the last this process may use, so the
    others keep the harness and the lab's daemons; None on one core (nothing to keep off it).
    On one core a sample is one pipeline (send, the datapath's softirq work, receive), so its
    figure is the path's cost per byte; client and server on two cores varied twice as much
    here (cache lines moving between cores, each core's share of other work)."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return usable[-1] if len(usable) >= 2 else None


@contextmanager
def kept_off(cores: set[int]):
    """The calling thread (the harness's, and what it starts meanwhile: the meter's thread and the
    commands, which inherit its affinity) on the machine's other cores while a measurement holds
    ``cores``; as it was after.  The tools pin themselves (iperf3 -A) from wherever they were
    started.  sched_setaffinity(0) sets the calling thread only, so threads started before keep
    theirs."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    others = before - cores
    if others:
        os.sched_setaffinity(0, others)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _busiest(items) -> tuple[int, tuple[str, int]]:
    return max(items, key=lambda item: item[1][1], default=(0, ("none", 0)))
