"""The VM and real-host providers: box, accelerator probe, Vagrantfile, inventory, plan, ledger,
fidelity; and whole runs on VMs (vagrant) and on VMs treated as someone else's machines (ssh)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from netconform import inventory
from netconform.reporting import across
from netconform.ledger import State, changes, snapshot, undo_script
from netconform.providers.vagrant import VagrantProvider
from netconform.sandbox import Sandbox
from netconform.topology import TopologyError
from netconform.vm import accel, box
from netconform.vm.vagrantfile import Guest, render

from . import rootns
from .conftest import REPO, run_pytest, topology
from .procs import sandbox_pid, wait_gone

VM_TOPOLOGY = "vxlan"  # two hosts: what CI can afford under software emulation (the ssh provider's run)
# The vagrant run: two hosts of Weave Net, whose datapath is the kernel's to decide: fast datapath
# on the VMs' Debian kernel (openvswitch), sleeve on this machine's (netns), compared side by side.
WEAVE_VM_TOPOLOGY = "weave-plugin"


def test_box_is_rebuilt_only_when_its_package_list_changes(monkeypatch):
    first = box.digest()
    assert box.digest() == first
    monkeypatch.setattr(box, "PACKAGES", (*box.PACKAGES, "netcat-openbsd"))
    assert box.digest() != first


def test_vagrantfile_has_one_isolated_guest_per_host():
    text = render(topology("ovs"), Guest("netconform/debian12", driver="qemu"))
    assert re.findall(r'config.vm.define "(\w+)"', text) == ["h1", "h2", "h3"]
    assert re.findall(r'libvirt__iface_name: "(\w+)"', text) == ["h1", "h2", "h3"]
    assert text.count('libvirt__network_name: "lan"') == 3 and "libvirt__dhcp_enabled: false" in text
    assert 'management_network_mode = "none"' in text  # isolated: no forwarding
    assert 'libvirt.driver = "qemu"' in text and 'cpu_model = "qemu64"' in text
    assert "host-passthrough" in render(topology("ovs"), Guest("b", driver="kvm"))


def test_kvm_probe_tells_a_booting_kernel_from_one_that_does_not():
    built = box.cached()
    if not built.kernel.exists():
        pytest.skip("no box built (netconform box)")
    reached, last = accel.boots(built.kernel, "tcg", seconds=120)
    assert reached, last  # software emulation always boots it: the probe's yardstick
    chosen = accel.choose(built.kernel)
    assert chosen.driver in ("kvm", "qemu") and chosen.notice


@pytest.mark.parametrize("text, key", [
    ("ssh_from: nowhere\nhosts: {h1: {address: a, user: u, key: k, underlay: eth1}}\next: {netns: /x}",
     "ssh_from: 'nowhere' is not allowed; allowed: a network namespace path"),
    ("ssh_from: host\nhosts: {h1: {address: a, user: u, key: k}}\next: {netns: /x}",
     "hosts.h1.underlay: is required"),
    ("ssh_from: host\nhosts: {h1: {address: a, user: u, key: k, underlay: eth1, port: x}}\next: {netns: /x}",
     "hosts.h1.port: 'x' is not allowed; allowed: a number"),
    ("ssh_from: host\nhosts: {h1: {address: a, user: u, key: k, underlay: eth1, pw: x}}\next: {netns: /x}",
     "hosts.h1.pw: unknown key; allowed: address, user, key, underlay, port"),
    ("ssh_from: host\nhosts: {h1: {address: a, user: u, key: k, underlay: eth1}}\n",
     "ext: must be {netns: PATH}"),
])
def test_bad_inventory_names_file_key_and_what_is_allowed(tmp_path, text, key):
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as err:
        inventory.load(path)
    assert f"{path}: {key}" in str(err.value)


def test_inventory_must_cover_the_topology_before_anything_runs(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text("ssh_from: /run/netns/none\nhosts: {h1: {address: a, user: u, key: k, underlay: eth1}}\n"
                    "ext: {netns: /run/netns/none}\n")
    result = run_pytest("--provider=ssh", f"--inventory={path}", "--topology=vxlan", "suites")
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert f"{path}: hosts.h2: missing; topology 'vxlan' needs it (its hosts: h1, h2)" in result.stderr
    result = run_pytest("--provider=ssh", "--topology=vxlan", "suites")
    assert result.returncode == 4 and "--inventory: (option): is required with --provider ssh" in result.stderr


def test_dry_run_prints_the_plan_and_builds_nothing():
    before = rootns.take()
    result = run_pytest("--topology=ovs", "--provider=vagrant", "--dry-run", "suites")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "provider vagrant: vagrant up h1, h2, h3" in result.stdout
    assert "h1$ ovs-vsctl" in result.stdout or "add-port br-phy eth1" in result.stdout
    assert re.search(r"h2\$ dockerd .*--bip 172\.30\.2\.1/22", result.stdout)
    assert "h3 engine.api.create_host_config(network_mode='bridge', init=True, port_bindings={80: 8080}" \
        in result.stdout
    assert "name='web'" in result.stdout
    assert before.diff(rootns.take()) == {}


def test_ledger_undoes_what_it_did_not_find():
    before = State(frozenset({"lo", "eth1"}), frozenset({"lo", "eth1"}), frozenset(),
                   frozenset({("eth1", "198.18.0.1/24")}),
                   frozenset({"default via 198.18.0.254 dev eth1"}), "*filter\nCOMMIT", (("net.ipv4.ip_forward", "0"),))
    now = State(frozenset({"lo", "eth1", "br0"}), frozenset({"lo", "eth1", "br0"}), frozenset({("eth1", "br0")}),
                frozenset({("br0", "198.18.0.1/24")}), frozenset(), "*filter\n-A FORWARD -j DOCKER\nCOMMIT",
                (("net.ipv4.ip_forward", "1"),))
    assert changes(before, now) == [
        "+ link br0", "+ master br0 of eth1", "+ address 198.18.0.1/24 on br0",
        "- address 198.18.0.1/24 on eth1", "- route default via 198.18.0.254 dev eth1",
        "+ iptables -A FORWARD -j DOCKER", "~ sysctl net.ipv4.ip_forward=1 (was 0)"]
    script = undo_script(before, now)
    for step in ("ip link del br0", "ip link set eth1 nomaster", "ip addr add 198.18.0.1/24 dev eth1",
                 "ip route add default via 198.18.0.254 dev eth1", "sysctl -qw net.ipv4.ip_forward=0",
                 "iptables-restore"):
        assert step in script


def test_fidelity_pairs_labs_by_topology_and_compares_them():
    def lab(provider, outcome, reached):
        return {"topology": "vxlan", "provider": provider, "engine": {"name": "docker", "version": "20.10.24"},
                "checks": {"test_a": {"outcome": "passed"}, "test_b": {"outcome": outcome}},
                "matrix": [{"source": "c1", "target": "c2", "proto": "icmp", "port": None, "reached": True},
                           {"source": "c1", "target": "ext", "proto": "tcp", "port": 80, "reached": reached}]}
    labs = {"vxlan@vagrant-docker": lab("vagrant", "failed", False), "vxlan@netns-docker": lab("netns", "passed", True)}
    records = [{"lab": "vxlan@netns-docker", "path": "cross-host", "metric": "tcp", "unit": "bit/s", "median": 10e9},
               {"lab": "vxlan@vagrant-docker", "path": "cross-host", "metric": "tcp", "unit": "bit/s", "median": 2e9}]
    doc = across.compare(across.PROVIDERS, labs, records)
    (group,) = doc["groups"]
    assert list(group["labs"]) == ["netns", "vagrant"]  # the reference first, whatever the input order
    assert (group["checks_agree"], group["probes_agree"], group["probes"]) == (1, 1, 2)
    assert group["checks"][0]["check"] == "test_b"  # what differs comes first
    assert group["probes_differing"][0]["target"] == "ext"
    assert group["measurements"][0]["ratios"]["vagrant"] == pytest.approx(0.2)
    text = across.markdown(across.PROVIDERS, doc)
    assert "| test_b | passed | failed | **differs** |" in text
    assert "| cross-host | tcp | 10.00 Gbit/s | 2.00 Gbit/s (× 0.20) |" in text
    assert "<svg" in across.chart(across.PROVIDERS, doc)


# -- whole runs on VMs ------------------------------------------------------------------

def _vm_ready() -> None:
    reason = VagrantProvider().missing()
    if reason:
        pytest.skip(reason)


@pytest.mark.lab
def test_vagrant_runs_the_suites_unchanged_and_fidelity_compares_it_with_netns(tmp_path):
    """Weave on VMs: every check green with fast datapath connections (VXLAN on UDP 6784 at MTU
    1376, as the wire and path-MTU checks hold it to), the same checks and probes as sleeve on
    netns, and the two datapaths' figures side by side in the fidelity report."""
    _vm_ready()
    before = rootns.take()
    runs = {}
    for provider in ("vagrant", "netns"):
        out = tmp_path / provider
        result = run_pytest(f"--topology={WEAVE_VM_TOPOLOGY}", f"--provider={provider}", f"--report-dir={out}",
                            f"--alluredir={out / 'allure-results'}", "--bench-samples=1", "--bench-max-samples=3", "suites",
                            timeout=2400)
        assert result.returncode == 0, result.stdout[-4000:]
        runs[provider] = out
        if provider == "vagrant" and accel.choose(box.cached().kernel).software:
            assert "software emulation (TCG)" in result.stdout  # the notice, in pytest's warnings
    done = subprocess.run([sys.executable, "-m", "netconform.cli", "report", "--out", str(tmp_path / "merged"),
                           str(runs["netns"]), str(runs["vagrant"])], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "merged" / "fidelity.json").read_text())
    (group,) = doc["groups"]
    assert group["labs"]["vagrant"] == f"{WEAVE_VM_TOPOLOGY}@vagrant-docker"
    assert group["checks_agree"] == len(group["checks"]) and group["probes_agree"] == group["probes"] > 0
    realised = group["realised"]["values"]
    assert "fastdp established mtu 1376" in realised["vagrant"] and "sleeve" not in realised["vagrant"], realised
    assert "sleeve established mtu 1438" in realised["netns"] and "bridge not supported" in realised["netns"], realised
    assert {m["path"] for m in group["measurements"]} >= {"cross-host"}
    assert "Fidelity across providers" in (tmp_path / "merged" / "fidelity.md").read_text()
    assert before.diff(rootns.take()) == {}


