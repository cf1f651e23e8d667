"""What a lab changed on a machine it does not own, and how it is undone.

The ssh provider takes a ``State`` of every host before the lab touches it:
links, addresses, routes, iptables rules and the sysctls engines flip.
What the lab then changes (engines' bridges and rules, schemes' bridges,
tunnels, OVS ports and routes) is the difference to that state, whatever
made it, so nothing escapes the record.  ``undo`` stops the daemons the lab
started (by the pid files in its work directories), removes what was added,
restores what was removed and returns what still differs, which teardown
reports rather than hides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .nodes import HostNode

SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")
SEPARATOR = "--netconform--"
# The lab's own directories on a host: daemons' pid files, engines' data.
WORKDIRS = ("/run/lab", "/var/lib/netconform")


@dataclass(frozen=True)
class State:
    links: frozenset[str]
    up: frozenset[str]  # links that are administratively up
    masters: frozenset[tuple[str, str]]  # (link, its bridge or bond)
    addresses: frozenset[tuple[str, str]]  # (link, address/prefix)
    routes: frozenset[str]  # `ip route` lines of the main table
    iptables: str  # iptables-save without counters and comments
    sysctls: tuple[tuple[str, str], ...]


def snapshot(node: HostNode) -> State:
    parts = node.exec(["sh", "-c", f"""ip -j link show; echo {SEPARATOR}; ip -j addr show; echo {SEPARATOR}
ip route show table main; echo {SEPARATOR}; iptables-save 2>/dev/null; echo {SEPARATOR}
for s in {' '.join(SYSCTLS)}; do echo "$s=$(sysctl -n $s 2>/dev/null)"; done"""]).check(
        f"reading the state of {node.name}").stdout.split(SEPARATOR + "\n")
    links = json.loads(parts[0])
    addresses = {(a["ifname"], f"{i['local']}/{i['prefixlen']}") for a in json.loads(parts[1])
                 for i in a.get("addr_info", []) if i.get("family") == "inet"}
    rules = _tables(parts[3])
    return State(frozenset(link["ifname"] for link in links),
                 frozenset(link["ifname"] for link in links if "UP" in link.get("flags", [])),
                 frozenset((link["ifname"], link["master"]) for link in links if "master" in link),
                 frozenset(addresses), frozenset(filter(None, parts[2].splitlines())), rules,
                 tuple(tuple(line.split("=", 1)) for line in parts[4].splitlines() if "=" in line))


BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


def _tables(save: str) -> str:
    """iptables-save without counters, comments, and tables that hold nothing (all policies
    ACCEPT, no rules, no chains of their own): such a table is the same as none."""
    kept, table = [], []
    for line in (line for line in save.splitlines() if line and not line.startswith("#")):
        table.append(line.split(" [")[0] if line.startswith(":") else line)
        if line == "COMMIT":
            chains = [c for c in table if c.startswith(":")]
            empty = (len(table) == len(chains) + 2
                     and all(c.split()[0][1:] in BUILTIN_CHAINS and c.split()[1] == "ACCEPT" for c in chains))
            kept += [] if empty else table
            table = []
    return "\n".join(kept)


def changes(before: State, after: State) -> list[str]:
    """The differences, one line each, as a person would read them."""
    out = [f"+ link {n}" for n in sorted(after.links - before.links)]
    out += [f"- link {n}" for n in sorted(before.links - after.links)]
    out += [f"+ up {n}" for n in sorted(after.up - before.up - (after.links - before.links))]
    out += [f"- up {n}" for n in sorted((before.up - after.up) & after.links)]
    out += [f"+ master {m} of {n}" for n, m in sorted(after.masters - before.masters)]
    out += [f"- master {m} of {n}" for n, m in sorted(before.masters - after.masters)]
    out += [f"+ address {a} on {n}" for n, a in sorted(after.addresses - before.addresses)]
    out += [f"- address {a} on {n}" for n, a in sorted(before.addresses - after.addresses)]
    out += [f"+ route {r}" for r in sorted(after.routes - before.routes)]
    out += [f"- route {r}" for r in sorted(before.routes - after.routes)]
    old, new = set(before.iptables.splitlines()), set(after.iptables.splitlines())
    out += [f"+ iptables {r}" for r in sorted(new - old)] + [f"- iptables {r}" for r in sorted(old - new)]
    out += [f"~ sysctl {k}={v} (was {dict(before.sysctls).get(k)})"
            for k, v in after.sysctls if dict(before.sysctls).get(k) != v]
    return out


def undo_script(before: State, now: State) -> str:
    """Shell that takes a host from ``now`` back to ``before``."""
    lines = [f"for f in $(find {' '.join(WORKDIRS)} -name '*.pid' 2>/dev/null); do "
             'kill "$(cat "$f")" 2>/dev/null; done; sleep 1',
             # A kernel OVS datapath outlives ovs-vswitchd, with its ports.
             "command -v ovs-dpctl >/dev/null && for dp in $(ovs-dpctl dump-dps 2>/dev/null); do "
             f"case \" {' '.join(sorted(before.links))} \" in *\" ${{dp#system@}} \"*) ;; "
             '*) ovs-dpctl del-dp "$dp";; esac; done']
    lines += [f"ip link del {n} 2>/dev/null" for n in sorted(now.links - before.links)]
    lines += [f"ip link set {n} nomaster 2>/dev/null" for n, _ in sorted(now.masters - before.masters)
              if n in before.links]
    lines += [f"ip link set {n} master {m}" for n, m in sorted(before.masters - now.masters)]
    lines += [f"ip addr del {a} dev {n}" for n, a in sorted(now.addresses - before.addresses)
              if n in before.links]
    lines += [f"ip addr add {a} dev {n}" for n, a in sorted(before.addresses - now.addresses)]
    lines += [f"ip link set {n} up" for n in sorted(before.up)]
    lines += [f"ip route del {r}" for r in sorted(now.routes - before.routes)]
    lines += [f"ip route add {r} 2>/dev/null" for r in sorted(before.routes)]
    lines += [f"sysctl -qw {k}={v}" for k, v in before.sysctls if v]
    # Tables the lab brought into use are emptied; the ones it found are restored as they were.
    found = {line[1:] for line in before.iptables.splitlines() if line.startswith("*")}
    for table in sorted({line[1:] for line in now.iptables.splitlines() if line.startswith("*")} - found):
        lines += [f"iptables -t {table} -P {chain} ACCEPT 2>/dev/null" for chain in BUILTIN_CHAINS]
        lines += [f"iptables -t {table} -F", f"iptables -t {table} -X"]
    if before.iptables:
        lines.append(f"iptables-restore <<'{SEPARATOR}'\n{before.iptables}\n{SEPARATOR}")
    lines.append(f"rm -rf {' '.join(WORKDIRS)}")
    return "\n".join(lines)


def undo(node: HostNode, before: State) -> list[str]:
    """Put ``node`` back as ``before`` found it; returns what still differs."""
    node.exec(["sh", "-c", undo_script(before, snapshot(node))], timeout=120)
    return changes(before, snapshot(node))
