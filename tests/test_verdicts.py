"""Verdicts as proof in both directions: each way a verdict could be earned cheaply, shown.

A "blocked" rests on two independent attempts with full waits, so a leak
that answers late or only a flow's second packet is reported; a port that
completes a handshake is open whether or not it speaks; an answer from the
wrong node, or on the wrong port, is misdirected; a source that could not
probe is an error, never "blocked"; and the lab's hosts have the settings
a real host has, so a deviation that was the lab's doing does not show.
"""

from __future__ import annotations

import dataclasses

import pytest

from netconform.checks import nat
from netconform.deviations import matching
from netconform.measure import addresses, measure
from netconform.providers.netns import ext_routes
from netconform.topology.model import Sysctl

from .conftest import topology

pytestmark = pytest.mark.lab

# Each source's first new packet to a namespace is dropped, whatever its protocol: what a lossy
# link, a full ARP queue or a conntrack race does to a flow's first packet.
DROP_FIRST = ("iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT && "
              "iptables -A INPUT -m recent --name first --rcheck -j ACCEPT && "
              "iptables -A INPUT -m recent --name first --set -j DROP")


def leaked(matrix) -> set[str]:
    return {str(v.probe) for v in matrix.wrong(False)}


def test_a_leak_that_answers_only_a_flows_second_packet_is_reported_in_full(live_lab):
    """Isolation broken on the user-defined lab: every leaked probe is reported, also when each
    target drops every source's first packet (on the old prober half of them, every TCP one, were
    reported blocked)."""
    lab = live_lab("user-defined")
    lab.hosts["h1"].exec(["iptables", "-F", "DOCKER-ISOLATION-STAGE-2"]).check()
    plain = leaked(measure(lab))
    assert plain and {p.split(" ")[0] for p in plain} >= {"f1", "b1", "d1"}
    for name in ("f1", "f2", "b1", "d1"):
        lab.netns_exec(name, ["sh", "-c", DROP_FIRST]).check()
    lossy = measure(lab)
    assert leaked(lossy) == plain
    assert lossy.pace.changed  # the second attempts that reached are named, not hidden


def test_a_listener_that_says_nothing_on_a_closed_port_is_reached(live_lab):
    lab = live_lab("portmap")
    lab.hosts["h1"].exec(["sh", "-c", "busybox nc -ll -p 9000 -e true >/dev/null 2>&1 &"]).check()
    matrix = measure(lab)
    closed = [v for v in matrix.wrong(False) if v.probe.target == "h1" and v.probe.port == 9000]
    assert {v.probe.source for v in closed} >= {"ext"} and all(v.answer == "handshake" for v in closed)


def test_a_datagram_that_arrives_without_an_answer_is_a_one_way_leak(live_lab):
    """ext's UDP to c1 is let in by a rule in front of Docker's, while c1's answers are dropped on the
    way back: nothing answers, yet c1's server saw the datagrams arrive, so the probe is a leak."""
    lab = live_lab("bridge")
    c1 = addresses(lab)["c1"]
    lab.hosts["h1"].exec(["iptables", "-I", "DOCKER-USER", "-d", c1, "-p", "udp", "--dport", "80", "-j", "ACCEPT"]).check()
    lab.netns_exec("c1", ["iptables", "-A", "OUTPUT", "-p", "udp", "--sport", "80", "-j", "DROP"]).check()
    leaks = [v for v in measure(lab).wrong(False)]
    assert [(str(v.probe), v.measured) for v in leaks] == [
        (f"ext -> c1 ({c1}:80 udp)", "arrived one way (the target got it, no answer came back)")]


