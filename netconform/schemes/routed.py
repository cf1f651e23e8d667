"""host-gw: each host routes the others' container subnets via their underlay address.

No encapsulation: container addresses travel as they are between hosts.
As flannel's host-gw backend does, each host also accepts forwarded
traffic into its containers from the other container subnets and the
other hosts' own addresses (Docker's FORWARD chain drops it by default;
the rest of the LAN stays outside, as the promise says), and exempts traffic
between container subnets from MASQUERADE so peers see real addresses.
"""

from __future__ import annotations

from .base import Promise, Scheme


class HostGw(Scheme):
    name = "host-gw"
    description = "Each host routes the other hosts' container subnets via their underlay addresses."
    promise = Promise(crosses=True, hosts_reach_remote=True, wire="plain")
    realised = "kernel routes via underlay next hops, with forward and NAT exemptions"

    def after_engines(self, lab) -> None:
        topo = lab.topology
        for host in topo.hosts:
            own = topo.bridge_subnet(host.name)
            script = ["set -e"]
            for other in (h for h in topo.hosts if h.name != host.name):
                theirs, via = topo.bridge_subnet(other.name), topo.underlay_address(other.name).ip
                script += [f"ip route add {theirs} via {via}",
                           f"iptables -I DOCKER-USER -s {via} -d {own} -j ACCEPT",
                           f"iptables -I DOCKER-USER -s {theirs} -d {own} -j ACCEPT",
                           f"iptables -t nat -I POSTROUTING -s {own} -d {theirs} -j RETURN"]
            lab.hosts[host.name].exec(["sh", "-c", "\n".join(script)]).check(f"routes on {host.name}")
