"""weaveDNS, asked from each container: every Weave-attached container's name, and only it.

Weave promises that a container named in its domain (``NAME.weave.local``)
is found by that name from every host: each router's DNS server answers
from the records the routers gossip.  The check asks each container's own
host's weaveDNS (where ``weave launch`` points a container's resolver: the
engine bridge's address), from the container's stack, for every other
container's name, and wants exactly that container's Weave address back: a
name that does not resolve, one that answers another address too (a record
added by hand, a stale one) or a name no container has that resolves, each
turns it red naming the name and what came back.
"""

from __future__ import annotations

import re

from ..lab import Lab

NOBODY = "nobody"  # a name no container has: weaveDNS must not answer it


def lookup(lab: Lab, source: str, server: str, names: list[str]) -> dict[str, set[str]]:
    """Every address each name resolves to at ``server``, asked from ``source``'s stack (busybox
    nslookup; all A records, not only the first: an extra one is what a wrong record looks like)."""
    script = "\n".join(f'echo "== {n}"; nslookup {n} {server} 2>&1 | sed -n "/^Name:/,\\$p"' for n in names)
    out = lab.containers[source].exec(["sh", "-c", script], timeout=30).stdout
    found: dict[str, set[str]] = {n: set() for n in names}
    current = None
    for line in out.splitlines():
        if line.startswith("== "):
            current = line[3:].strip()
        elif current in found and (address := re.match(r"Address(?: \d+)?:\s*([0-9.]+)(?:\s|$)", line.strip())):
            found[current].add(address.group(1))
    return found


def weave_dns(lab: Lab) -> list[str]:
    """From each Weave-attached container, every other one's ``NAME.weave.local`` at its own host's
    weaveDNS: exactly that container's Weave address; and a name nobody has: nothing."""
    scheme, problems = lab.scheme, []
    attached = [c for c in lab.topology.containers
                if c.name in lab.containers and scheme.network in lab.containers[c.name].addresses]
    for source in attached:
        server = scheme.dns_address(lab.topology, source.host)
        others = [c for c in attached if c.name != source.name]
        asked = [scheme.dns_name(c.name) for c in others] + [scheme.dns_name(NOBODY)]
        found = lookup(lab, source.name, server, asked)
        for other in others:
            want = {lab.containers[other.name].addresses[scheme.network]}
            got = found[scheme.dns_name(other.name)]
            if got != want:
                problems.append(f"{source.name}: {scheme.dns_name(other.name)} resolved to "
                                f"{', '.join(sorted(got)) or 'nothing'} at {source.host}'s weaveDNS ({server}), "
                                f"not {other.name}'s Weave address {', '.join(want)}")
        if found[scheme.dns_name(NOBODY)]:
            problems.append(f"{source.name}: {scheme.dns_name(NOBODY)}, which no container has, resolved to "
                            f"{', '.join(sorted(found[scheme.dns_name(NOBODY)]))} at {source.host}'s weaveDNS ({server})")
    return problems
