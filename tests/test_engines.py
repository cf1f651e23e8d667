"""Engine builds: fetched without touching the machine's apt, run as the lab's engines, compared."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netconform import engines
from netconform.checks import nat
from netconform.checks.nat import why_blocked
from netconform.lab import Lab
from netconform.measure import measure
from netconform.plan import PlanNode
from netconform.reporting import across
from netconform.result import Result
from netconform.runtimes.base import Unavailable
from netconform.runtimes.docker import DockerRuntime
from netconform.schemes.base import Scheme
from netconform.schemes.routed import HostGw

from .conftest import REPO, run_pytest, topology

NEWEST = "docker-28.5"


def test_engine_option_names_what_is_allowed():
    # every build as packaged; a variant (another firewall driver) only by name
    assert engines.parse("all") == [r for r in engines.RELEASES if r != "podman-5.8-iptables"]
    assert engines.parse("podman-5.8-iptables") == ["podman-5.8-iptables"]
    variant = engines.resolve("podman-5.8-iptables")
    assert variant.firewall == "iptables" and variant.bindir == engines.resolve("podman-5.8").bindir
    # all: every distinct build of each runtime, the system's Podman 4.3 among them (Docker's system
    # build here is Debian 12's 20.10, which docker-20.10 is)
    listed = run_pytest("--collect-only", "-q", "--topology=bridge", "--runtime=docker,podman", "--engine=all", "suites")
    ids = set(re.findall(r"\[(bridge@[a-z0-9.-]+)\]", listed.stdout))
    assert ids == {"bridge@netns-docker-20.10", "bridge@netns-docker-26.1", "bridge@netns-docker-28.5",
                   "bridge@netns-podman", "bridge@netns-podman-5.4", "bridge@netns-podman-5.8",
                   "bridge@netns-podman-6.1"}, listed.stdout[-2000:]
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
    # Each host's engine has its own state, socket and network namespace.
    for host in (h.name for h in lab.topology.hosts):
        pid = lab.hosts[host].read(f"/run/lab/docker/{host}/docker.pid").strip()
        argv = lab.hosts[host].read(f"/proc/{pid}/cmdline").split("\0")
        assert argv[argv.index("--data-root") + 1] == f"/run/lab/docker/{host}/data"
        assert argv[argv.index("--exec-root") + 1] == f"/run/lab/docker/{host}/exec"
        assert f"unix:///run/lab/docker/{host}/docker.sock" in argv
        own = lab.hosts[host].exec(["readlink", "/proc/self/ns/net"]).stdout.strip()
        assert lab.hosts[host].exec(["readlink", f"/proc/{pid}/ns/net"]).stdout.strip() == own


def test_engines_comparison_lists_a_promise_that_changed_between_versions_first():
    """A deviation that held on some versions of its runtime and not on another (Podman 6 isolates
    networks) leads the deviations table; one that holds on every version of its runtime, or
    belongs to another runtime, follows."""
    def lab(name, version, excused):
        message = "known deviation (...). Excused 3 observation(s) (" + ", ".join(
            f"{d} excused 3" for d in excused) + ")"
        return {"topology": "user-defined", "provider": "netns", "realised": "r",
                "engine": {"name": name, "version": version}, "matrix": [],
                "checks": {"test_isolation": {"outcome": "xfailed" if excused else "passed",
                                              "message": message if excused else ""}}}
    both = ["podman-routed-neighbour-reaches-containers", "podman-networks-not-isolated"]
    labs = {"u@netns-docker": lab("system", "20.10.24", []),
            "u@netns-podman": lab("podman", "4.3.1", both), "u@netns-podman-5.8": lab("podman-5.8", "5.8.6", both),
            "u@netns-podman-6.1": lab("podman-6.1", "6.1.1", both[:1])}
    doc = across.compare(across.ENGINES, labs, [])
    first, second = doc["deviations"]
    assert first == {"deviation": "podman-networks-not-isolated", "changes": True, "labs": {
        "system 20.10.24": [], "podman 4.3.1": ["user-defined"], "podman-5.8 5.8.6": ["user-defined"],
        "podman-6.1 6.1.1": []}}
    assert second["deviation"] == "podman-routed-neighbour-reaches-containers" and not second["changes"]
    assert "| podman-networks-not-isolated | - | user-defined | user-defined | - | **changes** |" in \
        across.markdown(across.ENGINES, doc)


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
    assert "--allow-direct-routing" in lab.realised()


def test_engines_comparison_puts_differences_first():
    def lab(name, version, isolation, reached):
        return {"topology": "portmap", "provider": "netns", "realised": "Docker's default bridge",
                "engine": {"name": name, "version": version},
                "checks": {"test_nat_rules": {"outcome": "passed", "message": ""},
                           "test_isolation": {"outcome": isolation, "message": "known deviation dev-a (...)"}},
                "matrix": [{"source": "ext", "target": "web", "proto": "tcp", "port": 80, "promised": False,
                            "reached": reached}]}
    labs = {"portmap@netns-docker-28.5": lab("docker-28.5", "28.5.2+dfsg4-5", "passed", False),
            "portmap@netns-docker": lab("system", "20.10.24+dfsg1", "xfailed", True),
            "portmap@netns-docker-20.10": lab("docker-20.10", "20.10.24+dfsg1", "xfailed", True),
            "portmap@netns-docker-26.1": lab("docker-26.1", "26.1.5+dfsg1", "xfailed", True)}
    labs["portmap@netns-docker"]["checks"]["test_throughput"] = {"outcome": "passed", "message": ""}
    records = [{"lab": "portmap@netns-docker", "path": "p", "metric": "tcp", "unit": "bit/s", "median": 4e9},
               {"lab": "portmap@netns-docker-26.1", "path": "p", "metric": "tcp", "unit": "bit/s", "median": 2e9},
               {"lab": "portmap@netns-docker-28.5", "path": "p", "metric": "tcp", "unit": "bit/s", "median": None}]
    doc = across.compare(across.ENGINES, labs, records)
    (group,) = doc["groups"]
    columns = ["docker-20.10 20.10.24", "system 20.10.24", "docker-26.1 26.1.5", "docker-28.5 28.5.2"]
    assert list(group["labs"]) == columns  # oldest first: the reference
    assert group["checks"][0] == {"check": "test_isolation", "agree": False, "values": dict(zip(
        columns, ["xfailed (dev-a)"] * 3 + ["passed"], strict=True))}
    # A check only one engine ran (the benchmarks) differs from nothing.
    assert next(c for c in group["checks"] if c["check"] == "test_throughput")["agree"]
    assert group["probes_differing"][0]["values"] == dict(zip(columns, [True, True, True, False], strict=True))
    (m,) = group["measurements"]
    # docker-20.10 did not measure: the row's reference is the first engine that did.
    assert m["measured"] == columns[1:] and m["reference"] == "system 20.10.24"
    assert m["ratios"] == {"docker-26.1 26.1.5": 0.5, "docker-28.5 28.5.2": None}
    text = across.markdown(across.ENGINES, doc)
    assert "| ext -> web tcp/80 | - | + | + | + | - |" in text
    assert "| p | tcp | not measured | 4.00 Gbit/s | 2.00 Gbit/s (× 0.50) | failed |" in text
    assert "| test_throughput | not run | passed | not run | not run |  |" in text


def test_engines_comparison_reads_another_runtime_against_docker():
    """Podman's columns come after Docker's builds (the reference is Docker's), though their version
    numbers are lower, oldest first, and a check it fails expectedly for its own deviation differs."""
    def lab(name, version, isolation):
        return {"topology": "bridge", "provider": "netns", "realised": "default bridge",
                "engine": {"name": name, "version": version},
                "checks": {"test_isolation": {"outcome": isolation, "message": isolation == "xfailed" and
                                              "known deviation podman-routed-neighbour-reaches-containers (...)"
                                              or ""}},
                "matrix": [{"source": "ext", "target": "c1", "proto": "icmp", "port": None, "promised": False,
                            "reached": isolation == "xfailed"}]}
    labs = {"bridge@netns-podman-6.1": lab("podman-6.1", "6.1.1+ds1-1+b1", "xfailed"),
            "bridge@netns-podman": lab("podman", "4.3.1", "xfailed"),
            "bridge@netns-docker-28.5": lab("docker-28.5", "28.5.2+dfsg4-5", "passed"),
            "bridge@netns-podman-5.4": lab("podman-5.4", "5.4.2+ds1-2+b2", "xfailed"),
            "bridge@netns-docker": lab("system", "20.10.24+dfsg1", "passed")}
    (group,) = across.compare(across.ENGINES, labs, [])["groups"]
    assert list(group["labs"]) == ["system 20.10.24", "docker-28.5 28.5.2", "podman 4.3.1", "podman-5.4 5.4.2",
                                   "podman-6.1 6.1.1"]
    del labs["bridge@netns-podman-6.1"], labs["bridge@netns-podman-5.4"], labs["bridge@netns-docker-28.5"]
    doc = across.compare(across.ENGINES, labs, [])
    (group,) = doc["groups"]
    assert group["checks"][0]["values"] == {
        "system 20.10.24": "passed", "podman 4.3.1": "xfailed (podman-routed-neighbour-reaches-containers)"}
    assert "| ext -> c1 icmp | - | - | + |" in across.markdown(across.ENGINES, doc)


@pytest.mark.lab
def test_checks_read_the_rules_an_engine_wrote_with_iptables_legacy(live_lab, tmp_path):
    """A host whose iptables is the legacy backend: the engine's rules are invisible to
    iptables-nft, and the NAT checks still find every one of them."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    legacy = {"iptables": "iptables-legacy", "iptables-save": "iptables-legacy-save",
              "iptables-restore": "iptables-legacy-restore", "ip6tables": "ip6tables-legacy"}
    for tool, backend in legacy.items():
        (bindir / tool).symlink_to(f"/usr/sbin/{backend}")
    for tool in ("dockerd", "docker-proxy", "docker-init"):
        (bindir / tool).symlink_to(shutil.which(tool))
    lab = live_lab("portmap", engines.EngineBuild("legacy-iptables", bindir))
    host = lab.hosts["h1"]
    assert "nat" in host.exec(["cat", "/proc/net/ip_tables_names"]).stdout.split()  # the engine's legacy table
    assert "DOCKER" not in host.exec(["iptables-nft", "-t", "nat", "-S"]).stdout  # nft sees none of it
    assert nat.missing_rules(lab) == []
    assert measure(lab).wrong(expected=True) == []


class _Lacking(PlanNode):
    """A host that has none of the engine's tools."""

    def exec(self, argv, timeout=30, input=None):
        super().exec(argv, timeout, input)
        return Result(tuple(argv), 0, "dockerd\ncontainerd\n", "", 0.0)


def test_a_host_lacking_the_engine_is_found_on_the_host_before_any_engine_starts(monkeypatch):
    steps: list[str] = []
    host = _Lacking("h1", "host", "198.18.0.1", "eth1", steps, "/var/lib/netconform")
    reason = DockerRuntime().missing_on(host)
    assert reason.startswith("docker runtime: host h1 lacks dockerd, containerd")
    assert steps and steps[0].startswith("h1$ sh -c 'command -v dockerd")  # asked on the host itself
    monkeypatch.setattr(DockerRuntime, "missing_on", lambda self, node: f"{node.name} lacks dockerd")
    lab = Lab(topology("bridge"))
    with pytest.raises(Unavailable, match="h1 lacks dockerd"):
        lab.__enter__()
    assert lab.runtime.engines == {}  # no engine was started
    assert lab.sandbox.process.poll() is not None  # and the half-built lab is gone