def test_an_echo_that_arrives_without_a_reply_is_a_one_way_leak(live_lab):
    """ext's pings to c1 are let in by a rule in front of Docker's, while c1's replies are dropped on
    the way out: no reply comes, yet c1's recorder saw ext's echoes arrive, so the probe is a leak
    (it was "blocked" before)."""
    lab = live_lab("bridge")
    c1 = addresses(lab)["c1"]
    lab.hosts["h1"].exec(["iptables", "-I", "DOCKER-USER", "-d", c1, "-p", "icmp", "-j", "ACCEPT"]).check()
    lab.netns_exec("c1", ["iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "echo-reply", "-j", "DROP"]).check()
    leaks = [v for v in measure(lab).wrong(False)]
    assert [(str(v.probe), v.measured) for v in leaks] == [
        (f"ext -> c1 ({c1} icmp)", "arrived one way (the target got it, no answer came back)")]


def test_a_syn_that_arrives_without_an_answer_is_a_one_way_leak(live_lab):
    """A rule in front of Docker's lets front's SYNs into back, while back's SYN-ACKs are still
    dropped by Docker's isolation on the way back: f1 never hears from b1, yet b1 holds the half-open
    connection from f1's own source ports, so the probe is a leak (it was "blocked" before)."""
    lab = live_lab("user-defined")
    lab.hosts["h1"].exec(["iptables", "-I", "DOCKER-USER", "-s", "10.10.1.0/24", "-d", "10.10.2.0/24",
                          "-p", "tcp", "--syn", "-j", "ACCEPT"]).check()
    b1 = addresses(lab)["b1"]
    leaks = sorted((str(v.probe), v.measured) for v in measure(lab).wrong(False))
    assert leaks == [(f"{source} -> b1 ({b1}:80 tcp)", "arrived one way (the target got it, no answer came back)")
                     for source in ("f1", "f2")]


def test_a_syn_let_through_a_published_port_is_followed_to_the_container(live_lab):
    """h1 drops web's SYN-ACKs on their way out of docker0: a SYN to h1's published 8080 is DNAT'd
    to web:80 and held there half-open, so the probe arrived one way, found in web's stack on its
    container port (it read "blocked" before: only h1's own stack was looked at).  Dropped on the
    host, as a real network would: a SYN-ACK dropped inside web's own stack fails its send, and
    the kernel then forgets the half-open connection at its first retransmission."""
    lab = live_lab("portmap")
    lab.hosts["h1"].exec(["iptables", "-I", "FORWARD", "-i", "docker0", "-p", "tcp", "--sport", "80",
                          "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"]).check()
    (verdict,) = [v for v in measure(lab).verdicts
                  if (v.probe.source, v.probe.target, v.probe.proto, v.probe.port) == ("ext", "h1", "tcp", 8080)]
    assert verdict.measured == "arrived one way (the target got it, no answer came back)"


def test_an_answer_from_the_wrong_node_is_misdirected(live_lab):
    lab = live_lab("vxlan")
    live = addresses(lab)
    lab.netns_exec("c1", ["iptables", "-t", "nat", "-A", "OUTPUT", "-d", live["c3"], "-p", "tcp", "--dport", "80",
                          "-j", "DNAT", "--to-destination", f"{live['web']}:80"]).check()
    wrong = measure(lab).wrong(True)
    assert [(str(v.probe), v.measured) for v in wrong] == [
        (f"c1 -> c3 ({live['c3']}:80 tcp)", "answered by web on port 80, not c3 on 80")]


def test_a_published_port_sent_to_the_wrong_container_port_is_named(live_lab):
    """Podman's portmap lab: a rule ahead of netavark's sends published 9090 to api's port 80 (which
    api also serves) instead of 9000."""
    lab = live_lab("portmap", runtime="podman")
    assert not nat.dnat_behaviour(lab, measure(lab))
    api = addresses(lab)["api"]
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-I", "PREROUTING", "-p", "tcp", "--dport", "9090",
                          "-j", "DNAT", "--to-destination", f"{api}:80"]).check()
    assert nat.dnat_behaviour(lab, measure(lab)) == [
        "ext -> h1:9090: answered by api on port 80, not on its published 9000: the DNAT sends it to the wrong port"]


def test_a_source_that_cannot_probe_is_an_error_not_blocked(live_lab):
    lab = live_lab("bridge")
    lab.containers["c1"].exec(["rm", "/prober"]).check()
    matrix = measure(lab)
    mine = [v for v in matrix.verdicts if v.probe.source == "c1"]
    assert mine and all(v.error and v.measured == "not measured (error)" for v in mine)
    assert all(v in matrix.wrong(v.expected) for v in mine)  # wrong whatever was promised
    assert not [v for v in matrix.verdicts if v.probe.source != "c1" and not v.ok]


def test_a_prober_stopped_by_its_guard_says_so(live_lab, monkeypatch):
    """A prober that outlives its guard (a hung one, or a host far slower than ours) leaves its
    undecided probes "not measured", naming the stop, never "blocked"."""
    import netconform.measure
    lab = live_lab("bridge")
    monkeypatch.setattr(netconform.measure, "prober_guard", lambda probes, inflight: 1)
    undecided = [v for v in measure(lab).verdicts if v.error]
    assert undecided and all("stopped after" in v.error and "stopped at 1 s" in v.error for v in undecided)


