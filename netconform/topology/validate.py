"""Checks across fields: names, references, addresses, subnets and ports.

``build.py`` checks each value on its own; this module checks how values
fit together, before anything is created.  Each problem is a key path and
a message that says what is allowed.
"""

from __future__ import annotations

import itertools
import re

from ..schemes import SCHEMES
from .build import Problem
from .model import IFNAME_MAX, NAME_PATTERN, RESERVED_NAMES, Topology

# Modes in which docker run accepts -p (the others share or have no stack).
PUBLISHING_MODES = ("bridge", "network")


def validate(topo: Topology) -> list[Problem]:
    problems: list[Problem] = []
    problems += _names(topo)
    scheme = SCHEMES.get(topo.scheme)
    if scheme is None:
        problems.append(("scheme", f"{topo.scheme!r} is not a scheme; allowed: {', '.join(SCHEMES)}"))
        return problems
    problems += scheme.validate(topo)
    problems += _addresses(topo, scheme.on_underlay)
    problems += _containers(topo)
    if not problems:  # room is counted on a plan that is otherwise sound
        problems += _room(topo, scheme)
    problems += _rules(topo)
    return problems


def _names(topo: Topology) -> list[Problem]:
    problems = []
    seen: dict[str, str] = {}
    sections = (("hosts", topo.hosts, True), ("networks", topo.networks, True),
                ("containers", topo.containers, False))
    for section, items, is_ifname in sections:
        for item in items:
            path = f"{section}.{item.name}"
            if not re.match(NAME_PATTERN, item.name):
                problems.append((path, f"name {item.name!r} is not allowed; allowed: "
                                       "lower-case letters, digits and '-', starting with a letter"))
            if is_ifname and len(item.name) > IFNAME_MAX:
                problems.append((path, f"name {item.name!r} has {len(item.name)} characters; it names "
                                       f"an interface, so at most {IFNAME_MAX} are allowed"))
            if item.name in RESERVED_NAMES:
                problems.append((path, f"name {item.name!r} is reserved for the lab; "
                                       f"not allowed: {', '.join(RESERVED_NAMES)}"))
            if item.name in seen:
                problems.append((path, f"name {item.name!r} is already used in {seen[item.name]}; "
                                       "hosts, networks and containers need distinct names"))
            seen.setdefault(item.name, section)
    return problems


def _addresses(topo: Topology, on_underlay: bool) -> list[Problem]:
    problems = []
    ext = topo.ext_address().ip
    if ext not in topo.underlay or ext in (topo.underlay.network_address,
                                           topo.underlay.broadcast_address):
        problems.append(("ext", f"{ext} is not a host address of the underlay {topo.underlay}"))
    if len(topo.hosts) > topo.underlay.num_addresses - 3:
        problems.append(("underlay", f"{topo.underlay} has no room for {len(topo.hosts)} hosts and ext"))
        return problems
    used = {ext: "ext"}
    for host in topo.hosts:
        address = topo.underlay_address(host.name)
        path = f"hosts.{host.name}.underlay"
        if address.network != topo.underlay:
            problems.append((path, f"{address} is not in the underlay {topo.underlay}; "
                                   f"allowed: an address of {topo.underlay} with prefix /{topo.underlay.prefixlen}"))
        elif address.ip in used:
            problems.append((path, f"{address.ip} is already used by {used[address.ip]}"))
        used.setdefault(address.ip, host.name)
    subnets = [(f"hosts.{h.name}.subnet", topo.bridge_subnet(h.name)) for h in topo.hosts]
    if on_underlay:
        # Containers live on the LAN: each host's pool is a slice of the underlay.
        for path, subnet in subnets:
            if not subnet.subnet_of(topo.underlay):
                problems.append((path, f"{subnet} is not inside the underlay {topo.underlay}; "
                                       f"scheme {topo.scheme!r} puts containers on the LAN"))
    subnets += [(f"networks.{n.name}.subnet", n.subnet) for n in topo.networks]
    if not on_underlay:
        subnets.append(("underlay", topo.underlay))
    for (path_a, a), (path_b, b) in itertools.combinations(subnets, 2):
        if a.overlaps(b):
            problems.append((path_a, f"{a} overlaps {b} of {path_b}; subnets must be disjoint"))
    for net in topo.networks:
        if net.host not in {h.name for h in topo.hosts}:
            problems.append((f"networks.{net.name}.host", _missing("host", net.host, topo.hosts)))
    return problems


