"""host-gw: each host routes the others' container subnets via their underlay address.

No encapsulation: container addresses travel as they are between hosts.
As flannel's host-gw backend does, each host also accepts forwarded
traffic into its containers from the other container subnets and the
other hosts' own addresses (Docker's FORWARD chain drops it by default;
the rest of the LAN stays outside, as the promise says; an engine that
filters nothing forwarded, Podman, needs no exemption), and exempts traffic
between container subnets from MASQUERADE so peers see real addresses.

From Docker 28.0 the engine drops routed packets addressed to its
containers (the direct-routing guard, a raw-table DROP per container), so
host-gw cannot work with the default; 28.2 documents the daemon option
``--allow-direct-routing`` for exactly this, and that is what a user of
that release would set.  The forward filter (DOCKER-USER, above) still
decides who gets in.
"""

from __future__ import annotations

from ..dialects import DIALECTS
from ..engines import FEATURES, offers
from .base import Promise, Scheme


class HostGw(Scheme):
    name = "host-gw"
    description = "Each host routes the other hosts' container subnets via their underlay addresses."
    promise = Promise(crosses=True, hosts_reach_remote=True, wire="plain")
    realised = "kernel routes via underlay next hops, with forward and NAT exemptions"

    def engine_args(self, topo, host, version) -> list[str]:
        opt_out = ["--allow-direct-routing"] if offers("allow-direct-routing", version) else []
        return super().engine_args(topo, host, version) + opt_out

    def realised_in(self, site, version) -> str:
        if not offers("direct-routing-guard", version):
            return self.realised
        guard = FEATURES["direct-routing-guard"]
        return (f"{self.realised}; dockerd --allow-direct-routing, since Docker {version} by default "
                f"{guard.summary} ({guard.reference})")

    def after_engines(self, site, runtime) -> None:
        topo = site.topology
        for host in topo.hosts:
            own = topo.bridge_subnet(host.name)
            script = ["set -e"]
            for other in (h for h in topo.hosts if h.name != host.name):
                theirs, via = topo.bridge_subnet(other.name), topo.underlay_address(other.name).ip
                script += [f"ip route add {theirs} via {via}",
                           DIALECTS[runtime.nat_dialect].exempt.format(own=own, theirs=theirs)]
                if runtime.forward_filter:  # an engine that filters forwarded traffic (Docker)
                    script += [f"iptables -I {runtime.forward_filter} -s {via} -d {own} -j ACCEPT",
                               f"iptables -I {runtime.forward_filter} -s {theirs} -d {own} -j ACCEPT"]
            site.hosts[host.name].exec(["sh", "-c", "\n".join(script)]).check(f"routes on {host.name}")
