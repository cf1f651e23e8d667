"""The podman runtime: its own state per host, its differences matched exactly, its skips declared."""

from __future__ import annotations

import json
import re

import pytest

from netconform import skips
from netconform.checks import stacks
from netconform.checks.nat import arriving, leaving
from netconform.deviations import matching, probe_seen
from netconform.measure import measure
from netconform.nodes import ContainerNode
from netconform.runtimes.docker import DockerContainer
from netconform.runtimes.podman import LACKS

from .conftest import run_pytest

# As netavark 1.4 wrote them for a container publishing 8080:80 on the default network.
NETAVARK_NAT = """\
-P PREROUTING ACCEPT
-P POSTROUTING ACCEPT
-A PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A POSTROUTING -j NETAVARK-HOSTPORT-MASQ
-A POSTROUTING -s 172.30.1.0/24 -j NETAVARK-1D8721804F16F
-A NETAVARK-1D8721804F16F -d 172.30.1.0/24 -j ACCEPT
-A NETAVARK-1D8721804F16F ! -d 224.0.0.0/4 -j MASQUERADE
-A NETAVARK-DN-1D8721804F16F -s 172.30.1.0/24 -p tcp -m tcp --dport 8080 -j NETAVARK-HOSTPORT-SETMARK
-A NETAVARK-DN-1D8721804F16F -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.1.129:80
-A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "dnat name: podman id: af29" -j NETAVARK-DN-1D8721804F16F
""".splitlines()


def test_netavark_rules_are_walked_as_the_kernel_applies_them():
    """Masquerade of the subnet and DNAT of the port, by the rule that applies first in netavark's
    chains; each answer turns when the rule it rests on is gone or shadowed by an earlier one."""
    out = leaving(NETAVARK_NAT, "172.30.1.2", "198.18.0.254", "eth0")
    assert out.target == "MASQUERADE" and out.rule == "-A NETAVARK-1D8721804F16F ! -d 224.0.0.0/4 -j MASQUERADE"
    assert leaving(NETAVARK_NAT, "172.30.1.2", "172.30.1.3", "docker0").target == "ACCEPT"
    # Docker's hairpin rule (userland proxy off) masquerades only what the host itself sends.
    hairpin = ["-A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE"]
    assert leaving(hairpin, "172.30.1.2", "172.30.1.3", "docker0").target == "ACCEPT"
    dnat = arriving(NETAVARK_NAT, "tcp", "198.18.0.254", "198.18.0.1", 8080, "eth0")
    assert (dnat.target, dnat.to) == ("DNAT", "172.30.1.129:80")
    assert leaving(NETAVARK_NAT, "172.30.2.2", "198.18.0.254", "eth0").target == "ACCEPT"  # another subnet: policy
    no_jump = [line for line in NETAVARK_NAT if not line.startswith("-A NETAVARK-HOSTPORT-DNAT")]
    assert arriving(no_jump, "tcp", "198.18.0.254", "198.18.0.1", 8080, "eth0").target == "ACCEPT"
    # A MASQUERADE with extra matches in front of it, or a RETURN, decides first: not masqueraded.
    narrowed = [line.replace("! -d 224.0.0.0/4 -j MASQUERADE", "-p udp -j MASQUERADE") for line in NETAVARK_NAT]
    assert leaving(narrowed, "172.30.1.2", "198.18.0.254", "eth0").target == "ACCEPT"
    shadowed = ["-A POSTROUTING -s 172.30.1.0/24 -j RETURN", *NETAVARK_NAT]
    assert leaving(shadowed, "172.30.1.2", "198.18.0.254", "eth0").rule.startswith("policy of POSTROUTING")
    # A DNAT to the wrong port ahead of netavark's is the one that applies.
    wrong = ["-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.1.129:81", *NETAVARK_NAT]
    assert arriving(wrong, "tcp", "198.18.0.254", "198.18.0.1", 8080, "eth0").to == "172.30.1.129:81"


def test_only_a_declared_unsupported_skip_passes_strict():
    declared = skips.unsupported("podman", "link", LACKS["link"])
    assert skips.allowed(declared, set())
    assert not skips.allowed("[unsupported:podman:link] anything else", set())
    assert not skips.allowed(f"[unsupported:podman:swarm] {LACKS['link']}", set())
    assert not skips.allowed(f"[unsupported:docker:link] {LACKS['link']}", set())  # docker lacks nothing
    assert not skips.allowed(f"[unsupported:nosuch:link] {LACKS['link']}", set())


