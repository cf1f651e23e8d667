"""Kernel VXLAN joining the hosts' container bridges into one L2 domain.

Each host's bridge gets the same network (the smallest one covering every
host's pool) with the host's pool as ``--fixed-cidr``, and a VXLAN port
whose flood list names every other host (head-end replication, no
multicast).  ``vxlan`` uses VNI 42 on UDP 4789 and docker0; ``weave``
uses Weave Net's address plan (10.32.0.0/12), its bridge name and its
fast-datapath port (UDP 6784), because Weave Net itself is discontinued
and not installable here.
"""

from __future__ import annotations

import ipaddress

from .base import Promise, Scheme, covering, kernel_lacks

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8


class Vxlan(Scheme):
    name = "vxlan"
    local_datapath = None
    description = "A kernel VXLAN overlay (VNI 42, UDP 4789) joining the per-host container bridges."
    promise = Promise(crosses=True, hosts_reach_remote=True, mtu=1500 - VXLAN_OVERHEAD,
                      wire="udp/4789", tunnel_id=42)
    realised = "kernel VXLAN port on docker0, static flood list"
    port, device = 4789, "vxlan0"

    def missing(self) -> str | None:
        return kernel_lacks("no-vxlan", "vxlan", "ip link add probe0 type vxlan id 1 dstport 4789")

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        return covering([topo.bridge_subnet(h.name) for h in topo.hosts])

    def before_engines(self, site) -> None:
        if self.bridge != "docker0":  # a bridge of the scheme's own, made before the engine
            for host in site.topology.hosts:
                self._run(site, host.name, [
                    f"ip link add name {self.bridge} type bridge",
                    f"ip addr add {self.gateway(site.topology, host.name)} dev {self.bridge}",
                    f"ip link set {self.bridge} up"])

    def after_engines(self, site, runtime) -> None:
        for host in site.topology.hosts:
            self._run(site, host.name, self.tunnel(site, host.name))

    def tunnel(self, site, host: str) -> list[str]:
        """Commands that give ``host`` its VXLAN port and flood list."""
        topo = site.topology
        local = topo.underlay_address(host).ip
        script = [f"ip link add {self.device} type vxlan id {self.promise.tunnel_id} dstport {self.port} "
                  f"local {local} dev {site.hosts[host].nic} nolearning",
                  f"ip link set {self.device} mtu {self.promise.mtu} master {self.bridge} up"]
        for other in (h for h in topo.hosts if h.name != host):
            script.append(f"bridge fdb append 00:00:00:00:00:00 dev {self.device} "
                          f"dst {topo.underlay_address(other.name).ip}")
        return script

    @staticmethod
    def _run(site, host: str, script: list[str]) -> None:
        site.hosts[host].exec(["sh", "-c", "set -e\n" + "\n".join(script)]).check(f"vxlan on {host}")


class Weave(Vxlan):
    name = "weave"
    description = ("A flat L2 network over all hosts with Weave Net's address plan (10.32.0.0/12) "
                   "and fast-datapath encapsulation (VXLAN on UDP 6784) in a full mesh.")
    # Weave Net's default MTU for its fast datapath.
    promise = Promise(crosses=True, hosts_reach_remote=True, mtu=1376, wire="udp/6784", tunnel_id=0x7ACE)
    bridge, device, port = "weave", "vxlan-6784", 6784
    plan = ipaddress.IPv4Network("10.32.0.0/12")

    def realised_in(self, site, version) -> str:
        if site.first.exec(["sh", "-c", "command -v weave"]).ok:
            return "weave is installed but this provider realises its data path with kernel VXLAN"
        return "kernel VXLAN emulating Weave Net's fast datapath (weave is not installed)"

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        return self.plan

    def validate(self, topo) -> list[tuple[str, str]]:
        return [(f"hosts.{h.name}.subnet", f"{topo.bridge_subnet(h.name)} is outside Weave Net's "
                                           f"address plan; allowed: a slice of {self.plan}")
                for h in topo.hosts if not topo.bridge_subnet(h.name).subnet_of(self.plan)]
