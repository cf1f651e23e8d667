"""The wheel is the product: built, installed into a fresh venv, and used from an unrelated directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.lab


def _run(argv: list[str], cwd, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_the_wheel_installs_and_runs_the_shipped_suites_from_anywhere(tmp_path):
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                  str(REPO)], cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("netconform-*.whl")
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path).returncode == 0
    installed = _run([str(venv / "bin/pip"), "install", "-q", str(wheel)], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(venv / "bin/python"), "-c", "import netconform; print(netconform.__file__)"], elsewhere)
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not the checkout

    listed = _run([str(venv / "bin/pytest"), "--list-topologies"], elsewhere)
    assert listed.returncode == 0 and "xhost-portmap" in listed.stdout, listed.stdout + listed.stderr
    dry = _run([str(venv / "bin/pytest"), "--topology=host-gw", "--engine=docker-28.5", "--dry-run"], elsewhere)
    assert dry.returncode == 0 and "--allow-direct-routing" in dry.stdout, dry.stdout + dry.stderr
    for command in ("engines", "faults", "run", "report", "topologies"):
        helped = _run([str(venv / "bin/netconform"), command, "--help"], elsewhere)
        assert helped.returncode == 0 and "usage: netconform" in helped.stdout, command
    lab = _run([str(venv / "bin/netconform"), "run", "--topology=bridge", "-m", "not bench", "-p",
                "no:cacheprovider", f"--report-dir={elsewhere / 'reports'}"], elsewhere)
    assert lab.returncode == 0, lab.stdout[-3000:] + lab.stderr[-2000:]
    assert "passed" in lab.stdout and (elsewhere / "reports" / "conformance.json").exists()
