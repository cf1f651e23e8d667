"""The product as users run it: whole runs, bad input, kill -9, --keep-lab, xdist.

Each test runs pytest in a child process, as a user would, and checks the
root namespace before and after with ``rootns.take()``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from . import rootns
from .conftest import REPO, run_pytest
from .procs import sandbox_pid, wait_gone

pytestmark = pytest.mark.lab


def test_full_run_leaves_root_namespace_untouched():
    """Every topology on both runtimes, Podman 6 too (its cgroup v2 hierarchy, its lock table),
    two labs side by side: links, routes, rules, mounts, cgroups (Podman's default parent too),
    /dev/shm and daemons (conmon, aardvark-dns) as before."""
    before = rootns.take()
    result = run_pytest("-n", "2", "--dist", "loadgroup", "--topology=all", "--runtime=docker,podman",
                        "--engine=system,podman-6.1", "-m", "not bench", "--strict-skips", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\d+ passed", result.stdout)
    assert before.diff(rootns.take()) == {}


def test_bad_topology_is_a_usage_error_and_builds_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: d\nhosts: {h1: {}}\ncontainers: {c1: {host: h2}}\n")
    before = rootns.take()
    result = run_pytest(f"--topology={bad}", "suites")
    assert result.returncode == 4
    assert f"ERROR: {bad}: containers.c1.host: host 'h2' does not exist; allowed: h1" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert before.diff(rootns.take()) == {}


def test_unknown_option_values_are_usage_errors():
    for option, allowed in (("--topology=nope", "allowed: bridge, container, host"),
                            ("--provider=vm", "choose from"),
                            ("--bench-samples=0", "--bench-samples: 0 is not allowed; allowed: 1 or more"),
                            ("--bench-reserve=-5", "--bench-reserve: -5.0 is not allowed; allowed: 0 or more")):
        result = run_pytest(option, "suites")
        assert result.returncode == 4 and allowed in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_list_topologies_names_every_file():
    result = run_pytest("--list-topologies")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert names == sorted(p.stem for p in (REPO / "topologies").glob("*.yaml"))


def test_kill_9_leaves_nothing_behind():
    before = rootns.take()
    child = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                              "--topology=user-defined", "suites"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sandbox = sandbox_pid(child.pid)
    time.sleep(1.0)  # mid-setup: engines up, containers being made
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    wait_gone(sandbox)
    assert before.diff(rootns.take()) == {}


def test_keep_lab_prints_working_commands_and_removal():
    before = rootns.take()
    result = run_pytest("--topology=bridge", "--keep-lab", "suites/test_reachability.py")
    assert result.returncode == 0, result.stdout[-2000:]
    enter_h1 = re.search(r"enter h1\s+(.*)", result.stdout).group(1)
    enter_c1 = re.search(r"enter c1\s+(.*)", result.stdout).group(1)
    pid = int(re.search(r"remove\s+kill (\d+)", result.stdout).group(1))
    try:
        ran = subprocess.run(enter_h1.removesuffix(" sh").split() + ["ip", "-o", "-4", "addr"],
                             capture_output=True, text=True)
        assert "198.18.0.1/24" in ran.stdout
        ran = subprocess.run(enter_c1.replace(" -it ", " ").removesuffix(" sh").split() + ["hostname"],
                             capture_output=True, text=True)
        assert ran.stdout.strip() == "c1", ran.stderr
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_gone(pid)
    assert before.diff(rootns.take()) == {}


def test_xdist_runs_labs_side_by_side(tmp_path):
    """Two labs at once, and the report as complete as without xdist: the controller writes it
    from what the workers knew of each lab (topology, engine, realisation, matrix), which
    netconform report's comparisons need."""
    before = rootns.take()
    result = run_pytest("-n", "2", "--dist", "loadgroup", "-rs", "--topology=bridge,link",
                        f"--report-dir={tmp_path}", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "benchmarks do not run under pytest-xdist" in result.stdout
    assert before.diff(rootns.take()) == {}
    labs = json.loads((tmp_path / "conformance.json").read_text())["labs"]
    for lab_id in ("bridge@netns-docker", "link@netns-docker"):
        assert labs[lab_id]["topology"] == lab_id.split("@")[0] and labs[lab_id]["engine"]["version"]
        assert labs[lab_id]["matrix"] and labs[lab_id]["realised"] and labs[lab_id]["checks"]


def test_missing_prerequisite_skips_with_its_reason(tmp_path):
    """A scheme the machine cannot realise is skipped, saying why; nothing is built."""
    (tmp_path / "no_vxlan.py").write_text(
        "from netconform.schemes.vxlan import Vxlan\n"
        "Vxlan.missing = lambda self: 'the kernel cannot create vxlan links: (simulated)'\n")
    before = rootns.take()
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no_vxlan",
                             "-rs", "--topology=vxlan", "suites"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "passed" not in result.stdout.splitlines()[-1]
    assert "the kernel cannot create vxlan links: (simulated)" in result.stdout
    assert before.diff(rootns.take()) == {}
