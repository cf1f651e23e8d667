"""The paths a lab offers to measure, derived from its topology and scheme.

same-host: container to container on one host; to-ext: a container to
ext (through its host's NAT, or directly where the scheme puts it on the LAN); ext-to-published: ext to a published port
(DNAT); cross-host: container to container on another host through the
scheme; underlay: host to host on the LAN.
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
    cross = cross_path(lab) if len(topo.hosts) > 1 and scheme.promise.crosses else None
    if cross:
        found.append(BenchPath("cross-host", cross.source, cross.target, cross.address))
    if len(topo.hosts) > 1:
        h1, h2 = topo.hosts[0].name, topo.hosts[1].name
        found.append(BenchPath("underlay", h1, h2, lab.hosts[h2].address))
    return found
