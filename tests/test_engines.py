"""Engine builds: fetched without touching the machine's apt, run as the lab's engines, compared."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from .conftest import REPO, run_pytest

from netconform import engines
from netconform.checks.nat import why_blocked
from netconform.measure import measure
from netconform.reporting import across
from netconform.schemes.base import Scheme
from netconform.schemes.routed import HostGw

NEWEST = "docker-28.5"


def test_engine_option_names_what_is_allowed():
    assert engines.parse("all") == list(engines.RELEASES)
    assert engines.parse("docker-28.5, system,docker-28.5") == ["docker-28.5", "system"]
    with pytest.raises(ValueError, match="docker-27.0 is not an engine; allowed: system, docker-20.10"):
        engines.parse("docker-27.0")
    result = run_pytest("--topology=bridge", "--engine=docker-27.0", "suites")
    assert result.returncode == 4 and "--engine: docker-27.0 is not an engine" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_pytest("--topology=bridge", "--engine=all", "--provider=vagrant", "suites")
    assert result.returncode == 4 and "allowed there: system" in result.stderr


def test_ids_name_the_engine_and_the_default_is_the_system_one():
    listed = run_pytest("--topology=bridge", "--engine=system,docker-26.1", "--collect-only", "-q",
                        "suites/test_reachability.py").stdout
    assert "test_reachability[bridge@netns-docker]" in listed
    assert "test_reachability[bridge@netns-docker-26.1]" in listed
    plain = run_pytest("--topology=bridge", "--collect-only", "-q", "suites/test_reachability.py").stdout
    assert "test_reachability[bridge@netns-docker]" in plain and "docker-" not in plain


def _apt_state() -> dict[str, str]:
    """What fetching must leave alone: apt's configuration, lists and dpkg's database."""
    paths = [*Path("/etc/apt").rglob("*"), *Path("/var/lib/apt/lists").glob("*"), Path("/var/lib/dpkg/status")]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


@pytest.mark.lab
def test_fetch_uses_a_private_apt_and_reports_substitutes():
    before = _apt_state()
    done = subprocess.run([sys.executable, "-m", "netconform.cli", "engines", "fetch", "docker-26.1"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _apt_state() == before
    build = engines.resolve("docker-26.1")
    assert "docker.io 26.1." in done.stdout and build.missing() is None
    # Debian 13's runc needs a newer C library than Debian 12's: the system's is used, and said so.
    assert [s.tool for s in build.substitutes] == ["runc"] and "GLIBC_2.38" in build.substitutes[0].reason
    assert (build.bindir / "runc").resolve() == Path(build.substitutes[0].used).resolve()


@pytest.mark.lab
def test_a_fetched_engine_runs_its_own_binaries_in_each_host(live_lab):
    lab = live_lab("bridge", engine=NEWEST)
    assert lab.runtime.version().startswith("28.5.")
    assert lab.runtime.engines["h1"].client.version()["Version"].startswith("28.5.")
    exes = lab.hosts["h1"].exec(["sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done"]).stdout.split()
    cache = str(engines.root() / NEWEST)
    assert any(e.startswith(cache) and e.endswith("/dockerd") for e in exes), exes
    assert any(e.startswith(cache) and e.endswith("/containerd") for e in exes), exes
    assert lab.id == "bridge@netns-docker-28.5"


@pytest.mark.lab
def test_host_gw_with_docker_28s_default_is_red_and_says_why(live_lab, monkeypatch):
    """Without the opt-out the scheme needs, Docker 28's direct-routing guard drops every routed
    probe to a container, and the failure names the rules that do it."""
    monkeypatch.setattr(HostGw, "engine_args", Scheme.engine_args)  # the engine's default
    lab = live_lab("host-gw", engine=NEWEST)
    blocked = measure(lab).wrong(expected=True)
    assert blocked and all(lab.containers.get(v.probe.target) for v in blocked)
    why = why_blocked(lab, blocked)
    assert "direct-routing guard" in why
    target = blocked[0].probe
    assert f"-A PREROUTING -d {target.address}/32 ! -i docker0 -j DROP" in why


@pytest.mark.lab
def test_host_gw_on_docker_28_is_realised_with_the_documented_opt_out(live_lab):
    lab = live_lab("host-gw", engine=NEWEST)
    assert "--allow-direct-routing" in lab.runtime.flags
    assert measure(lab).wrong(expected=True) == []
    assert "--allow-direct-routing" in lab.scheme.realised_in(lab)


def test_engines_comparison_puts_differences_first():
    def lab(name, version, isolation, reached):
        return {"topology": "portmap", "provider": "netns", "realised": "Docker's default bridge",
                "engine": {"name": name, "version": version},
                "checks": {"test_nat_rules": {"outcome": "passed", "message": ""},
                           "test_isolation": {"outcome": isolation, "message": "known deviation dev-a (...)"}},
                "matrix": [{"source": "ext", "target": "web", "proto": "tcp", "port": 80, "promised": False,
                            "reached": reached}]}
    labs = {"portmap@netns-docker-28.5": lab("docker-28.5", "28.5.2+dfsg4-5", "passed", False),
            "portmap@netns-docker": lab("system", "20.10.24+dfsg1", "xfailed", True)}
    records = [{"lab": "portmap@netns-docker", "path": "p", "metric": "tcp", "unit": "bit/s", "median": 4e9},
               {"lab": "portmap@netns-docker-28.5", "path": "p", "metric": "tcp", "unit": "bit/s", "median": None}]
    doc = across.compare(across.ENGINES, labs, records)
    (group,) = doc["groups"]
    assert list(group["labs"]) == ["system 20.10.24", "docker-28.5 28.5.2"]  # oldest first: the reference
    assert group["checks"][0] == {"check": "test_isolation", "agree": False,
                                  "values": {"system 20.10.24": "xfailed (dev-a)", "docker-28.5 28.5.2": "passed"}}
    assert group["probes_differing"][0]["values"] == {"system 20.10.24": True, "docker-28.5 28.5.2": False}
    (m,) = group["measurements"]
    assert m["values"]["docker-28.5 28.5.2"] is None and m["ratios"]["docker-28.5 28.5.2"] is None
    text = across.markdown(across.ENGINES, doc)
    assert "| ext -> web tcp/80 | - | + | - |" in text and "failed" in text
