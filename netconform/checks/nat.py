"""NAT: the rules an engine must install, and what ext really sees.

Rules are read from both iptables backends (``firewall.rules``: whichever
the engine wrote with) and normalised into option/value pairs, so a rule
matches whatever order or extra matches the engine wrote it with.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from ..engines import FEATURES, Version, offers
from ..expect import network_of
from ..lab import Lab
from ..measure import Matrix
from . import firewall


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

    def covers(self, wanted: IptablesRule) -> bool:
        return self.chain == wanted.chain and wanted.spec <= self.spec


def nat_rules(lab: Lab, host: str) -> list[IptablesRule]:
    lines = firewall.rules(lab.hosts[host], "nat")
    return [rule for rule in map(IptablesRule.parse, lines) if rule is not None]


def bridges(lab: Lab, host: str) -> list[tuple[str, str]]:
    """(bridge interface, subnet) of every bridge network a container on the host is on (an
    engine may write a network's rules only once a container uses it, as netavark does)."""
    topo, scheme = lab.topology, lab.scheme
    used = {network_of(topo, c.name) for c in topo.containers_on(host)}
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


@dataclass(frozen=True)
class NatDialect:
    """How one engine writes NAT rules, read into the same two questions: is a container subnet
    masqueraded when it leaves (and only then), and is a host port DNATed to a container."""

    masquerades: Callable[[list[IptablesRule], str, str], bool]  # (rules, subnet, bridge)
    dnats: Callable[[list[IptablesRule], str, int, str], bool]  # (rules, proto, host port, address:port)
    masquerade_where: str  # where the rule is looked for, for the message
    dnat_where: str


def _docker_masquerades(rules: list[IptablesRule], subnet: str, bridge: str) -> bool:
    """``-A POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE``."""
    wanted = IptablesRule("POSTROUTING", frozenset({("-s", subnet), ("-o", f"!{bridge}"), ("-j", "MASQUERADE")}))
    return any(rule.covers(wanted) for rule in rules)


def _docker_dnats(rules: list[IptablesRule], proto: str, port: int, to: str) -> bool:
    """``-A DOCKER -p PROTO --dport PORT -j DNAT --to-destination ADDRESS:PORT``."""
    wanted = IptablesRule("DOCKER", frozenset({("-p", proto), ("--dport", str(port)), ("-j", "DNAT"),
                                               ("--to-destination", to)}))
    return any(rule.covers(wanted) for rule in rules)


def _jumps(rules: list[IptablesRule], chain: str, match: frozenset[tuple[str, str]]) -> set[str]:
    """The chains that rules of ``chain`` covering ``match`` jump to."""
    return {dict(rule.spec)["-j"] for rule in rules
            if rule.chain == chain and match <= rule.spec and "-j" in dict(rule.spec)}


def _netavark_masquerades(rules: list[IptablesRule], subnet: str, bridge: str) -> bool:
    """``-A POSTROUTING -s SUBNET -j NETAVARK-ID``, that chain accepting ``-d SUBNET`` (traffic
    staying on the network) and masquerading the rest."""
    for chain in _jumps(rules, "POSTROUTING", frozenset({("-s", subnet)})):
        own = [rule for rule in rules if rule.chain == chain]
        if (any({("-d", subnet), ("-j", "ACCEPT")} <= rule.spec for rule in own)
                and any(("-j", "MASQUERADE") in rule.spec for rule in own)):
            return True
    return False


def _netavark_dnats(rules: list[IptablesRule], proto: str, port: int, to: str) -> bool:
    """``-A NETAVARK-HOSTPORT-DNAT -p PROTO --dport PORT -j NETAVARK-DN-ID``, that chain's
    ``-p PROTO --dport PORT -j DNAT --to-destination ADDRESS:PORT``."""
    match = frozenset({("-p", proto), ("--dport", str(port))})
    wanted = match | {("-j", "DNAT"), ("--to-destination", to)}
    return any(rule.chain == chain and wanted <= rule.spec
               for chain in _jumps(rules, "NETAVARK-HOSTPORT-DNAT", match) for rule in rules)


DIALECTS = {
    "docker": NatDialect(_docker_masquerades, _docker_dnats, "nat POSTROUTING", "nat DOCKER"),
    "netavark": NatDialect(_netavark_masquerades, _netavark_dnats,
                           "nat POSTROUTING -> NETAVARK-<network>", "nat NETAVARK-HOSTPORT-DNAT -> NETAVARK-DN-<network>"),
}


def missing_rules(lab: Lab) -> list[str]:
    """MASQUERADE per container subnet and DNAT per published port, by host, read in the
    dialect of the lab's engine (``Runtime.nat_dialect``)."""
    problems = []
    dialect = DIALECTS[lab.runtime.nat_dialect]
    addresses = {name: node.addresses for name, node in lab.containers.items()}
    for host in (h.name for h in lab.topology.hosts):
        rules = nat_rules(lab, host)
        for bridge, subnet in bridges(lab, host):
            if not dialect.masquerades(rules, subnet, bridge):
                problems.append(f"{host}: no MASQUERADE for {subnet} leaving other than {bridge} "
                                f"({dialect.masquerade_where})")
        for c in lab.topology.containers_on(host):
            for pub in c.publish:
                address = next(iter(addresses[c.name].values()), "?")
                if not dialect.dnats(rules, pub.proto, pub.host_port, f"{address}:{pub.container_port}"):
                    problems.append(f"{host}: no DNAT of {pub.proto}/{pub.host_port} to {c.name} "
                                    f"{address}:{pub.container_port} ({dialect.dnat_where})")
    return problems


def masquerade_behaviour(lab: Lab, matrix: Matrix) -> list[str]:
    """Containers reach ext from their host's address, or their own where the scheme puts
    them on the LAN (no NAT)."""
    problems = []
    for c in lab.topology.containers:
        if c.mode not in ("bridge", "network"):
            continue
        nat = lab.scheme.promise.masquerades or c.mode == "network"
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
    via_proxy = lab.scheme.promise.published_via == "proxy"
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
