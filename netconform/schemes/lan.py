"""Schemes that put containers on the underlay LAN itself.

``linux-bridge``: each host's engine uses a bridge ``br0`` that holds the
host's underlay address and has the underlay NIC enslaved, with a disjoint
``--fixed-cidr`` slice of the underlay per host, so containers on
different hosts, the hosts and ext all meet at L2 and nobody needs NAT.
``macvlan``: Docker's macvlan driver on the underlay NIC, each host
allocating from its slice; the kernel keeps a macvlan parent and its
children apart, so a host and its own containers cannot talk.
"""

from __future__ import annotations

import ipaddress

from ..runtimes.base import NetworkSpec

from .base import BRIDGE_BUILT_FIRST, BridgePlan, Promise, Scheme, kernel_lacks


class LinuxBridge(Scheme):
    name = "linux-bridge"
    local_datapath = "a Linux bridge holding the host's NIC, no NAT to the LAN"
    description = ("One subnet over all hosts: each engine's bridge has the underlay NIC enslaved "
                   "and hands out a disjoint --fixed-cidr slice.")
    promise = Promise(crosses=True, hosts_reach_remote=True, ext_reaches=True, masquerades=False,
                      wire="plain", published_via="proxy")
    bridge, on_underlay = "br0", True
    moves_underlay = True  # the NIC is enslaved to br0
    admin_settings = BRIDGE_BUILT_FIRST
    realised = "Linux bridge br0 with the underlay NIC enslaved and the underlay address moved onto it"

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        return topo.underlay

    def gateway(self, topo, host) -> ipaddress.IPv4Interface:
        return topo.underlay_address(host)

    def before_engines(self, site) -> None:
        topo = site.topology
        for host in topo.hosts:
            address, nic = topo.underlay_address(host.name), site.hosts[host.name].nic
            site.hosts[host.name].exec(["sh", "-c", "\n".join([
                "set -e",
                "ip link add name br0 type bridge",
                f"ip addr del {address} dev {nic}",
                f"ip link set {nic} master br0",
                f"ip addr add {address} dev br0",
                "ip link set br0 up",
                f"ip route add default via {topo.ext_address().ip}"])]).check(f"br0 on {host.name}")


class Macvlan(Scheme):
    name = "macvlan"
    local_datapath = None
    description = "Docker's macvlan driver on the underlay NIC: containers get addresses on the LAN."
    promise = Promise(crosses=True, hosts_reach_remote=True, ext_reaches=True, masquerades=False,
                      host_reaches_own=False, own_reach_host=False, wire="plain")
    network, on_underlay = "macvlan", True
    moves_underlay = True  # the NIC is the macvlan parent: every frame passes its receive handler
    realised = "Docker macvlan network (bridge mode) on the underlay NIC"

    def missing(self) -> str | None:
        return kernel_lacks("no-macvlan", "macvlan", "ip link add p0 type veth peer name p1 && "
                                       "ip link add m0 link p0 type macvlan mode bridge")

    def addressing(self, topo, host):
        return topo.underlay, topo.bridge_subnet(host), topo.ext_address().ip

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        """docker0 keeps a private subnet of its own, away from the LAN slices."""
        index = [h.name for h in topo.hosts].index(host)
        return ipaddress.IPv4Network(f"172.31.{index + 1}.0/24")

    def gateway(self, topo, host) -> ipaddress.IPv4Interface:
        net = self.bridge_network(topo, host)
        return ipaddress.IPv4Interface(f"{net[1]}/{net.prefixlen}")

    def bridge_plan(self, topo, host) -> BridgePlan:
        """The private bridge hands out its whole subnet (no slice of the LAN)."""
        net = self.bridge_network(topo, host)
        return BridgePlan(self.bridge, net, self.gateway(topo, host), net, 1500, made_by_scheme=False)

    def after_engines(self, site, runtime) -> None:
        topo = site.topology
        for host in topo.hosts:
            runtime.create_network(host.name, NetworkSpec(
                self.network, "macvlan", str(topo.underlay), ip_range=str(topo.bridge_subnet(host.name)),
                gateway=str(topo.ext_address().ip), options=(("parent", site.hosts[host.name].nic),)))
