"""Every check can fail: break the real thing in a live lab, see exactly that reported.

Each test builds a fresh lab, confirms the check passes, breaks one thing
the way it breaks in the field (a rule deleted, an entry removed, networks
joined, a container in the wrong mode) and asserts the check's report
names that fault and nothing else.
"""

import dataclasses

import pytest

from netconform.checks import names, nat, stacks
from netconform.measure import addresses, measure, table
from netconform.runtimes.base import Refused
from netconform.topology import Container

from .conftest import topology

pytestmark = pytest.mark.lab


def pairs(verdicts):
    return {(v.probe.source, v.probe.target) for v in verdicts}


def in_container(lab, name, command):
    """Run a shell command in a container's network namespace, from its host (as root)."""
    return lab.netns_exec(name, ["sh", "-c", command])


def replace_container(lab, name, spec):
    """Swap a container for one built from another spec under the same name."""
    lab.runtime.remove(lab.containers[name].host, name)
    lab.containers[name] = lab.runtime.run_container(spec.host, spec)


def test_reachability_reports_a_dropped_flow(live_lab):
    lab = live_lab("bridge")
    assert not measure(lab).wrong(True)
    live = addresses(lab)
    lab.hosts["h1"].exec(["iptables", "-I", "DOCKER-USER", "-s", live["c1"], "-d", live["c2"],
                          "-j", "DROP"]).check()
    wrong = measure(lab).wrong(True)
    # c1 to c2 is dropped, and so are c1's replies to c2: both directions fail.
    assert pairs(wrong) == {("c1", "c2"), ("c2", "c1")}
    # Each names the rule that dropped it (c2's probes: the answers), from the hosts' trace.
    rule = f"h1 ip filter DOCKER-USER: ip saddr {live['c1']} ip daddr {live['c2']} drop"
    assert all(v.stopped_by == (rule,) for v in wrong), table(wrong)
    assert rule in table(wrong)
    assert not measure(lab).wrong(False)


def test_isolation_reports_joined_networks(live_lab):
    lab = live_lab("user-defined")
    assert not measure(lab).wrong(False)
    lab.runtime.connect(lab.containers["f1"], "back")
    matrix = measure(lab)
    assert pairs(matrix.wrong(False)) == {("f1", "b1")}
    assert {v.probe.proto for v in matrix.wrong(False)} == {"icmp", "tcp", "udp"}


def test_nat_reports_a_deleted_masquerade(live_lab):
    lab = live_lab("bridge")
    assert not nat.missing_rules(lab)
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "172.30.1.0/24",
                          "!", "-o", "docker0", "-j", "MASQUERADE"]).check()
    assert nat.missing_rules(lab) == [
        "h1: no MASQUERADE for 172.30.1.0/24 leaving other than docker0 (nat POSTROUTING): what applies is "
        "policy of POSTROUTING (ACCEPT): no rule applied"]
    # ext, a real neighbour with a route back, now answers the containers' own addresses.
    live = addresses(lab)
    assert nat.masquerade_behaviour(lab, measure(lab)) == [
        f"c1 -> ext: ext saw {live['c1']}, not h1's 198.18.0.1",
        f"c2 -> ext: ext saw {live['c2']}, not h1's 198.18.0.1"]


def test_nat_reports_a_deleted_dnat(live_lab):
    lab = live_lab("portmap")
    web = addresses(lab)["web"]
    rule = ["DOCKER", "!", "-i", "docker0", "-p", "tcp", "-m", "tcp", "--dport", "8080",
            "-j", "DNAT", "--to-destination", f"{web}:80"]
    assert not nat.dnat_behaviour(lab, measure(lab))
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-D", *rule]).check()
    assert nat.missing_rules(lab) == [f"h1: no DNAT of tcp/8080 to web {web}:80 (nat PREROUTING -> DOCKER): "
                                      "what applies is policy of PREROUTING (ACCEPT): no rule applied"]
    # The userland proxy (on by default) still answers on the host's port, from the bridge.
    assert nat.dnat_behaviour(lab, measure(lab)) == [
        "ext -> h1:8080: web saw the peer 172.30.1.1, not ext's 198.18.0.254: the source was rewritten "
        "(a proxy or SNAT), not only the destination (DNAT)"]


def test_dnat_without_the_userland_proxy(live_lab):
    """With --userland-proxy=false the published port is the DNAT rule alone: the same checks
    pass, no docker-proxy runs, and without the rule nothing answers."""
    portmap = topology("portmap")
    lab = live_lab(dataclasses.replace(portmap, hosts=tuple(
        dataclasses.replace(h, userland_proxy=False) for h in portmap.hosts)))
    assert "docker-proxy" not in lab.hosts["h1"].exec(["ps", "-eo", "comm"]).stdout
    assert not nat.missing_rules(lab) and not nat.dnat_behaviour(lab, measure(lab))
    # Without the proxy Docker writes the rule for every interface (hairpin included).
    lab.hosts["h1"].exec(["sh", "-c", "iptables -t nat -S DOCKER | grep -- '--dport 8080 ' | "
                                      "sed 's/^-A/-D/' | xargs -L1 iptables -t nat"]).check()
    assert nat.dnat_behaviour(lab, measure(lab)) == ["ext -> h1:8080: no answer, not by web"]