@pytest.mark.lab
def test_a_topology_podman_cannot_build_is_a_declared_skip_under_strict():
    result = run_pytest("--topology=link,overlay", "--runtime=podman", "-m", "not bench", "--strict-skips",
                        "-k", "nat_rules", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"test_nat_rules[link@netns-podman]: [unsupported:podman:link] {LACKS['link']}" in result.stdout
    assert re.search(r"test_nat_rules\[overlay@netns-podman\]: \[unsupported:podman:scheme:overlay\] "
                     r"Podman has no swarm", result.stdout)


@pytest.mark.lab
def test_an_engine_build_is_of_its_own_runtime():
    result = run_pytest("--topology=bridge", "--runtime=podman", "--engine=docker-28.5", "suites")
    assert result.returncode == 4
    assert ("--engine: docker-28.5 is no build of --runtime podman; allowed: system, podman-5.4, podman-5.8, "
            "podman-6.1") in result.stderr


@pytest.mark.lab
def test_the_neighbour_deviation_matches_only_what_podman_lets_through(live_lab):
    """On Podman, ext reaches every bridged container: exactly what the deviation predicts.  A
    host firewall that keeps ext from one container (the engine's promise half kept) no longer
    matches, so the isolation check would fail instead of being excused."""
    lab = live_lab("bridge", runtime="podman")
    seen = frozenset(v.observation for v in measure(lab).wrong(False))
    c1, c2 = (lab.containers[name].addresses["bridge"] for name in ("c1", "c2"))
    assert seen == {f"ext -> {name} ({address}{port} {proto}) reached" for name, address in (("c1", c1), ("c2", c2))
                    for port, proto in (("", "icmp"), (":80", "tcp"), (":80", "udp"))}
    assert [d.id for d in matching(lab, "isolation", seen)] == ["podman-routed-neighbour-reaches-containers"]
    lab.hosts["h1"].exec(["iptables", "-I", "FORWARD", "-s", lab.ext.address, "-d", c1, "-j", "DROP"]).check()
    fewer = frozenset(v.observation for v in measure(lab).wrong(False))
    assert fewer == {s for s in seen if "-> c2 " in s}
    assert matching(lab, "isolation", fewer) == []


@pytest.mark.lab
def test_each_host_has_a_podman_of_its_own(live_lab):
    """Two hosts of one machine: each podman sees its own containers and default network only,
    and each host's network namespace holds only its own containers' bridge ports."""
    lab = live_lab("vxlan", runtime="podman")
    for host in (h.name for h in lab.topology.hosts):
        listed = lab.hosts[host].exec([*lab.runtime.podman(host), "ps", "--format", "{{.Names}}"]).check()
        assert sorted(listed.stdout.split()) == sorted(c.name for c in lab.topology.containers_on(host))
        subnet = lab.hosts[host].exec([*lab.runtime.podman(host), "network", "inspect", "podman",
                                       "--format", "{{range .Subnets}}{{.Subnet}}{{end}}"]).check()
        assert subnet.stdout.strip() == str(lab.scheme.bridge_network(lab.topology, host))


@pytest.mark.lab
def test_the_ping_check_names_a_container_without_net_raw(live_lab):
    """Docker grants NET_RAW: the check is green; a container made without it is named."""
    lab = live_lab("bridge")
    assert stacks.ping_refusals(lab) == []
    lab.runtime.remove("h1", "c2")
    made = lab.runtime.engines["h1"].client.containers.run(
        lab.runtime.image.tag, ["/serve"], name="c2", cap_drop=["NET_RAW"], init=True, detach=True)
    lab.containers["c2"] = ContainerNode("c2", "h1", DockerContainer(made))
    assert [r.observation for r in stacks.ping_refusals(lab)] == ["c2: ping may not open an ICMP socket"]


@pytest.mark.lab
def test_the_net_raw_deviation_holds_only_while_every_container_lacks_it(live_lab):
    """On Podman no container may ping, as the deviation predicts; one given NET_RAW can, and
    then the observations no longer match, so the check would fail rather than be excused."""
    lab = live_lab("bridge", runtime="podman")
    refused = frozenset(r.observation for r in stacks.ping_refusals(lab))
    assert [d.id for d in matching(lab, "ping", refused)] == ["podman-containers-lack-net-raw"]
    lab.runtime.remove("h1", "c2")
    lab.hosts["h1"].exec([*lab.runtime.podman("h1"), "run", "-d", "--name", "c2", "--cap-add", "NET_RAW",
                          "--network", "podman", *lab.runtime.cgroup_parent("h1"), lab.runtime.image.tag,
                          "/serve"]).check()
    lab.containers["c2"] = ContainerNode("c2", "h1", lab.runtime.handle("h1", "c2"))
    refused = frozenset(r.observation for r in stacks.ping_refusals(lab))
    assert refused == {"c1: ping may not open an ICMP socket"}
    assert matching(lab, "ping", refused) == []


def test_the_dry_run_shows_each_hosts_podman_and_default_network():
    result = run_pytest("--topology=portmap", "--runtime=podman", "--dry-run", "suites")
    assert result.returncode == 0, result.stdout[-2000:]
    assert '"network_interface": "docker0"' in result.stdout and '"subnet": "172.30.1.0/24"' in result.stdout
    assert re.search(r"h1: podman --root /run/lab/podman/h1/storage .* run -d --init --name web --network podman "
                     r".* -p 8080:80/tcp netconform/probe:\w+ /serve 80", result.stdout), result.stdout[-3000:]


@pytest.mark.lab
def test_a_lab_podman_cannot_build_stands_in_the_report_beside_dockers(tmp_path):
    """The link topology on both runtimes: Podman's column is there, every check skipped with the
    declared reason, so the comparison shows the gap instead of leaving Podman out."""
    result = run_pytest("--topology=link", "--runtime=podman", "-m", "not bench", f"--report-dir={tmp_path}",
                        "-k", "nat_rules or isolation", "suites")
    assert result.returncode == 0, result.stdout[-2000:]
    entry = json.loads((tmp_path / "conformance.json").read_text())["labs"]["link@netns-podman"]
    assert entry["topology"] == "link" and entry["engine"]["name"] == "podman"
    assert entry["realised"] == f"not built: [unsupported:podman:link] {LACKS['link']}"
    assert {c["outcome"] for c in entry["checks"].values()} == {"skipped"}
