"""Every scheme check can fail: cut tunnels, drop peers, break routes, MTUs and daemons.

As in test_faults.py: a fresh lab, the check passes, one real thing is
broken the way it breaks in the field, and the report names exactly that.
"""

import pytest

from netconform import expect
from netconform.checks import path
from netconform.measure import addresses, measure
from netconform.schemes.weave import EncryptedWeaveNet, WeaveNet

pytestmark = pytest.mark.lab


def wrong_pairs(lab):
    return {(v.probe.source, v.probe.target) for v in measure(lab).wrong(True)}


def promised(lab, sources, targets):
    """The probe directions from ``sources`` to ``targets`` the scheme promises (read from the
    expectations: no probe is sent for them)."""
    return {(p.source, p.target) for p in expect.probes(lab.topology, addresses(lab))
            if expect.expected(lab.topology, p) and p.source in sources and p.target in targets}


def test_vxlan_cut_peer_is_reported(live_lab):
    lab = live_lab("vxlan")
    assert not wrong_pairs(lab)
    lab.hosts["h1"].exec(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan0",
                          "dst", "198.18.0.2"]).check()
    # h1's side can no longer send into the overlay: its requests, and its replies, are lost.
    # Probes to hosts' underlay addresses do not use the tunnel and still pass.
    assert wrong_pairs(lab) == promised(lab, {"h1", "c1", "c2"}, {"c3", "web"}) | \
        promised(lab, {"h2", "c3", "web"}, {"c1", "c2"})


def test_vxlan_wrong_vni_is_reported(live_lab):
    lab = live_lab("vxlan")
    lab.hosts["h2"].exec(["sh", "-c", "ip link del vxlan0 && ip link add vxlan0 type vxlan id 43 "
                                      "dstport 4789 local 198.18.0.2 dev eth0 nolearning && "
                                      "ip link set vxlan0 mtu 1450 master docker0 up && bridge fdb "
                                      "append 00:00:00:00:00:00 dev vxlan0 dst 198.18.0.1"]).check()
    assert wrong_pairs(lab) == promised(lab, {"h1", "c1", "c2"}, {"c3", "web"}) | \
        promised(lab, {"h2", "c3", "web"}, {"c1", "c2"})


def test_host_gw_missing_route_is_reported(live_lab):
    lab = live_lab("host-gw")
    assert not wrong_pairs(lab)
    lab.hosts["h1"].exec(["ip", "route", "del", "172.30.2.0/24"]).check()
    # h1 cannot route to h2's containers, nor reply to them; h2 itself is still on the LAN.
    assert wrong_pairs(lab) == promised(lab, {"h1", "c1", "c2"}, {"c3", "web"}) | \
        promised(lab, {"c3", "web"}, {"c1", "c2"})


def test_mtu_mismatch_is_reported(live_lab):
    lab = live_lab("vxlan")
    assert not path.mtu(lab)
    # The wire between the LAN and h2 now carries less than the encapsulated frames need.
    lab.sandbox.run(["ip", "link", "set", "h2", "mtu", "1400"], netns="lan").check()
    c3 = addresses(lab)["c3"]
    assert path.mtu(lab) == [f"c1 -> c3 ({c3}): 1450-byte packet did not pass; promised MTU 1450"]


def test_tunnel_admitting_more_than_promised_is_reported(live_lab):
    """vxlan: the underlay moved to jumbo frames and the overlay raised to 1500 everywhere, so
    1451-byte packets cross where 1450 is promised.  Before the sender's own MTU was raised for
    the probe, the sender refused the extra byte itself and this went unseen."""
    lab = live_lab("vxlan")
    assert not path.mtu(lab)
    for port in ("h1", "h2"):
        lab.sandbox.run(["ip", "link", "set", port, "mtu", "9000"], netns="lan").check()
    for host in ("h1", "h2"):
        lab.hosts[host].exec(["sh", "-c", "set -e\nip link set eth0 mtu 9000\n"
                              "for port in $(ip -o link show master docker0 | cut -d: -f2 | cut -d@ -f1); "
                              "do ip link set $port mtu 1500; done"]).check()
    assert lab.netns_exec("c3", ["ip", "link", "set", "eth0", "mtu", "1500"]).ok
    c3 = addresses(lab)["c3"]
    assert path.mtu(lab) == [f"c1 -> c3 ({c3}): 1451-byte packet passed; promised MTU 1450"]