def _containers(topo: Topology) -> list[Problem]:
    problems = []
    hosts = {h.name for h in topo.hosts}
    by_name = {c.name: c for c in topo.containers}
    published: dict[tuple[str, int], str] = {}
    for c in topo.containers:
        path = f"containers.{c.name}"
        if c.host not in hosts:
            problems.append((f"{path}.host", _missing("host", c.host, topo.hosts)))
        if (c.network is not None) != (c.mode == "network"):
            problems.append((f"{path}.network", "is required with mode 'network' and allowed only there"))
        elif c.network is not None:
            nets = [n for n in topo.networks if n.name == c.network]
            if not nets:
                problems.append((f"{path}.network", _missing("network", c.network, topo.networks)))
            elif nets[0].host != c.host:
                problems.append((f"{path}.network", f"network {c.network!r} lives on host "
                                                    f"{nets[0].host!r}, not on {c.host!r}"))
        if (c.container is not None) != (c.mode == "container"):
            problems.append((f"{path}.container", "is required with mode 'container' and allowed only there"))
        elif c.container is not None:
            target = by_name.get(c.container)
            if c.container == c.name:
                problems.append((f"{path}.container", f"names {c.name!r} itself; a container cannot share "
                                                      "its own namespace; allowed: another container on "
                                                      f"{c.host!r}"))
            elif target is None:
                problems.append((f"{path}.container", _missing("container", c.container,
                                                               [x for x in topo.containers if x is not c])))
            elif target.host != c.host:
                problems.append((f"{path}.container", f"{c.container!r} runs on {target.host!r}; "
                                                      "a shared namespace must be on the same host"))
            elif target.mode == "container":
                problems.append((f"{path}.container", f"{c.container!r} shares a namespace itself; "
                                                      "allowed: a container with a namespace of its own"))
        if c.publish and c.mode not in PUBLISHING_MODES:
            problems.append((f"{path}.publish", f"mode {c.mode!r} cannot publish ports; allowed in "
                                                f"modes: {', '.join(PUBLISHING_MODES)}"))
        for i, pub in enumerate(c.publish):
            key = (c.host, pub.host_port)
            if key in published:
                problems.append((f"{path}.publish[{i}]", f"host port {pub.host_port} on {c.host} is "
                                                         f"already published by {published[key]}"))
            published.setdefault(key, c.name)
            if pub.container_port not in c.ports:
                problems.append((f"{path}.publish[{i}]", f"container port {pub.container_port} is not "
                                                         f"served; allowed: {_list(c.ports)} (see serve)"))
        for i, link in enumerate(c.links):
            lpath = f"{path}.links[{i}]"
            source = by_name.get(link.source)
            if c.mode != "bridge":
                problems.append((lpath, "links work on the default bridge only; allowed in mode: bridge"))
            elif source is c:
                problems.append((lpath, f"links {c.name!r} to itself; allowed: another container in "
                                        f"mode 'bridge' on {c.host!r}"))
            elif source is None:
                problems.append((lpath, _missing("container", link.source,
                                                 [x for x in topo.containers if x is not c])))
            elif source.host != c.host or source.mode != "bridge":
                problems.append((lpath, f"{link.source!r} must run in mode 'bridge' on {c.host!r} to be linked"))
    for host in hosts:
        host_ports: dict[int, str] = {}
        for c in topo.containers:
            if c.host == host and c.mode == "host":
                for port in c.ports:
                    if port in host_ports:
                        problems.append((f"containers.{c.name}.serve",
                                         f"port {port} on {host} is already served by {host_ports[port]} "
                                         "(both share the host's stack)"))
                    host_ports.setdefault(port, c.name)
    return problems


def _rules(topo: Topology) -> list[Problem]:
    problems = []
    nodes = {"ext"} | {h.name for h in topo.hosts} | {c.name for c in topo.containers}
    hosts = {h.name for h in topo.hosts}
    for kind in ("reach", "isolate"):
        for i, rule in enumerate(getattr(topo.expect, kind)):
            path = f"expect.{kind}[{i}]"
            for name in (rule.source, rule.target):
                if name not in nodes:
                    problems.append((path, f"{name!r} is not a node; allowed: {_list(sorted(nodes))}"))
            if rule.port is not None and rule.target in nodes and rule.target not in hosts:
                problems.append((path, f"'{rule.target}:{rule.port}' names a port on a container; "
                                       f"allowed: a port on a host ({_list(sorted(hosts))})"))
    return problems


def _room(topo: Topology, scheme) -> list[Problem]:
    """Every pool must hold the containers that take their address from it: a /29 with
    eight containers is refused here, not by the engine halfway through building."""
    problems = []
    for host in topo.hosts:
        plan = scheme.addressing(topo, host.name)
        if plan is not None:
            network, pool, gateway = plan
            takers = [c.name for c in topo.containers if c.host == host.name and c.mode == "bridge"]
            problems += _fits(f"hosts.{host.name}.subnet", pool, network, gateway, takers,
                              f"in mode 'bridge' on {host.name}")
    for net in topo.networks:
        takers = [c.name for c in topo.containers if c.mode == "network" and c.network == net.name]
        problems += _fits(f"networks.{net.name}.subnet", net.subnet, net.subnet, net.subnet[1], takers,
                          f"on network {net.name}")
    return problems


def _fits(path: str, pool, network, gateway, takers: list[str], where: str) -> list[Problem]:
    reserved = [a for a in (network.network_address, network.broadcast_address, gateway) if a in pool]
    room = pool.num_addresses - len(set(reserved))
    if len(takers) <= room:
        return []
    prefix = pool.prefixlen
    while prefix > 0 and 2 ** (32 - prefix) - len(set(reserved)) < len(takers):
        prefix -= 1
    return [(path, f"{pool} has room for {room} container{'s' if room != 1 else ''} (its {pool.num_addresses} addresses less the "
                   f"network's own, broadcast and gateway addresses), but {len(takers)} take an address "
                   f"from it {where}: {_list(takers, 8)}; allowed: at most {room}, or a /{prefix} or larger")]


def _missing(kind: str, name: str, items) -> str:
    names = [i.name for i in items]
    return f"{kind} {name!r} does not exist; allowed: {_list(names, 20) if names else '(none defined)'}"


def _list(values, most: int | None = None) -> str:
    """Values for a message; past ``most`` of them (a generated lab's hundreds), a count."""
    values = [str(v) for v in values]
    if most is not None and len(values) > most:
        return ", ".join(values[:most]) + f" and {len(values) - most} more"
    return ", ".join(values)