def test_a_block_no_rule_made_is_named_the_labs_doing(live_lab):
    """Each blocked verdict names who stopped it, from the hosts' packet trace: on the bridge lab
    ext's probes to the containers end at h1's FORWARD DROP policy.  With ext's routes to the
    container subnet gone, the same probes are still blocked, but by no rule of the engine's: the
    pace lists them as blocked by no firewall rule, and each says so, never naming a rule."""
    lab = live_lab("bridge")
    to_containers = [v for v in measure(lab).verdicts if v.probe.source == "ext" and v.probe.target in lab.containers
                     and not v.reached]
    assert to_containers and all(v.stopped_by == ("h1 ip filter FORWARD policy drop",) for v in to_containers)
    for route in ext_routes(lab.topology):
        lab.ext.exec(["ip", "route", "del", *route]).check()
    matrix = measure(lab)
    unrouted = {str(v.probe) for v in matrix.verdicts if v.probe.source == "ext" and v.probe.target in lab.containers}
    assert {str(v.probe) for v in to_containers} <= unrouted
    assert all(v.stopped_by == () and not v.reached for v in matrix.verdicts if str(v.probe) in unrouted)
    assert unrouted <= set(matrix.pace.unaccounted) and "blocked by no firewall rule" in str(matrix.pace)


def with_sysctl(name: str, setting: str):
    topo = topology(name)
    return dataclasses.replace(topo, hosts=tuple(dataclasses.replace(h, sysctl=(Sysctl.parse(setting),))
                                                 for h in topo.hosts))


def only_under_the_old_setting(live_lab, name: str, setting: str, deviation: str):
    """Podman's ``name`` lab keeps its reachability promise on host-like hosts; with ``setting`` on
    its hosts it does not, exactly as ``deviation`` predicts, which it does not on host-like hosts.
    Returns both labs and what the old setting showed."""
    lab = live_lab(name, runtime="podman")
    assert not measure(lab).wrong(True)
    old = live_lab(with_sysctl(name, setting), runtime="podman")
    matrix = measure(old)
    seen = frozenset(v.observation for v in matrix.wrong(True))
    assert [d.id for d in matching(old, "reachability", seen, matrix=matrix)] == [deviation]
    assert matching(lab, "reachability", seen, matrix=matrix) == []
    return lab, seen


def test_host_mode_icmp_on_podman_depends_on_the_hosts_ping_group_range(live_lab):
    """With Debian 13's defaults on the host, Podman's host-mode container pings; with the kernel's
    own '1 0' it cannot, exactly as the deviation (which names that condition) predicts."""
    lab, seen = only_under_the_old_setting(live_lab, "host", "net.ipv4.ping_group_range=1 0",
                                           "podman-host-mode-has-no-icmp")
    assert lab.host_settings["h1"]["net.ipv4.ping_group_range"] == "0 2147483647"
    assert seen and all("(no ICMP socket at the source)" in s and s.startswith("hc -> ") for s in seen)


def test_podman_hairpin_depends_on_br_netfilter(live_lab):
    """A Podman-only host has no br_netfilter loaded: web reaches its own published port.  With
    bridge-nf-call-iptables on, it does not, exactly as the deviation predicts."""
    lab, _ = only_under_the_old_setting(live_lab, "portmap", "net.bridge.bridge-nf-call-iptables=1",
                                        "podman-no-hairpin-to-own-published-port")
    assert lab.host_settings["h1"]["net.bridge.bridge-nf-call-iptables"] == "0"


def test_dockerd_turns_br_netfilter_on_itself(live_lab):
    """The profile starts every host without it; Docker's own doing puts it back."""
    lab = live_lab("bridge")
    assert lab.host_settings["h1"]["net.bridge.bridge-nf-call-iptables"] == "1"
    assert lab.host_settings["h1"]["net.ipv4.conf.default.rp_filter"] == "2"


def test_the_container_mode_hostname_deviation_names_the_hostnames(live_lab):
    """Podman gives a container-mode container its ID's first 12 characters as hostname: that
    exact name is excused; a hostname changed by hand is not."""
    from netconform.checks import names

    lab = live_lab("container", runtime="podman")
    seen = frozenset(m.observation for m in names.hostname_mismatches(lab))
    side = lab.containers["side"].id[:12]
    assert seen == {f"side: hostname {side!r}, not app's 'app'"}
    assert [d.id for d in matching(lab, "shared-hostname", seen)] == ["podman-container-mode-keeps-own-hostname"]
    lab.hosts["h1"].exec(["nsenter", f"--uts=/proc/{lab.containers['side'].pid}/ns/uts", "hostname", "other"]).check()
    changed = frozenset(m.observation for m in names.hostname_mismatches(lab))
    assert changed == {"side: hostname 'other', not app's 'app'"} and matching(lab, "shared-hostname", changed) == []
