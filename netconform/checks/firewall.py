"""An engine's packet-filter rules as it wrote them, whichever iptables backend that was.

Docker writes its rules with the ``iptables`` first on its PATH:
iptables-nft on Debian 12 by default, iptables-legacy where the machine's
alternative points there.  The kernel keeps the two backends' rules apart
and each backend's tools see only their own, so a check that read through
one would miss what an engine wrote with the other and report rules
missing that are there.  ``rules`` reads both, in ``iptables -S`` form:
the nft backend's tables, and the legacy backend's where the namespace
has them loaded (``/proc/net/ip_tables_names``; reading an absent legacy
table would create it), and the tables engines write natively with nftables
(netavark's ``inet netavark``: ``checks/nftables.py`` puts them in the same
form).  Docker 29's own nftables backend (``--firewall-backend``) is not
offered by the engines netconform runs here.
"""

from __future__ import annotations

import json

from ..nodes import Node
from . import nftables


def rules(node: Node, table: str, chain: str = "") -> list[str]:
    """Every rule of ``table`` (``-P``, ``-N`` and ``-A`` lines) from both backends, each once."""
    script = (f"iptables-nft -t {table} -S {chain} 2>/dev/null; "
              f"if grep -qx {table} /proc/net/ip_tables_names 2>/dev/null; then "
              f"iptables-legacy -t {table} -S {chain} 2>/dev/null; fi")
    lines = node.exec(["sh", "-c", script]).stdout.splitlines()
    for native in nftables.NATIVE:
        if not chain:
            lines += nftables.lines(_document(node, native), table)
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def _document(node: Node, native: str) -> dict:
    """``nft -j list table`` of a native table; empty where the host has no such table (or no nft)."""
    listed = node.exec(["sh", "-c", f"nft -j list table {native} 2>/dev/null"]).stdout
    try:
        return json.loads(listed) if listed.strip() else {}
    except ValueError:
        return {}



def stopping(node: Node) -> dict[str, int]:
    """Packets each rule that stops traffic has counted so far: DROP and REJECT rules and DROP
    policies of the filter and raw tables (Docker 28's direct-routing guard is in raw), keyed
    ``TABLE: RULE`` with the counters taken out."""
    found: dict[str, int] = {}
    for table in ("filter", "raw"):
        script = (f"iptables-nft -t {table} -v -S 2>/dev/null; if grep -qx {table} /proc/net/ip_tables_names "
                  f"2>/dev/null; then iptables-legacy -t {table} -v -S 2>/dev/null; fi")
        for line in node.exec(["sh", "-c", script]).stdout.splitlines():
            words = line.split()
            if "-c" not in words or not (line.endswith(("-j DROP", "-j REJECT")) or
                                         (words[0] == "-P" and words[2] == "DROP")):
                continue
            at = words.index("-c")
            rule = " ".join(words[:at] + words[at + 3:])
            found[f"{table}: {rule}"] = found.get(f"{table}: {rule}", 0) + int(words[at + 1])
    return found
