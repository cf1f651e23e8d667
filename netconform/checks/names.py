"""Names: /etc/hosts entries of links, embedded DNS, a network's own DNS servers, shared hostnames."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ext_dns
from ..expect import own_stacks
from ..infra import infra
from ..lab import Lab
from . import firewall
from .nat import IptablesRule


def hosts_entries(lab: Lab, container: str) -> dict[str, str]:
    """Each name in a container's /etc/hosts to its address."""
    content = infra(lab.containers[container]).file("/etc/hosts").content_string
    entries = {}
    for line in content.splitlines():
        words = line.split("#")[0].split()
        for name in words[1:]:
            entries[name] = words[0]
    return entries


def link_entries(lab: Lab) -> list[str]:
    """Every linked receiver names its source, under the alias, at the source's current address."""
    problems = []
    for c in lab.topology.containers:
        if not c.links:
            continue
        entries = hosts_entries(lab, c.name)
        for link in c.links:
            source = lab.containers[link.source]
            source.reload()
            address = source.addresses.get("bridge")
            found = entries.get(link.alias)
            if found is None:
                problems.append(f"{c.name}: /etc/hosts has no entry for alias {link.alias!r} "
                                f"of {link.source}")
            elif found != address:
                problems.append(f"{c.name}: /etc/hosts maps {link.alias!r} to {found}, but "
                                f"{link.source} is at {address}")
    return problems


def link_rule_addresses(lab: Lab, host: str, receiver: str, port: int) -> set[tuple[str, str]]:
    """(chain, address) of every filter ACCEPT rule that lets ``receiver`` talk to ``port`` of
    another container (the rules ``--link`` writes under --icc=false), read from the host."""
    found = set()
    for line in firewall.rules(lab.hosts[host], "filter"):
        rule = IptablesRule.parse(line)
        if rule is None or ("-j", "ACCEPT") not in rule.spec:
            continue
        spec = dict(rule.spec)
        if spec.get("-s") == f"{receiver}/32" and spec.get("--dport") == str(port) and "-d" in spec:
            found.add((rule.chain, spec["-d"].removesuffix("/32")))
        if spec.get("-d") == f"{receiver}/32" and spec.get("--sport") == str(port) and "-s" in spec:
            found.add((rule.chain, spec["-s"].removesuffix("/32")))
    return found


def resolve(lab: Lab, source: str, names: list[str]) -> dict[str, str | None]:
    """Look names up from a container through its resolver, all at once."""
    script = "\n".join(f'(echo "{n} $(nslookup {n} 2>/dev/null | grep -A1 "^Name:" | '
                       f'grep -o "Address:* [0-9.]*" | head -1)") &' for n in names) + "\nwait"
    out = lab.containers[source].exec(["sh", "-c", script]).stdout
    found: dict[str, str | None] = {n: None for n in names}
    for line in out.splitlines():
        name, _, rest = line.partition(" ")
        address = re.search(r"[0-9.]+$", rest)
        if name in found and address:
            found[name] = address.group(0)
    return found


def embedded_dns(lab: Lab) -> list[str]:
    """On user-defined networks, names resolve within a network and only there.

    Who shares a network comes from the topology, so a container that was
    disconnected or renamed shows up as a name that no longer resolves.
    """
    problems = []
    topo = lab.topology
    members = own_stacks(topo)
    for c in (m for m in members if m.mode == "network"):
        others = [o for o in members if o.name != c.name]
        found = resolve(lab, c.name, [o.name for o in others])
        for other in others:
            if other.network == c.network:
                node = lab.containers[other.name]
                node.reload()
                want = node.addresses.get(c.network)
                if found[other.name] is None or found[other.name] != want:
                    problems.append(f"{c.name}: {other.name} resolved to {found[other.name]}, "
                                    f"not {want} on {c.network}")
            elif found[other.name] is not None:
                problems.append(f"{c.name}: {other.name} resolved to {found[other.name]}, "
                                "but they share no network")
    return problems


def network_dns(lab: Lab) -> list[str]:
    """A network with DNS servers of its own sends its containers' outside names to them: each
    container on one resolves ``ext_dns.NAME``, which only ext's resolver answers."""
    problems, want = [], str(lab.topology.ext_address().ip)
    for c, servers in own_dns(lab):
        found = resolve(lab, c.name, [ext_dns.NAME])[ext_dns.NAME]
        if found != want:
            problems.append(f"{c.name}: {ext_dns.NAME} resolved to {found or 'nothing'}, not {want}: network "
                            f"{c.network}'s DNS servers ({', '.join(servers)}) were not asked")
    return problems


def network_dns_update(lab: Lab) -> list[str]:
    """The network's DNS servers changed while its containers run: with them dropped, the name
    only they answer stops resolving; added back, it resolves again."""
    problems, want = [], str(lab.topology.ext_address().ip)
    for c, servers in own_dns(lab):
        network = lab.topology.network(c.network)
        lab.runtime.set_network_dns(network.host, network.name, add=(), drop=servers)
        dropped = resolve(lab, c.name, [ext_dns.NAME])[ext_dns.NAME]
        lab.runtime.set_network_dns(network.host, network.name, add=servers, drop=())
        added = resolve(lab, c.name, [ext_dns.NAME])[ext_dns.NAME]
        if dropped == want:
            problems.append(dns_kept_after_drop(c.name, want, servers, c.network))
        if added != want:
            problems.append(f"{c.name}: {ext_dns.NAME} resolved to {added or 'nothing'}, not {want}, after "
                            f"{', '.join(servers)} were added back to network {c.network}'s DNS servers")
    return problems


def dns_kept_after_drop(container: str, want: str, servers: tuple[str, ...], network: str) -> str:
    """The observation of a container still resolving through DNS servers dropped from its network
    (deviations predict exactly these)."""
    return (f"{container}: {ext_dns.NAME} still resolved to {want} after {', '.join(servers)} were dropped "
            f"from network {network}'s DNS servers")


def own_dns(lab: Lab) -> list[tuple[object, tuple[str, ...]]]:
    """(container, its network's DNS servers) for containers on a network that has some."""
    servers = {n.name: tuple(map(str, n.dns)) for n in lab.topology.networks if n.dns}
    return [(c, servers[c.network]) for c in lab.topology.containers
            if c.mode == "network" and c.network in servers]


def hostname_not_shared(name: str, mine: str, target: str, theirs: str) -> str:
    """The observation of a container-mode container not answering to its target's hostname,
    with both names (deviations predict exactly these)."""
    return f"{name}: hostname {mine!r}, not {target}'s {theirs!r}"


@dataclass(frozen=True)
class HostnameMismatch:
    name: str
    target: str
    mine: str
    theirs: str

    @property
    def observation(self) -> str:
        return hostname_not_shared(self.name, self.mine, self.target, self.theirs)

    def __str__(self) -> str:
        return f"{self.name}: hostname {self.mine!r}, but {self.target}'s is {self.theirs!r}"


def hostname_mismatches(lab: Lab) -> list[HostnameMismatch]:
    """Container-mode containers that do not answer to their target's hostname."""
    found = []
    for c in lab.topology.containers:
        if c.mode == "container":
            mine = lab.containers[c.name].exec(["hostname"]).stdout.strip()
            theirs = lab.containers[c.container].exec(["hostname"]).stdout.strip()
            if mine != theirs:
                found.append(HostnameMismatch(c.name, c.container, mine, theirs))
    return found
