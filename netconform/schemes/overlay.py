"""Docker's own overlay driver: the host engines form a swarm, containers join
an attachable overlay network (VXLAN on UDP 4789 between hosts).

Overlay containers reach the outside through ``docker_gwbridge`` (NAT);
their hosts cannot reach them on the overlay.  Swarm's ingress routing mesh
and service VIPs need IPVS: where the kernel lacks it, that part is skipped
with the reason (see ``ipvs_missing``).
"""

from __future__ import annotations

import ipaddress

from .. import skips
from ..runtimes.base import NetworkSpec
from .base import Promise, Scheme, kernel_lacks

SUBNET = ipaddress.IPv4Network("10.20.0.0/24")


def ipvs_missing(site) -> str | None:
    """Why the hosts' kernel cannot give swarm its ingress mesh and service VIPs, or None."""
    if site.first.exec(["test", "-e", "/proc/net/ip_vs"]).ok:
        return None
    return skips.limit("no-ipvs", "the kernel has no IPVS (/proc/net/ip_vs), which swarm's "
                                  "ingress and service VIPs need")


class Overlay(Scheme):
    name = "overlay"
    local_datapath = None
    description = "Docker's overlay driver: the engines form a swarm; containers join an attachable overlay."
    promise = Promise(crosses=True, host_reaches_own=False, mtu=1450, wire="udp/4789")
    network = "overlay"
    realised = "Docker swarm (one manager) with an attachable overlay network"

    def missing(self) -> str | None:
        return kernel_lacks("no-vxlan", "vxlan (the overlay driver's data path)",
                            "ip link add probe0 type vxlan id 1 dstport 4789")

    def addressing(self, topo, host):
        return None  # two interfaces (overlay and docker_gwbridge): checked by the matrix

    def validate(self, topo) -> list[tuple[str, str]]:
        problems = [(f"networks.{n.name}.subnet", f"{n.subnet} overlaps the overlay network {SUBNET}")
                    for n in topo.networks if n.subnet.overlaps(SUBNET)]
        problems += [(f"hosts.{h.name}.subnet", f"{h.subnet} overlaps the overlay network {SUBNET}")
                     for h in topo.hosts if h.subnet and h.subnet.overlaps(SUBNET)]
        # Every container in mode bridge takes an overlay address, as does each host's load
        # balancer endpoint; the gateway, network and broadcast addresses are not handed out.
        bridged = [c.name for c in topo.containers if c.mode == "bridge"]
        room = SUBNET.num_addresses - 3 - len(topo.hosts)
        if len(bridged) > room:
            problems.append(("containers", f"{len(bridged)} containers in mode 'bridge' join the overlay "
                                           f"network {SUBNET}, which has room for {room} on {len(topo.hosts)} "
                                           f"hosts (one load-balancer address each); allowed: at most {room}"))
        return problems

    def after_engines(self, site, runtime) -> None:
        topo = site.topology
        first = topo.hosts[0].name
        runtime.form_cluster(first, {h.name: str(topo.underlay_address(h.name).ip) for h in topo.hosts})
        runtime.create_network(first, NetworkSpec(self.network, "overlay", str(SUBNET), attachable=True))
