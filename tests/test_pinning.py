"""The lab's own processes are kept off the measurement's core for a series, and given back
their masks after; a path that loses segments is sampled longer."""

import os
import time
from pathlib import Path

import pytest

from netconform.perf import iperf
from netconform.perf.baseline import veth_pair
from netconform.perf.bench import Ends, Settings, series
from netconform.result import CommandError
from netconform.sandbox import Sandbox

pytestmark = pytest.mark.lab


def _child(process) -> int:
    """The command nsenter started (in the sandbox's pid namespace), as this namespace numbers it."""
    for _ in range(50):
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("nsenter started nothing")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: nothing to keep a process off")
def test_the_labs_processes_leave_the_measurement_core_and_come_back(tmp_path):
    core = max(os.sched_getaffinity(0))
    sandbox = Sandbox.start("pin0")
    try:
        daemon = sandbox.spawn(["sleep", "30"], None, tmp_path / "daemon.log")
        inside, before = _child(daemon), os.sched_getaffinity(_child(daemon))
        ours = os.sched_getaffinity(0)
        with sandbox.kept_off({core}):
            assert os.sched_getaffinity(inside) == before - {core}
            assert os.sched_getaffinity(0) == ours  # not the lab's: left alone
        assert os.sched_getaffinity(inside) == before
        daemon.kill()
    finally:
        sandbox.close()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: nothing to keep a process off")
def test_a_failed_restore_is_reported_and_the_blocks_own_error_wins(monkeypatch):
    """Processes left off a core would slow every later series of the lab unnoticed: a restore
    that fails is an error; but where the measurement itself failed, that error is the one told."""
    core = max(os.sched_getaffinity(0))
    sandbox = Sandbox.start("pin1")
    real = Sandbox.run

    def restore_fails(self, argv, netns=None, input=None, timeout=30):
        return real(self, ["false"] if argv[-1] == "restore" else argv, netns, input, timeout)

    monkeypatch.setattr(Sandbox, "run", restore_fails)
    try:
        with pytest.raises(CommandError, match="giving the lab's processes their cores back"):
            with sandbox.kept_off({core}):
                pass
        with pytest.raises(ZeroDivisionError):
            with sandbox.kept_off({core}):
                1 / 0
    finally:
        sandbox.close()


def test_a_path_that_loses_segments_is_sampled_longer_beside_more_reference_samples():
    """One packet in twenty dropped on the way in (with veth's offloads a packet carries up to
    64 KB, so a 20 MB warm-up loses about fifteen; none, with a chance of 3e-7): the warm-up
    retransmits, and the series' samples last ``lossy_seconds``; the same pair without the drop
    keeps ``seconds``.  Paired with a reference that does not lose, each 0.5 s sample of the path
    has three 0.1 s ones of the reference beside it, one pair's ratio against their geometric
    mean; beside a 0.1 s sample, one."""
    core = max(os.sched_getaffinity(0))  # pinned as the bench pins (unpinned, a veth pair may drop too)
    settings = Settings(samples=2, max_samples=2, seconds=0.1, lossy_seconds=0.5, machine_cpu=False,
                        cores=(core, core))
    with veth_pair() as (a, b), veth_pair() as (c, d):
        reference = Ends(c, d, d.address)
        clean = series(Ends(a, b, b.address), settings, reference=reference)
        assert clean.seconds == 0.1 and [len(group) for group in clean.references] == [1, 1]
        b.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(iperf.PORT), "-m", "statistic",
                "--mode", "random", "--probability", "0.05", "-j", "DROP"]).check("drop 5 %")
        taken = series(Ends(a, b, b.address), settings, reference=reference)
    assert taken.seconds == 0.5 and taken.samples[0].retransmits, taken.samples
    assert taken.reference_seconds == 0.1 and [len(group) for group in taken.references] == [3, 3]
    group = [s.bits_per_second for s in taken.references[0]]
    assert taken.pairs()[0] == pytest.approx((taken.samples[0].bits_per_second,
                                              (group[0] * group[1] * group[2]) ** (1 / 3)))
