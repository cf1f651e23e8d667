"""The fault catalogue: data that loads and validates like a topology, covers every scheme and
check, and a runner that reports caught and missed faults truthfully."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from netconform import faults
from netconform.topology import TopologyError, load, resolve

from .conftest import REPO


def netconform(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netconform.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900)


def test_the_shipped_catalogue_covers_every_scheme_twice_and_every_check():
    catalogue = faults.load()
    assert len(catalogue.faults) >= 30
    schemes = Counter(load(resolve(f.topology)[0]).scheme for f in catalogue.faults)
    assert set(schemes) == {"local", "vxlan", "weave", "weave-plugin", "ovs-gre", "host-gw", "linux-bridge", "macvlan", "overlay"}
    assert min(schemes.values()) >= 2, schemes
    targeted = {f.check for f in catalogue.faults}
    assert targeted >= {"test_reachability", "test_isolation", "test_nat_rules", "test_ext_sees_host_address",
                        "test_published_port_answered_by_container", "test_link_alias_in_hosts",
                        "test_embedded_dns", "test_none_has_only_lo", "test_container_mode_shares_hostname",
                        "test_bridge_addressing", "test_underlay_carries_the_scheme", "test_path_mtu"}
    # Every branch of the wire check: GRE, each UDP port, plain, and hosts-only.
    wire = {f.message for f in catalogue.faults if f.check == "test_underlay_carries_the_scheme"}
    assert {"inside gre carrying Ethernet", "inside udp/6783", "inside udp/4789 id 42", "plain echo requests",
            "container addresses on the wire"} <= wire


def test_a_bad_catalogue_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n"
                   "  f1: {topology: nope, cause: c, check: test_nothing, message: m,\n"
                   "       inject: [{at: 'h1 h2', run: 'true'}]}\n"
                   "  f2: {topology: bridge, cause: c, check: test_reachability,\n"
                   "       inject: [{on: h1, run: 'true'}]}\n")
    with pytest.raises(TopologyError) as err:
        faults.load(bad)
    assert str(err.value).splitlines() == [
        f"{bad}: faults.f2.inject[0].True: unknown key; allowed: at, run",
        f"{bad}: faults.f2.inject[0].at: is required",
        f"{bad}: faults.f2.message: is required"]
    bad.write_text(bad.read_text().replace("{on: h1", "{at: h1").replace("test_reachability,",
                                                                         "test_reachability, message: m,"))
    lines = str(faults_error(bad)).splitlines()
    assert lines[0].startswith(f"{bad}: faults.f1.topology: 'nope' is not a shipped topology; allowed: bridge,")
    assert lines[1].startswith(f"{bad}: faults.f1.check: 'test_nothing' is not a test of the suites; allowed: ")
    assert lines[2] == f"{bad}: faults.f1.inject[0].at: 'h1 h2' is not allowed; allowed: a host, lan, ext or " \
                       "netns:CONTAINER"


def faults_error(path):
    with pytest.raises(TopologyError) as err:
        faults.load(path)
    return err.value


def test_the_cli_refuses_a_bad_catalogue_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\x00\xff binary")
    result = netconform("faults", "--catalogue", str(bad))
    assert result.returncode == 2 and str(bad) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.lab
def test_a_representative_subset_is_caught():
    """Two runs side by side (``--jobs 2``, as CI runs the catalogue); the table in the catalogue's order."""
    names = ["bridge-masquerade-deleted", "portmap-source-rewritten", "vxlan-off-the-tunnel", "ovs-tunnels-retyped"]
    result = netconform("faults", "--jobs", "2", "--only", ",".join(names))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "faults: 4 of 4 caught"
    rows = [line.split(" | ")[0].strip("| ") for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert sorted(rows, key=names.index) == rows and set(rows) == set(names)


@pytest.mark.lab
def test_a_fault_the_suite_does_not_see_is_reported_missed(tmp_path):
    """The runner can fail: a harmless 'fault' that claims to break reachability is missed."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("faults:\n"
                    "  harmless: {topology: bridge, cause: nothing really, check: test_reachability,\n"
                    "             message: blocked, inject: [{at: h1, run: 'true'}]}\n")
    result = netconform("faults", "--catalogue", str(mine))
    assert result.returncode == 1
    assert "| harmless | bridge | docker | test_reachability | - |  | **missed** |" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "faults: 0 of 1 caught"


def test_clean_verdicts_from_a_report_decide_without_building_the_lab(tmp_path):
    """--clean-from: a topology red in the given report has its faults not run (no lab is built:
    this takes no time); a directory without a conformance report is refused, naming the file."""
    report = tmp_path / "main"
    report.mkdir()
    (report / "conformance.json").write_text(json.dumps({"labs": {"bridge@netns-docker": {"checks": {
        "test_nat_rules": {"outcome": "failed", "message": "h1: no MASQUERADE"},
        "test_reachability": {"outcome": "passed", "message": ""}}}}}))
    result = netconform("faults", "--only", "bridge-masquerade-deleted", "--clean-from", str(report))
    assert result.returncode == 1
    assert "bridge on docker: clean run (from the given report) NOT green" in result.stdout
    assert "the suite is not green on bridge on docker without a fault: test_nat_rules | not run |" \
        in result.stdout
    missing = netconform("faults", "--clean-from", str(tmp_path))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"--clean-from: {tmp_path / 'conformance.json'}: not a conformance report" in missing.stderr