def test_traffic_off_the_tunnel_is_reported(live_lab):
    lab = live_lab("vxlan")
    assert not path.wire(lab)
    # The underlay NIC bridged into docker0 in place of the VXLAN port: traffic still flows,
    # but plainly, container addresses and all.
    for host in ("h1", "h2"):
        lab.hosts[host].exec(["sh", "-c", "ip link set vxlan0 nomaster && "
                                          "ip link set eth0 master docker0"]).check()
    problems, live = path.wire(lab), addresses(lab)
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"c1 -> c3 on the underlay: expected 3 echo requests {live['c1']} > "
                                  f"{live['c3']} inside udp/4789 id 42 from 198.18.0.1 to 198.18.0.2, found 0")
    assert problems[1] == (f"c1 -> c3 on the underlay: container addresses outside udp/4789:\n"
                           f"  {live['c1']} > {live['c3']} icmp (x3)\n  {live['c3']} > {live['c1']} icmp (x3)")


def test_ovs_cut_tunnel_port_is_reported(live_lab):
    lab = live_lab("ovs")
    assert not wrong_pairs(lab)
    lab.hosts["h1"].exec(["ovs-vsctl", "--db=unix:/run/lab/ovs/h1/db.sock", "del-port", "obr0",
                          "gre-h2"]).check()
    # Only what crosses between h1 and h2 inside the overlay breaks; h3 still reaches both.
    assert wrong_pairs(lab) == promised(lab, {"h1", "c1"}, {"c2"}) | \
        promised(lab, {"h2", "c2"}, {"c1"})


def test_ovs_stopped_daemon_is_reported(live_lab):
    lab = live_lab("ovs")
    pid = lab.sandbox.path("/run/lab/ovs/h2/ovs-vswitchd.pid").read_text().strip()
    lab.hosts["h2"].exec(["kill", "-9", pid]).check()
    # h2's underlay address lives on an OVS bridge: without the daemon h2 is off the LAN.
    wrong = wrong_pairs(lab)
    assert wrong and all({"h2", "c2"} & set(pair) for pair in wrong)
    assert {("c1", "c2"), ("c3", "c2"), ("ext", "h2"), ("c2", "ext")} <= wrong


# -- the wire check, branch by branch ---------------------------------------------------


def test_wire_reports_gre_tunnels_turned_into_vxlan(live_lab):
    """ovs: every tunnel port re-typed to VXLAN; traffic flows, but not in GRE."""
    lab = live_lab("ovs")
    assert not path.wire(lab)
    for host in ("h1", "h2", "h3"):
        for peer in {"h1", "h2", "h3"} - {host}:
            lab.hosts[host].exec(["ovs-vsctl", f"--db=unix:/run/lab/ovs/{host}/db.sock", "set", "interface",
                                  f"gre-{peer}", "type=vxlan"]).check()
    problems, live = path.wire(lab), addresses(lab)
    assert len(problems) == 1 and problems[0].startswith(
        f"c1 -> c2 on the underlay: expected 3 echo requests {live['c1']} > {live['c2']} inside gre "
        "carrying Ethernet from 198.18.0.1 to 198.18.0.2, found 0 (0 with another id or payload)"), problems
    # What was seen instead: the trigger inside VXLAN.
    assert f"198.18.0.1 > 198.18.0.2 udp/4789 id 0 [{live['c1']} > {live['c2']} icmp]" in problems[0]


def test_wire_reports_weave_sleeve_lost_on_the_way_out(live_lab):
    """weave: the trigger is found inside Weave's sleeve (UDP 6783) between the hosts' addresses;
    with h1 dropping its own sleeve datagrams on the way out, the check says none was there."""
    lab = live_lab("weave")
    assert not path.wire(lab)
    lab.hosts["h1"].exec(["iptables", "-I", "OUTPUT", "-p", "udp", "--dport", "6783", "-j", "DROP"]).check()
    problems, live = path.wire(lab), addresses(lab)
    assert problems[0].startswith("c1 -> c2 on the underlay: the trigger failed"), problems
    assert problems[1].startswith(f"c1 -> c2 on the underlay: expected 3 echo requests {live['c1']} > {live['c2']} "
                                  "inside udp/6783 from 198.18.0.1 to 198.18.0.2, found 0"), problems


