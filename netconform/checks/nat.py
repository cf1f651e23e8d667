"""NAT: the rules an engine must install, and what ext really sees.

Rules are read from both iptables backends (``firewall.rules``: whichever
the engine wrote with) and walked as the kernel applies them
(``checks/chains.py``): the question is which rule decides a container's
packet leaving, or ext's arriving at a published port, not whether a
fitting rule exists somewhere.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

from ..dialects import DIALECTS
from ..engines import FEATURES, Version, offers
from ..expect import network_of
from ..lab import Lab
from ..measure import Matrix
from . import firewall
from .chains import Packet, Step, applies


@dataclass(frozen=True)
class IptablesRule:
    chain: str
    spec: frozenset[tuple[str, str]]  # ("-o", "!docker0"), ("-j", "MASQUERADE"), ...

    @classmethod
    def parse(cls, line: str) -> IptablesRule | None:
        words = shlex.split(line)
        if len(words) < 2 or words[0] != "-A":
            return None
        pairs, negate, i = [], False, 2
        while i < len(words):
            word = words[i]
            if word == "!":
                negate = True
            elif word.startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("-"):
                pairs.append((word, ("!" if negate else "") + words[i + 1]))
                negate, i = False, i + 1
            i += 1
        return cls(words[1], frozenset(pairs))


def nat_rules(lab: Lab, host: str) -> list[IptablesRule]:
    lines = firewall.rules(lab.hosts[host], "nat")
    return [rule for rule in map(IptablesRule.parse, lines) if rule is not None]


def bridges(lab: Lab, host: str) -> list[tuple[str, str]]:
    """(bridge interface, subnet) of every bridge network a container on the host is on (an
    engine may write a network's rules only once a container uses it, as netavark does)."""
    topo, scheme = lab.topology, lab.scheme
    used = {network_of(topo, c.name) for c in topo.containers_on(host)}
    used |= {scheme.engine_network for c in topo.containers_on(host) if c.mode == "bridge"}
    found = [(scheme.bridge, str(scheme.bridge_network(topo, host)))] if "bridge" in used else []
    return found + [(n.name, str(n.subnet)) for n in topo.networks if n.host == host and n.name in used]


@dataclass(frozen=True)
class PortState:
    """What a host's engine holds for published ports: its rules and its proxies."""

    nat: frozenset[str]
    filter: frozenset[str]
    proxies: frozenset[str]  # docker-proxy command lines


def port_state(lab: Lab, host: str) -> PortState:
    node = lab.hosts[host]
    proxies = lab.hosts[host].exec(["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' "
                                                "< $f 2>/dev/null; echo; done"]).stdout
    return PortState(frozenset(firewall.rules(node, "nat")), frozenset(firewall.rules(node, "filter")),
                     frozenset(line.strip() for line in proxies.splitlines() if "docker-proxy" in line))


def half_made(lab: Lab, host: str, name: str, before: PortState) -> list[str]:
    """What the engine kept of a container whose start it refused: a running process, network
    endpoints, rules or proxies that were not there before.  Read from the engine and the host
    as they are, with nothing of netconform's in between."""
    problems = []
    for state in lab.runtime.states(host, name):
        if state.running:
            problems.append(f"{name}: running after its start was refused")
        if state.endpoints:
            problems.append(f"{name}: still has endpoints {state.endpoints}")
    after = port_state(lab, host)
    for kind in ("nat", "filter", "proxies"):
        added = sorted(getattr(after, kind) - getattr(before, kind))
        removed = sorted(getattr(before, kind) - getattr(after, kind))
        problems += [f"{host}: {kind} gained {item}" for item in added]
        problems += [f"{host}: {kind} lost {item}" for item in removed]
    return problems


# Where a modelled packet "leaving" goes: an address beyond every lab network (RFC 5737's
# documentation range). Nothing is sent to it; the walk only reads the rules.
BEYOND = "192.0.2.1"


def leaving(lines: list[str], source: str, to: str, oif: str) -> Step:
    """What nat POSTROUTING does with a container's first packet to ``to`` out of ``oif``."""
    return applies(lines, "POSTROUTING", Packet("tcp", source, to, 80, oif=oif))


def arriving(lines: list[str], proto: str, source: str, host: str, port: int, iif: str) -> Step:
    """What nat PREROUTING does with a first packet from ``source`` to ``host``:``port`` on ``iif``."""
    return applies(lines, "PREROUTING", Packet(proto, source, host, port, iif=iif, local=frozenset({host})))


def missing_rules(lab: Lab) -> list[str]:
    """Each container subnet is masqueraded when it leaves other than its bridge (and not when it
    stays on it), and each published port is DNATed to its container's address and port: by the
    rule that applies first, as the kernel walks the chains (an earlier ACCEPT, RETURN or DNAT
    decides), in the engine's own layout (``Runtime.nat_dialect`` names it in messages)."""
    problems = []
    dialect = DIALECTS[lab.runtime.nat_dialect]
    addresses = {name: node.addresses for name, node in lab.containers.items()}
    ext = lab.ext.address
    for host in (h.name for h in lab.topology.hosts):
        lines = firewall.rules(lab.hosts[host], "nat")
        nic = lab.hosts[host].nic
        for bridge, subnet in bridges(lab, host):
            source = str(ipaddress.IPv4Network(subnet)[2])
            out = leaving(lines, source, BEYOND, nic if nic != bridge else f"not-{bridge}")
            if out.target != "MASQUERADE":
                problems.append(f"{host}: no MASQUERADE for {subnet} leaving other than {bridge} "
                                f"({dialect.masquerade_where}): what applies is {out}")
            inside = leaving(lines, source, str(ipaddress.IPv4Network(subnet)[3]), bridge)
            if inside.target in ("MASQUERADE", "SNAT"):
                problems.append(f"{host}: {subnet} is masqueraded staying on {bridge}: {inside}")
        for c in lab.topology.containers_on(host):
            for pub in c.publish:
                address = next(iter(addresses[c.name].values()), "?")
                wanted = f"{address}:{pub.container_port}"
                step = arriving(lines, pub.proto, ext, lab.hosts[host].address, pub.host_port, nic)
                if step.target != "DNAT" or step.to != wanted:
                    problems.append(f"{host}: no DNAT of {pub.proto}/{pub.host_port} to {c.name} {wanted} "
                                    f"({dialect.dnat_where}): what applies is {step}")
    return problems


def masquerade_behaviour(lab: Lab, matrix: Matrix) -> list[str]:
    """Containers reach ext from their host's address, or their own where the scheme puts
    them on the LAN (no NAT)."""
    problems = []
    for c in lab.topology.containers:
        if c.mode not in ("bridge", "network"):
            continue
        nat = lab.promise.masquerades or c.mode == "network"
        want = lab.hosts[c.host].address if nat else lab.containers[c.name].addresses[lab.scheme.network]
        whose = f"{c.host}'s" if nat else "its own"
        for verdict in matrix.find(c.name, "ext"):
            if not verdict.reached:
                problems.append(f"{c.name} -> ext: no answer, so no NAT seen")
            elif verdict.peer != want:
                problems.append(f"{c.name} -> ext: ext saw {verdict.peer}, not {whose} {want}")
    return problems


def dnat_behaviour(lab: Lab, matrix: Matrix) -> list[str]:
    """ext reaching HOST:PORT is answered by the container that published it, which saw ext's
    own address: DNAT rewrote only the destination.  A userland proxy (docker-proxy) answering
    in its place would show the host's side of the bridge as the peer instead.  Where the scheme
    promises the proxy (``Promise.published_via``), the container must see its host."""
    problems = []
    via_proxy = lab.promise.published_via == "proxy"
    for c in lab.topology.containers:
        want, whose = ((lab.hosts[c.host].address, f"{c.host}'s (docker-proxy)") if via_proxy
                       else (lab.ext.address, "ext's"))
        for pub in c.publish:
            answers = [v for v in matrix.find("ext", c.host) if v.probe.port == pub.host_port]
            for verdict in answers:
                where = f"ext -> {c.host}:{pub.host_port}"
                if verdict.served_by != c.name:
                    got = f"answered by {verdict.served_by}" if verdict.served_by else (
                        "a handshake but no whoami answer" if verdict.reached else "no answer")
                    problems.append(f"{where}: {got}, not by {c.name}")
                elif verdict.served_on != pub.container_port:
                    problems.append(f"{where}: answered by {c.name} on port {verdict.served_on}, not on "
                                    f"its published {pub.container_port}: the DNAT sends it to the wrong port")
                elif verdict.peer != want:
                    why = "" if via_proxy else (": the source was rewritten (a proxy or SNAT), not only "
                                                "the destination (DNAT)")
                    problems.append(f"{where}: {c.name} saw the peer {verdict.peer}, not {whose} {want}{why}")
    return problems


def why_blocked(lab: Lab, verdicts) -> str:
    """A failure message's explanation of blocked probes, from the rules that drop them."""
    rules = dropping_rules(lab, verdicts)
    if not rules:
        return ""
    version = Version.parse(lab.runtime.version())
    guard = FEATURES["direct-routing-guard"]
    note = (f" (Docker {version} has the direct-routing guard: it {guard.summary}, {guard.reference}; "
            "a scheme that routes to containers must opt out)") if offers(guard.id, version) else ""
    return f"\nrules on the targets' hosts drop them by destination{note}:\n" + "\n".join(rules)


def dropping_rules(lab: Lab, verdicts) -> list[str]:
    """The rules on a target container's host that drop blocked probes by their destination:
    why a promised probe was blocked, where the engine wrote it down (Docker 28's direct-routing
    guard is one raw-table DROP per container address)."""
    found, tables = [], {}
    for verdict in verdicts:
        node = lab.containers.get(verdict.probe.target)
        if node is None:
            continue
        if node.host not in tables:
            tables[node.host] = [(t, line) for t in ("raw", "filter")
                                 for line in firewall.rules(lab.hosts[node.host], t)]
        for table, line in tables[node.host]:
            rule = IptablesRule.parse(line)
            if rule and ("-j", "DROP") in rule.spec and ("-d", f"{verdict.probe.address}/32") in rule.spec:
                found.append(f"{node.host} {table}: {line}")
    return list(dict.fromkeys(found))
