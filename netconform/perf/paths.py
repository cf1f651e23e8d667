"""The paths a lab offers to measure, derived from its topology and scheme.

same-host: container to container on one host; to-ext: a container to
ext (through its host's NAT, or directly where the scheme puts it on the LAN); ext-to-published: ext to a published port
(DNAT); cross-host: container to container on another host through the
scheme; underlay: host to host on the LAN.

Many topologies offer the same path: two containers on Docker's default
bridge of one engine are realised identically in bridge, container and
portmap.  ``datapath`` names what decides a path's figures, so that a run
measures each realisation once and the other labs refer to that figure
(``--bench-every-path`` measures every lab's own).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks.path import cross_path
from ..expect import network_of, own_stacks, promise
from ..lab import Lab
from .iperf import PORT


@dataclass(frozen=True)
class BenchPath:
    kind: str
    source: str
    target: str
    address: str
    port: int = PORT  # where the client connects
    server_port: int = PORT  # where the server listens (differs behind DNAT)
    paused: str | None = None  # a container whose web server gives up server_port meanwhile

    def __str__(self) -> str:
        return f"{self.kind}: {self.source} -> {self.target}"


def datapath(lab: Lab, path: BenchPath, mtu: int | None) -> tuple[str, ...]:
    """What a path's figures depend on: its kind, the provider, the engine, what the packets
    cross (the scheme's own machinery, or on one host the engine's bridge where the scheme leaves
    it alone: ``Scheme.local_datapath``), each end (a container's mode, network and engine options, whether it has
    links or published ports, which add firewall rules) and the MTU the source sends with.
    Two paths with equal datapaths in one run are the same machinery; anything the lab
    could make differ is part of the key, so sharing errs towards measuring twice."""
    scheme = lab.scheme
    if path.kind == "underlay":
        realised = "the hosts' NICs on the LAN" if not scheme.moves_underlay else f"scheme {scheme.name}"
    elif path.kind == "cross-host":
        realised = f"scheme {scheme.crosses_like or scheme.name}"
    elif scheme.local_datapath is None:
        realised = f"scheme {scheme.name}"
    else:  # a path on one host the scheme leaves as the engine made it (Scheme.local_datapath)
        realised = scheme.local_datapath
    return (path.kind, lab.provider_name, lab.runtime.label, realised,
            _end(lab, path, path.source), _end(lab, path, path.target), f"mtu {mtu}")


def _end(lab: Lab, path: BenchPath, name: str) -> str:
    """One end of a path, by what its packets meet there: the container's network, and the
    firewall rules that can apply to this kind of path (icc and links between two containers
    of one host; the published port and the userland proxy for DNAT from outside)."""
    if name not in lab.containers:
        return "ext" if name == "ext" else "host"
    topo = lab.topology
    c = topo.container(name)
    host = topo.host(c.host)
    network = {"bridge": "the scheme's network", "network": "a user-defined network"}.get(c.mode, f"mode {c.mode}")
    rules = []
    if path.kind == "same-host":
        other = topo.container(path.target if name == path.source else path.source)
        linked = other.name in {link.source for link in c.links} or name in {link.source for link in other.links}
        rules += [f"icc {host.icc}", f"linked {linked}"]
    if path.kind == "ext-to-published":
        rules += [f"userland-proxy {host.userland_proxy}", "published"]
    return f"container on {network}" + (f", {', '.join(rules)}" if rules else "")


def bench_paths(lab: Lab) -> list[BenchPath]:
    topo, scheme = lab.topology, lab.scheme
    own = own_stacks(topo)
    address = {c.name: lab.containers[c.name].addresses.get(network_of(topo, c.name)) for c in own}
    found = []
    same = [(a, b) for a in own for b in own if a.name < b.name and a.host == b.host
            and promise(topo, a.name, b.name, "tcp", PORT)]
    if same:
        a, b = same[0]
        found.append(BenchPath("same-host", a.name, b.name, address[b.name]))
    outward = [c for c in own if promise(topo, c.name, "ext", "tcp", 80)]
    if outward:
        found.append(BenchPath("to-ext", outward[0].name, "ext", lab.ext.address))
    published = [(c, p) for c in own for p in c.publish]
    if published:
        c, pub = published[0]
        found.append(BenchPath("ext-to-published", "ext", c.name, lab.hosts[c.host].address,
                               port=pub.host_port, server_port=pub.container_port, paused=c.name))
    cross = cross_path(lab) if len(topo.hosts) > 1 and lab.promise.crosses else None
    if cross:
        found.append(BenchPath("cross-host", cross.source, cross.target, cross.address))
    if len(topo.hosts) > 1:
        h1, h2 = topo.hosts[0].name, topo.hosts[1].name
        found.append(BenchPath("underlay", h1, h2, lab.hosts[h2].address))
    return found