def test_dnat_behaviour_reports_a_port_sent_elsewhere(live_lab):
    lab = live_lab("portmap")
    assert not nat.dnat_behaviour(lab, measure(lab)) and not nat.missing_rules(lab)
    live = addresses(lab)
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-I", "PREROUTING", "-p", "tcp", "--dport", "8080",
                          "-j", "DNAT", "--to-destination", f"{live['api']}:9000"]).check()
    assert nat.dnat_behaviour(lab, measure(lab)) == ["ext -> h1:8080: answered by api, not by web"]
    # The engine's own rule is still there, but the rule that applies is the one in front of it.
    assert nat.missing_rules(lab) == [
        f"h1: no DNAT of tcp/8080 to web {live['web']}:80 (nat PREROUTING -> DOCKER): what applies is "
        f"-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination {live['api']}:9000"]


def test_hosts_check_reports_a_removed_link_entry(live_lab):
    lab = live_lab("link")
    assert not names.link_entries(lab)
    # /etc/hosts is a bind mount: rewrite it in place rather than replace it.
    lab.containers["app"].exec(["sh", "-c", "grep -v database /etc/hosts > /tmp/h && "
                                            "cat /tmp/h > /etc/hosts"]).check()
    assert names.link_entries(lab) == ["app: /etc/hosts has no entry for alias 'database' of db"]


def test_dns_reports_a_name_that_no_longer_resolves(live_lab):
    lab = live_lab("user-defined")
    assert not names.embedded_dns(lab)
    # Docker steers queries to 127.0.0.11 with NAT rules inside the container: cut them.
    in_container(lab, "f1", "iptables -t nat -F DOCKER_OUTPUT").check()
    f2 = addresses(lab)["f2"]
    assert names.embedded_dns(lab) == [f"f1: f2 resolved to None, not {f2} on front"]


def test_dns_reports_a_name_resolving_across_networks(live_lab):
    lab = live_lab("user-defined")
    lab.runtime.connect(lab.containers["b1"], "front")
    for node in lab.containers.values():
        node.reload()
    live = {name: node.addresses for name, node in lab.containers.items()}
    b1, f1, f2 = live["b1"]["front"], live["f1"]["front"], live["f2"]["front"]
    assert names.embedded_dns(lab) == [
        f"f1: b1 resolved to {b1}, but they share no network",
        f"f2: b1 resolved to {b1}, but they share no network",
        f"b1: f1 resolved to {f1}, but they share no network",
        f"b1: f2 resolved to {f2}, but they share no network"]


def test_none_check_reports_an_added_address(live_lab):
    lab = live_lab("none")
    assert not stacks.none_has_only_lo(lab)
    in_container(lab, "iso", "ip addr add 10.99.0.1/32 dev lo").check()
    assert stacks.none_has_only_lo(lab) == [
        "iso: mode none should have only lo with 127.0.0.1/8, has links ['lo'] and "
        "addresses ['10.99.0.1/32', '127.0.0.1/8']"]


def test_host_mode_checks_report_a_container_with_its_own_stack(live_lab):
    lab = live_lab("host")
    assert not stacks.host_mode_shares_stack(lab)
    assert not stacks.host_mode_port_competition(lab)
    replace_container(lab, "hc", Container(name="hc", host="h1", mode="bridge", serve=(8081,)))
    shared = stacks.host_mode_shares_stack(lab)
    assert shared[0] == "hc: not in h1's network namespace" and len(shared) == 2
    assert stacks.host_mode_port_competition(lab) == [
        "h1: could bind port 8081, which hc holds", "hc: could bind port 8099, which h1 holds"]


def test_container_mode_checks_report_a_separate_stack(live_lab):
    lab = live_lab("container")
    assert not stacks.container_mode_shares_net_only(lab)
    assert not names.hostname_mismatches(lab)
    replace_container(lab, "side", Container(name="side", host="h1", mode="bridge", serve=()))
    assert stacks.container_mode_shares_net_only(lab) == [
        "side: not in app's network namespace", "side: interfaces or addresses differ from app's"]
    assert [str(m) for m in names.hostname_mismatches(lab)] == ["side: hostname 'side', but app's is 'app'"]


def test_bridge_addressing_reports_a_wrong_gateway(live_lab):
    lab = live_lab("bridge")
    assert not stacks.bridge_addressing(lab)
    in_container(lab, "c1", "ip route replace default via 172.30.1.254").check()
    assert stacks.bridge_addressing(lab) == [
        "c1: default route default via 172.30.1.254 dev eth0, want via 172.30.1.1"]


def test_half_made_reports_what_the_engine_kept(live_lab):
    """After a refused start the check reads the engine and host as they are: a rule the engine
    left behind (planted here as an engine that forgot its DNAT would leave it) is reported."""
    lab = live_lab("portmap")
    spec = lab.topology.container("web")
    before = nat.port_state(lab, "h1")
    with pytest.raises(Refused, match="already allocated"):
        lab.runtime.run_container("h1", dataclasses.replace(spec, name="web-again"), name="web-again")
    assert not nat.half_made(lab, "h1", "web-again", before)
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-A", "DOCKER", "-p", "tcp", "--dport", "8080",
                          "-j", "DNAT", "--to-destination", "172.30.1.9:80"]).check()
    assert nat.half_made(lab, "h1", "web-again", before) == [
        "h1: nat gained -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.1.9:80"]
