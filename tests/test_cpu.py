"""The CPU-bound flag sees the whole machine: a process other than the measured one saturating
the cores is flagged and named."""

import subprocess

from netconform.perf.cpu import Meter

LOOP = ["timeout", "1.5", "sh", "-c", "while :; do :; done"]  # one core, for exactly 1.5 s


def test_a_saturated_machine_is_flagged_and_its_busiest_process_named():
    with Meter() as meter:
        loops = [subprocess.Popen(LOOP) for _ in range(2)]
        for loop in loops:
            loop.wait()
    assert meter.use.bound, meter.use
    assert meter.use.busiest.startswith("sh (pid ") and meter.use.busiest_percent > 50, meter.use


def test_an_idle_machine_is_not_flagged():
    with Meter() as meter:
        subprocess.run(["sleep", "1"], check=True)
    assert not meter.use.bound, meter.use