@pytest.fixture
def machines(tmp_path):
    """Two VMs with their underlay addresses and an ext namespace: someone else's machines."""
    _vm_ready()
    topo = topology(VM_TOPOLOGY)
    sandbox = Sandbox.start("machines")
    provider = VagrantProvider()
    try:
        nodes = provider.up(topo, sandbox)
        config = sandbox.path("/run/lab/vagrant/ssh_config").read_text()
        entries = dict(re.findall(r"Host (\S+)\n((?:  .*\n)+)", config))
        hosts = {}
        for name in (h.name for h in topo.hosts):
            fields = dict(line.split(None, 1) for line in entries[name].strip().splitlines())
            hosts[name] = {"address": fields["HostName"], "user": fields["User"], "port": int(fields["Port"]),
                           "key": fields["IdentityFile"].strip('"'), "underlay": "eth1"}
        path = tmp_path / "inventory.yaml"
        path.write_text(yaml.safe_dump({"ssh_from": sandbox.netns("lan"), "hosts": hosts,
                                        "ext": {"netns": sandbox.netns("ext")}}))
        yield path, {name: nodes[name] for name in hosts}
    finally:
        try:
            provider.down()
        finally:
            sandbox.close()


@pytest.mark.lab
def test_ssh_provider_runs_the_suites_and_leaves_the_machines_as_it_found_them(machines):
    path, nodes = machines
    found = {name: snapshot(node) for name, node in nodes.items()}
    result = run_pytest("--provider=ssh", f"--inventory={path}", f"--topology={VM_TOPOLOGY}", "--dry-run", "suites")
    assert result.returncode == 0 and "provider ssh: ssh to h1 (vagrant@" in result.stdout
    assert {name: changes(found[name], snapshot(node)) for name, node in nodes.items()} == {"h1": [], "h2": []}
    result = run_pytest("--provider=ssh", f"--inventory={path}", f"--topology={VM_TOPOLOGY}", "-m", "not bench",
                        "-W", "error::UserWarning", "suites", timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(r"\d+ passed", result.stdout)
    assert {name: changes(found[name], snapshot(node)) for name, node in nodes.items()} == {"h1": [], "h2": []}
    # An inventory that does not match the machines is refused before anything changes.
    wrong = yaml.safe_load(path.read_text())
    wrong["hosts"]["h2"]["underlay"] = "eth0"
    path.write_text(yaml.safe_dump(wrong))
    result = run_pytest("--provider=ssh", f"--inventory={path}", f"--topology={VM_TOPOLOGY}",
                        "suites/test_reachability.py")
    assert result.returncode != 0
    assert f"{path}: hosts.h2.underlay: eth0 on h2 does not carry 198.18.0.2/24" in result.stdout
    assert {name: changes(found[name], snapshot(node)) for name, node in nodes.items()} == {"h1": [], "h2": []}


@pytest.mark.lab
def test_kill_9_during_vagrant_up_leaves_nothing_behind():
    """Guests, libvirtd, dnsmasq and vagrant all die with the sandbox."""
    _vm_ready()
    before = rootns.take()
    child = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--topology=bridge",
                              "--provider=vagrant", "suites"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sandbox = sandbox_pid(child.pid, _guests_started)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    wait_gone(sandbox, timeout=60)
    assert before.diff(rootns.take()) == {}


def _guests_started(sandbox: int) -> bool:
    """A QEMU process runs inside the sandbox's pid namespace."""
    ns = os.readlink(f"/proc/{sandbox}/ns/pid")
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "ns/pid") == ns and \
                    (proc / "comm").read_text().startswith("qemu-system"):
                return True
        except OSError:
            continue
    return False
