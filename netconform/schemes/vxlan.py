"""Kernel VXLAN joining the hosts' container bridges into one L2 domain.

Each host's bridge gets the same network (the smallest one covering every
host's pool) with the host's pool as ``--fixed-cidr``, and a VXLAN port
whose flood list names every other host (head-end replication, no
multicast): VNI 42 on UDP 4789, on docker0.
"""

from __future__ import annotations

import ipaddress

from .base import BRIDGE_BUILT_FIRST, Promise, Scheme, covering, kernel_lacks

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8


class Vxlan(Scheme):
    name = "vxlan"
    local_datapath = None
    description = "A kernel VXLAN overlay (VNI 42, UDP 4789) joining the per-host container bridges."
    promise = Promise(crosses=True, hosts_reach_remote=True, mtu=1500 - VXLAN_OVERHEAD,
                      wire="udp/4789", tunnel_id=42)
    realised = "kernel VXLAN port on docker0, static flood list"
    plugs_into_engine_bridge = True
    admin_settings = BRIDGE_BUILT_FIRST
    port, device = 4789, "vxlan0"

    def missing(self) -> str | None:
        return kernel_lacks("no-vxlan", "vxlan", "ip link add probe0 type vxlan id 1 dstport 4789")

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        return covering([topo.bridge_subnet(h.name) for h in topo.hosts])

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