def test_wire_reports_plaintext_where_weave_promised_encryption(live_lab, monkeypatch):
    """weave-encrypted's promise held against weave routers started without the password (one
    peer's configuration losing it): the datagrams are still Weave's port between the hosts, but
    the check reads the trigger inside them and says the tunnel is not encrypted.  The same check
    on the encrypted lab finds nothing readable (test_underlay_carries_the_scheme there)."""
    lab = live_lab("weave")
    monkeypatch.setattr(lab, "promise", EncryptedWeaveNet().promise_on(lab.site))
    problems, live = path.wire(lab), addresses(lab)
    assert len(problems) == 1 and problems[0].startswith(
        "c1 -> c2 on the underlay: "), problems
    assert " udp/6783 datagrams carry plaintext packets, the tunnel is not encrypted:" in problems[0], problems
    assert f"198.18.0.1 > 198.18.0.2 udp/6783 [{live['c1']} > {live['c2']} icmp]" in problems[0], problems


def test_a_router_left_on_sleeve_where_fast_datapath_was_promised_is_reported(live_lab, monkeypatch):
    """Hosts with openvswitch get weave's fast-datapath promise (Scheme.promise_on); a weaver
    that fell back to sleeve there is what this lab's routers are (no openvswitch here): the wire
    check finds no VXLAN on UDP 6784, only sleeve, and the path-MTU check sees 1377 bytes pass
    where fast datapath's 1376 is the limit."""
    lab = live_lab("weave")
    monkeypatch.setattr(lab, "promise", WeaveNet().fastdp_promise)
    (wire,), live = path.wire(lab), addresses(lab)
    assert wire.startswith(f"c1 -> c2 on the underlay: expected 3 echo requests {live['c1']} > {live['c2']} "
                           "inside udp/6784 from 198.18.0.1 to 198.18.0.2, found 0"), wire
    assert "udp/6783" in wire, wire  # what was there instead: sleeve
    assert any("1377-byte packet passed" in p for p in path.mtu(lab)), path.mtu(lab)


def test_wire_reports_container_traffic_masqueraded_between_hosts(live_lab):
    """host-gw: the NAT exemption between container subnets lost on h1; pings still pass, but
    the wire carries h1's address, not the container's."""
    lab = live_lab("host-gw")
    assert not path.wire(lab)
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "172.30.1.0/24",
                          "-d", "172.30.2.0/24", "-j", "RETURN"]).check()
    problems, live = path.wire(lab), addresses(lab)
    assert len(problems) == 1 and problems[0].startswith(
        f"c1 -> c3 on the underlay: expected 3 plain echo requests {live['c1']} > {live['c3']}, found 0"), problems
    assert f"198.18.0.1 > {live['c3']} icmp" in problems[0]


def test_wire_reports_container_addresses_where_only_hosts_may_appear(live_lab):
    """xhost-portmap: h1's MASQUERADE deleted; web1's request leaves with its own address (and,
    with no way back, gets no answer)."""
    lab = live_lab("xhost-portmap")
    assert not path.wire(lab)
    lab.hosts["h1"].exec(["iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "172.30.1.0/24", "!", "-o",
                          "docker0", "-j", "MASQUERADE"]).check()
    problems, live = path.wire(lab), addresses(lab)
    assert problems[0].startswith("web1 -> h2 on the underlay: the trigger failed"), problems
    assert problems[1].startswith("web1 -> h2 on the underlay: none of the trigger's packets "
                                  "(198.18.0.1 > 198.18.0.2 tcp/8080)"), problems
    assert problems[2].startswith("web1 -> h2 on the underlay: container addresses on the wire:\n"
                                  f"  {live['web1']} > 198.18.0.2 tcp/8080"), problems
    assert len(problems) == 3


def test_wire_reports_an_empty_capture(live_lab):
    """vxlan: h1's flood entry cut, so nothing of the trigger reaches the wire at all."""
    lab = live_lab("vxlan")
    lab.hosts["h1"].exec(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan0",
                          "dst", "198.18.0.2"]).check()
    problems, live = path.wire(lab), addresses(lab)
    assert problems[0].startswith("c1 -> c3 on the underlay: the trigger failed"), problems
    assert problems[1].startswith(f"c1 -> c3 on the underlay: expected 3 echo requests {live['c1']} > "
                                  f"{live['c3']} inside udp/4789 id 42 from 198.18.0.1 to 198.18.0.2, "
                                  "found 0"), problems
    assert len(problems) == 2
