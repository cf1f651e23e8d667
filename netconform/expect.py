"""What each Docker network mode and scheme promises, as data.

Reachability is a property of network stacks, not of containers: a
host-mode container *is* its host's stack, a container-mode container *is*
its target's.  ``stack()`` maps every node to the stack it uses, ``promise()``
states who must reach whom, and ``targets()`` lists what a lab offers to be
reached.  The topology's ``expect`` section only overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .schemes import SCHEMES
from .topology import Rule, Topology


@dataclass(frozen=True)
class Stack:
    """A network namespace as the rules see it."""

    kind: Literal["ext", "host", "container", "none"]
    owner: str  # the node whose namespace it is
    host: str | None = None
    network: str | None = None  # containers: "bridge" (docker0) or a user network


@dataclass(frozen=True)
class Probe:
    source: str
    target: str
    address: str
    proto: Literal["icmp", "tcp", "udp"]
    port: int | None = None

    def __str__(self) -> str:
        where = f"{self.address}:{self.port}" if self.port else self.address
        return f"{self.source} -> {self.target} ({where} {self.proto})"


@dataclass(frozen=True)
class Target:
    """Something probes aim at: a node's address and the TCP ports to try there."""

    node: str
    address: str
    ports: tuple[int, ...]


def stack(topo: Topology, name: str) -> Stack:
    if name == "ext":
        return Stack("ext", "ext")
    if name in {h.name for h in topo.hosts}:
        return Stack("host", name, name)
    c = topo.container(name)
    if c.mode == "host":
        return Stack("host", c.host, c.host)
    if c.mode == "container":
        return stack(topo, c.container)
    if c.mode == "none":
        return Stack("none", name, c.host)
    return Stack("container", name, c.host, network_of(topo, name))


def own_stacks(topo: Topology) -> list:
    """Containers with a network stack of their own (not host or container mode, not none)."""
    return [c for c in topo.containers
            if stack(topo, c.name).kind == "container" and stack(topo, c.name).owner == c.name]


def network_of(topo: Topology, name: str) -> str | None:
    """The Docker network a container is on: its user network, or the scheme's."""
    c = topo.container(name)
    if c.mode == "network":
        return c.network
    return SCHEMES[topo.scheme].network if c.mode == "bridge" else None


def open_ports(topo: Topology, host: str, proto: str = "tcp") -> set[int]:
    """Ports answering on a host's own address: published (for their protocol), or served by
    host-mode containers (TCP and UDP: the whoami service serves both)."""
    ports = {p.host_port for c in topo.containers_on(host) for p in c.publish if p.proto == proto}
    ports |= {port for c in topo.containers_on(host) if c.mode == "host" for port in c.ports}
    return ports


def closed_ports(topo: Topology, host: str) -> set[int]:
    """Ports containers on the host serve but that must not answer on the host's address."""
    served = {port for c in topo.containers_on(host) for port in c.ports}
    return served - open_ports(topo, host)


def promise(topo: Topology, source: str, target: str, proto: str, port: int | None) -> bool:
    """Must ``source`` reach ``target`` with this probe, by the modes and scheme alone?"""
    scheme = SCHEMES[topo.scheme]
    flags = scheme.promise
    src, dst = stack(topo, source), stack(topo, target)
    if src.kind == "none":
        return False  # mode none: only lo, reaches nothing
    on_scheme = {s.network == scheme.network for s in (src, dst) if s.kind == "container"}
    if dst.kind == "ext":
        return True  # hosts directly, containers through NAT or on the LAN
    if dst.kind == "host":
        if src.kind == "container" and src.host == dst.host and True in on_scheme:
            if not flags.own_reach_host:
                return False  # macvlan: children cannot talk to their parent
        return proto == "icmp" or port in open_ports(topo, dst.owner, proto)
    # The target is a container's own stack.
    if src.kind == "ext":
        return flags.ext_reaches and dst.network == scheme.network
    if src.kind == "host":
        if src.host == dst.host:
            return flags.host_reaches_own or dst.network != scheme.network
        return flags.hosts_reach_remote and dst.network == scheme.network
    if src.host != dst.host:
        return flags.crosses and src.network == dst.network == scheme.network
    if src.network != dst.network:
        return False  # Docker isolates bridge networks from each other
    if dst.network == "bridge" and not topo.host(dst.host).icc:
        # --icc=false: only a linked receiver, and only to the source's exposed ports
        linked = any(link.source == dst.owner for link in topo.container(src.owner).links)
        return proto == "tcp" and linked and port in topo.container(dst.owner).ports
    return True


def expected(topo: Topology, probe: Probe) -> bool:
    """The promise, unless the topology's ``expect`` section overrides it."""
    verdict = promise(topo, probe.source, probe.target, probe.proto, probe.port)
    for rules, value in ((topo.expect.reach, True), (topo.expect.isolate, False)):
        if any(_matches(rule, probe) for rule in rules):
            verdict = value
    return verdict


def _matches(rule: Rule, probe: Probe) -> bool:
    return (rule.source == probe.source and rule.target == probe.target
            and (rule.port is None or rule.port == probe.port))


def server(topo: Topology, target: str, port: int, proto: str = "tcp") -> tuple[str, int] | None:
    """Who must answer a TCP or UDP probe to ``target``:``port`` where it is promised to reach, and on
    which port it listens: ext itself, the container that published the host's port, the host-mode
    container serving it, or the container (or one sharing its stack) serving it.  None where
    nobody may answer (a port that must stay closed)."""
    if target == "ext":
        return ("ext", port)
    if target in {h.name for h in topo.hosts}:
        for c in topo.containers_on(target):
            for pub in c.publish:
                if pub.host_port == port and pub.proto == proto:
                    return (c.name, pub.container_port)
            if c.mode == "host" and port in c.ports:
                return (c.name, port)
        return None
    owner = stack(topo, target).owner
    for c in topo.containers:
        if stack(topo, c.name).owner == owner and port in c.ports:
            return (c.name, port)
    return None


def targets(topo: Topology, addresses: dict[str, str]) -> list[Target]:
    """What the lab offers to be reached, given each node's live address.

    ``addresses`` maps ext, hosts and containers with a stack of their own
    to their address; containers sharing a stack are reached through it.
    """
    found = [Target("ext", addresses["ext"], (80,))]
    for host in topo.hosts:
        ports = open_ports(topo, host.name) | closed_ports(topo, host.name)
        found.append(Target(host.name, addresses[host.name], tuple(sorted(ports))))
    for c in own_stacks(topo):
        if c.name in addresses:
            found.append(Target(c.name, addresses[c.name], c.ports))
    return found


def probes(topo: Topology, addresses: dict[str, str]) -> list[Probe]:
    """The whole matrix: every node to every target, ICMP, and TCP and UDP to each port (the
    whoami service serves both; isolation promises cover both)."""
    sources = ["ext", *(h.name for h in topo.hosts), *(c.name for c in topo.containers)]
    found = []
    for source in sources:
        for target in targets(topo, addresses):
            if stack(topo, source).owner == stack(topo, target.node).owner:
                continue  # a stack reaching itself proves nothing
            found.append(Probe(source, target.node, target.address, "icmp"))
            found += [Probe(source, target.node, target.address, proto, p)
                      for p in target.ports for proto in ("tcp", "udp")]
    return found
