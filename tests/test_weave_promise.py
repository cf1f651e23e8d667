"""Weave's promise follows what the hosts' kernel offers: sleeve without openvswitch, the fast
datapath (VXLAN on UDP 6784; IPsec ESP when encrypted) with it (Scheme.promise_on)."""

from __future__ import annotations

from types import SimpleNamespace

from netconform.checks.path import parse_pcap
from netconform.schemes import SCHEMES
from netconform.shipped import shipped
from netconform.topology.load import load

from .test_wire_parse import _ethernet, _ipv4, _pcap


def _site(topology: str, openvswitch: dict[str, bool]):
    """Hosts whose kernels have openvswitch or not, as the probe asks them."""
    topo = load(shipped("topologies") / f"{topology}.yaml")
    hosts = {name: SimpleNamespace(exec=lambda argv, has=has, **kw: SimpleNamespace(ok=has))
             for name, has in openvswitch.items()}
    return SimpleNamespace(planned=False, topology=topo, hosts=hosts)


def test_weave_promises_the_fast_datapath_exactly_where_every_hosts_kernel_has_openvswitch():
    weave = SCHEMES["weave"]
    assert weave.promise_on(_site("weave", {"h1": False, "h2": False, "h3": False})) == weave.promise
    assert weave.promise_on(_site("weave", {"h1": True, "h2": False, "h3": True})) == weave.promise
    fast = weave.promise_on(_site("weave", {"h1": True, "h2": True, "h3": True}))
    assert (fast.mtu, fast.wire) == (1376, "udp/6784") and fast.crosses == weave.promise.crosses
    encrypted = SCHEMES["weave-encrypted"].promise_on(_site("weave-encrypted", {"h1": True, "h2": True}))
    assert (encrypted.mtu, encrypted.wire) == (1376, "esp encrypted")
    plugin = SCHEMES["weave-plugin"].promise_on(_site("weave-plugin", {"h1": True, "h2": True}))
    assert (plugin.wire, plugin.host_reaches_own) == ("udp/6784", False)


def test_esp_is_read_as_such_and_never_as_a_readable_frame():
    """Fast datapath encrypted: what the wire check's encrypted branch counts (ESP between the
    hosts, nothing inside it read)."""
    (packet,) = parse_pcap(_pcap(_ethernet(_ipv4("198.18.0.1", "198.18.0.2", 50, bytes(64)))))
    assert (packet.proto, packet.inner) == ("esp", None)
