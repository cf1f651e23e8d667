"""Progress lines: a line per lab phase with its time, through pytest's terminal reporter;
none with -q, and none from xdist workers."""

from __future__ import annotations

import re

import pytest

from .conftest import run_pytest

pytestmark = pytest.mark.lab
LINE = re.compile(r"^\[ *[0-9.]+ s\] bridge@netns-docker: (.+) \(([0-9.]+) s\)$", re.M)


def test_each_phase_of_a_lab_is_a_line_with_its_time():
    done = run_pytest("--topology=bridge", "-m", "not bench", "suites/test_reachability.py")
    assert done.returncode == 0, done.stdout[-2000:]
    phases = [what for what, _ in LINE.findall(done.stdout)]
    assert phases == ["1 host up on netns", "engines started (docker)", "scheme local set up",
                      "2 containers started", "torn down"], done.stdout


@pytest.mark.parametrize("quiet", [["-q"], ["-n", "2"]], ids=["quiet", "xdist"])
def test_no_lines_with_quiet_or_xdist(quiet):
    done = run_pytest("--topology=bridge", "-m", "not bench", *quiet, "suites/test_reachability.py")
    assert done.returncode == 0, done.stdout[-2000:]
    assert not LINE.findall(done.stdout), done.stdout
