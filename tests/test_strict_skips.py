"""--strict-skips: a skip is a result; only the user's selection and allowed kernel limits pass."""

from __future__ import annotations

import re

import pytest

from .conftest import run_pytest

pytestmark = pytest.mark.lab

NO_SBIN = {"PATH": "/usr/bin:/bin"}  # dockerd and iptables live in /usr/sbin


def test_a_missing_tool_is_a_skip_without_strict_and_a_failure_with_it():
    """A host without dockerd (probed on the host, before any engine starts) skips its lab."""
    lax = run_pytest("--topology=bridge", "-k", "test_nat_rules", "suites", env=NO_SBIN)
    assert lax.returncode == 0 and "1 skipped" in lax.stdout, lax.stdout[-2000:]
    assert re.search(r"SKIPPED \S+test_nat_rules\[bridge@netns-docker\]: docker runtime: host h1 lacks "
                     r"dockerd, docker-proxy, iptables", lax.stdout)
    strict = run_pytest("--topology=bridge", "-k", "test_nat_rules", "--strict-skips", "suites", env=NO_SBIN)
    assert strict.returncode == 1, strict.stdout[-2000:]
    assert "--strict-skips: skipped without an allowed reason: docker runtime: host h1 lacks dockerd" \
        in strict.stdout


def test_the_users_selection_and_allowed_limits_pass_strict():
    result = run_pytest("--topology=overlay", "-m", "not bench", "--strict-skips", "-k",
                        "ingress or host_mode_shares", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout[result.stdout.index("netconform: "):]
    assert "--strict-skips: allowed environment limits: no-ipvs" in summary
    assert re.search(r"SKIPPED \S+test_overlay_ingress_routing_mesh\[overlay@netns-docker\]: "
                     r"\[limit:no-ipvs\] the kernel has no IPVS", summary)
    assert "[selection] no chosen topology has host" in summary


def test_what_a_runtime_lacks_is_a_declared_skip_that_strict_accepts(tmp_path):
    """Docker has no per-network DNS servers: network-dns's lab is never built on it, the skip says
    what the runtime declares, --strict-skips accepts it, and the report records the unbuilt lab
    with the engine's version (a Docker lab that never started must still name its engine)."""
    result = run_pytest("--topology=network-dns", "--strict-skips", "-rs", f"--report-dir={tmp_path}",
                        "-k", "test_network_dns and not update", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"SKIPPED \S+test_network_dns\[network-dns@netns-docker\]: \[unsupported:docker:network-dns\] "
                     r"Docker has no DNS servers of a network's own", result.stdout), result.stdout[-3000:]
    assert "not built: [unsupported:docker:network-dns]" in (tmp_path / "conformance.md").read_text()


def test_an_unknown_limit_is_a_usage_error():
    result = run_pytest("--allow-skip=no-such-thing", "--topology=bridge", "suites")
    assert result.returncode == 4
    assert "--allow-skip: no-such-thing is not a known limit; allowed: no-ipvs, no-vxlan, no-macvlan" \
        in result.stderr


def test_a_check_with_nothing_to_check_is_a_skip_not_a_pass():
    """Overlay plans no container addresses: bridge addressing must say so, not pass."""
    result = run_pytest("--topology=overlay", "-k", "test_bridge_addressing", "suites")
    assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout[-2000:]
    assert "no bridged container has an address plan to check (scheme overlay plans none)" in result.stdout



@pytest.mark.lab
def test_a_lab_with_nothing_to_measure_skips_its_benchmarks_saying_why(tmp_path):
    """A user's first file is often hosts and no containers: the benchmarks are a skip with the
    reason, which --strict-skips accepts (the user's own selection), not a failure."""
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: bare\ndescription: one host, no containers\nhosts: {h1: {}}\n")
    result = run_pytest("-m", "bench", f"--topology={bare}", "--strict-skips", "-rs", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "bare@netns-docker offers no path to measure" in result.stdout
    assert "2 skipped" in result.stdout and "failed" not in result.stdout
