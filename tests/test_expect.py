"""The promise of each mode, checked as data (no lab needed)."""

from dataclasses import replace

from netconform.expect import Probe, expected, probes, promise, stack
from netconform.topology import Rule
from netconform.topology.model import Expect

from .conftest import topology


def test_bridge_containers_reach_each_other_and_ext_but_not_inward():
    topo = topology("bridge")
    assert promise(topo, "c1", "c2", "icmp", None)
    assert promise(topo, "c1", "ext", "tcp", 80)
    assert promise(topo, "h1", "c1", "icmp", None)
    assert not promise(topo, "ext", "c1", "icmp", None)


def test_icc_off_allows_only_the_linked_exposed_port():
    topo = topology("link")
    assert promise(topo, "app", "db", "tcp", 80)
    assert not promise(topo, "app", "db", "icmp", None)
    assert not promise(topo, "db", "app", "tcp", 80)
    assert not promise(topo, "other", "db", "tcp", 80)


def test_user_defined_networks_are_isolated():
    topo = topology("user-defined")
    assert promise(topo, "f1", "f2", "tcp", 80)
    assert not promise(topo, "f1", "b1", "icmp", None)
    assert not promise(topo, "d1", "f1", "icmp", None)


def test_shared_stacks_are_their_owners():
    assert stack(topology("host"), "hc") == stack(topology("host"), "h1")
    assert stack(topology("container"), "side").owner == "app"


def test_none_reaches_nothing():
    topo = topology("none")
    assert not promise(topo, "iso", "ext", "icmp", None)
    assert not promise(topo, "iso", "h1", "icmp", None)


def test_published_port_open_unpublished_closed():
    topo = topology("portmap")
    assert promise(topo, "ext", "h1", "tcp", 8080)
    assert not promise(topo, "ext", "h1", "tcp", 80)
    addresses = {"ext": "198.18.0.254", "h1": "198.18.0.1", "web": "172.30.1.2", "api": "172.30.1.3"}
    ports = {p.port for p in probes(topo, addresses) if p.source == "ext" and p.target == "h1"}
    assert ports == {None, 80, 8080, 9000, 9090}


def test_topology_overrides_win():
    topo = replace(topology("bridge"), expect=Expect(isolate=(Rule("c1", "c2"),)))
    assert not expected(topo, Probe("c1", "c2", "172.30.1.3", "icmp"))
    assert expected(topo, Probe("c2", "c1", "172.30.1.2", "icmp"))
