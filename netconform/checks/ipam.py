"""Weave Net's IPAM, checked against weaver's own account of it.

Weave promises that every container it attaches gets an address its IPAM
allocated, from the share of the range its own host's router owns (the
ring ``/report`` shows, split by Weave's consensus), and that no two
containers share one.  The check compares what each container really has
on ``ethwe`` (``ethwe0`` from the Docker plugin) with what the routers say
they handed out (``/ip``: owned addresses by container ID, or by the address
itself for the plugin, whose IPAM requests name no container) and where (``/report``: the ring's entries),
so an address given by hand, taken twice, or from another host's share
turns it red, naming the container.
"""

from __future__ import annotations

import ipaddress
import json

from ..lab import Lab

def _shares(report: dict) -> list[tuple[ipaddress.IPv4Address, int, str]]:
    """(first address, size, owner's nickname) of each entry of the IPAM ring."""
    return [(ipaddress.IPv4Address(e["Token"]), int(e["Size"]), e["Nickname"])
            for e in (report.get("IPAM") or {}).get("Entries") or []]


def owner(shares, address: ipaddress.IPv4Address) -> str | None:
    """The nickname of the router whose share of the ring holds ``address``."""
    return next((nick for first, size, nick in shares if first <= address < first + size), None)


def weave_ipam(lab: Lab) -> list[str]:
    """Each Weave-attached container's address on ``Scheme.interface``: allocated to it by its
    host's router (filed under ``Scheme.ipam_ident``), inside that router's share, held by no
    other container."""
    problems, holders, api, ifname = [], {}, lab.scheme.api, lab.scheme.interface
    for host in lab.topology.hosts:
        shares = _shares(json.loads(api(lab.site, host.name, "/report") or "{}"))
        owned = {m["containerid"]: m["addrs"] for m in
                 json.loads(api(lab.site, host.name, "/ip") or "{}").get("owned") or []}
        for spec in lab.topology.containers:
            if spec.host != host.name or spec.name not in lab.containers:
                continue
            node = lab.containers[spec.name]
            if lab.scheme.network not in node.addresses:
                continue
            ident = lab.scheme.ipam_ident(node)
            given = [str(ipaddress.IPv4Interface(a).ip) for a in owned.get(ident, [])]
            wire = node.exec(["busybox", "ip", "-o", "-4", "addr", "show", "dev", ifname]).stdout.split()
            has = [str(ipaddress.IPv4Interface(w).ip) for w in wire[3:4]]
            if not given:
                problems.append(f"{spec.name}: {host.name}'s router holds no address for it (weaver /ip, "
                                f"under {ident!r}); "
                                f"{ifname} has {has or 'none'}")
                continue
            if not has or has[0] not in given:
                problems.append(f"{spec.name}: {ifname} has {has or 'no address'}, not an address Weave's IPAM "
                                f"allocated to it ({', '.join(given)}, weaver /ip on {host.name})")
            for address in has:
                held_by = owner(shares, ipaddress.IPv4Address(address))
                if held_by != host.name:
                    problems.append(f"{spec.name}: {address} is in {held_by or 'no router'}'s share of the ring, "
                                    f"not {host.name}'s (weaver /report on {host.name})")
                holders.setdefault(address, []).append(spec.name)
    problems += [f"{' and '.join(names)} both have {address} on {ifname}"
                 for address, names in holders.items() if len(names) > 1]
    return problems
