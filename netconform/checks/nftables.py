"""Native nftables tables read as ``iptables -S`` lines, so one walker judges every engine.

netavark 1.10 and later (Podman 5 and 6) write their rules with nftables
directly, in a table of their own (``inet netavark``), not through
iptables-nft: ``iptables -S`` shows none of them.  ``lines`` translates
such a table, read with ``nft -j``, into the form ``checks/chains.py``
walks: each base chain under the name of its hook (``PREROUTING``,
``POSTROUTING``, ``OUTPUT``, ``FORWARD``, ``INPUT``), regular chains under
their own names, rules in order.  A base chain belongs to the iptables
table of its type (``nat``; ``filter`` at the filter priority, not raw's or
mangle's), together with the regular chains it reaches.

What has an iptables equivalent becomes that match or target; anything
else stays in the rule as an ``-m nft --expr`` match carrying the
expression, which the walker takes to hold (see ``chains``), so an
unknown rule in front of the engine's is reported as applying rather than
skipped, and the message shows what it was.
"""

from __future__ import annotations

import json
import shlex

# The tables engines write natively, as ``nft list table`` names them.
NATIVE = ("inet netavark",)
HOOKS = {"prerouting": "PREROUTING", "input": "INPUT", "forward": "FORWARD", "output": "OUTPUT",
         "postrouting": "POSTROUTING"}
VERDICTS = {"accept": "ACCEPT", "drop": "DROP", "return": "RETURN", "masquerade": "MASQUERADE",
            "reject": "REJECT"}
FIELDS = {("ip", "saddr"): "-s", ("ip", "daddr"): "-d"}
PROTOCOLS = ("tcp", "udp", "sctp", "th")
FILTER_PRIORITIES = range(-149, 150)  # raw (-300) and mangle (-150) are iptables tables of their own


def lines(document: dict, table: str) -> list[str]:
    """``-P``, ``-N`` and ``-A`` lines of one native table's chains that belong to the iptables
    ``table`` (``nat`` or ``filter``), from ``nft -j list table`` output."""
    items = document.get("nftables", [])
    chains = [i["chain"] for i in items if "chain" in i]
    rules = [i["rule"] for i in items if "rule" in i]
    names = {c["name"]: HOOKS.get(c.get("hook", ""), c["name"]) if "hook" in c else c["name"] for c in chains}
    roots = [c["name"] for c in chains if "hook" in c and _belongs(c, table)]
    reached, todo = set(roots), list(roots)
    while todo:
        chain = todo.pop()
        for rule in rules:
            if rule["chain"] == chain:
                for expr in rule["expr"]:
                    target = (expr.get("jump") or expr.get("goto") or {}).get("target")
                    if target and target not in reached:
                        reached.add(target)
                        todo.append(target)
    found = [f"-P {names[c['name']]} {c.get('policy', 'accept').upper()}" for c in chains
             if c["name"] in roots]
    found += [f"-N {names[c['name']]}" for c in chains if c["name"] in reached and "hook" not in c]
    found += [f"-A {names[rule['chain']]} {rule_words(rule['expr'])}".rstrip() for rule in rules
              if rule["chain"] in reached]
    return found


def _belongs(chain: dict, table: str) -> bool:
    if chain.get("type") == "nat":
        return table == "nat"
    if chain.get("type") == "filter":
        return table == "filter" and int(chain.get("prio", 0)) in FILTER_PRIORITIES
    return False


def rule_words(exprs: list[dict]) -> str:
    """One nftables rule's expressions as iptables words."""
    words: list[str] = []
    for expr in exprs:
        words += _words(expr)
    return " ".join(words)


def _words(expr: dict) -> list[str]:
    (kind, value), = expr.items()
    if kind in ("counter", "comment"):
        return []
    if kind in VERDICTS:
        return ["-j", VERDICTS[kind]]
    if kind in ("jump", "goto"):
        return ["-j" if kind == "jump" else "-g", value["target"]]
    if kind == "dnat" and "addr" in value:
        return ["-j", "DNAT", "--to-destination", _address(value)]
    if kind == "snat" and "addr" in value:
        return ["-j", "SNAT", "--to-source", _address(value)]
    if kind == "mangle" and _is_mark(value.get("key")):
        mark = _or_mark(value.get("value"))
        if mark is not None:
            return ["-j", "MARK", "--set-xmark", f"{mark:#x}/{mark:#x}"]
    if kind == "match":
        found = _match(value["op"], value["left"], value["right"])
        if found is not None:
            return found
    return ["-m", "nft", "--expr", shlex.quote(json.dumps(expr, separators=(",", ":")))]


def _match(op: str, left: dict, right) -> list[str] | None:
    negated = ["!"] if op == "!=" else []
    if op not in ("==", "!=", "in"):
        return None
    payload, meta = left.get("payload") if isinstance(left, dict) else None, left.get("meta") if isinstance(left, dict) else None
    if payload and (payload.get("protocol"), payload.get("field")) in FIELDS:
        return negated + [FIELDS[payload["protocol"], payload["field"]], _prefix(right)]
    if payload and payload.get("protocol") in PROTOCOLS and payload.get("field") in ("dport", "sport"):
        port = f"{right['range'][0]}:{right['range'][1]}" if isinstance(right, dict) and "range" in right else str(right)
        proto = [] if payload["protocol"] == "th" else ["-p", payload["protocol"], "-m", payload["protocol"]]
        return proto + negated + [f"--{payload['field']}", port]
    if meta and meta.get("key") in ("iifname", "oifname") and isinstance(right, str):
        return negated + ["-i" if meta["key"] == "iifname" else "-o", right.replace("*", "+")]
    if meta and meta.get("key") == "l4proto" and isinstance(right, str):
        return negated + ["-p", right]
    if "fib" in left and left["fib"].get("result") == "type" and left["fib"].get("flags") == ["daddr"] \
            and isinstance(right, str):
        return ["-m", "addrtype"] + negated + ["--dst-type", right.upper()]
    if "ct" in left and left["ct"].get("key") == "state":
        states = right if isinstance(right, list) else [right]
        return ["-m", "conntrack"] + negated + ["--ctstate", ",".join(s.upper() for s in states)]
    if "&" in left and _is_mark(left["&"][0]) and isinstance(right, int):
        return ["-m", "mark"] + negated + ["--mark", f"{right:#x}/{left['&'][1]:#x}"]
    if _is_mark(left) and isinstance(right, int):
        return ["-m", "mark"] + negated + ["--mark", f"{right:#x}"]
    return None


def _is_mark(value) -> bool:
    return isinstance(value, dict) and value.get("meta", {}).get("key") == "mark"


def _or_mark(value) -> int | None:
    """The bits of ``meta mark set meta mark | BITS``; a plain ``meta mark set N`` as N."""
    if isinstance(value, int):
        return value
    if isinstance(value, dict) and "|" in value and _is_mark(value["|"][0]) and isinstance(value["|"][1], int):
        return value["|"][1]
    return None


def _prefix(right) -> str:
    if isinstance(right, dict) and "prefix" in right:
        return f"{right['prefix']['addr']}/{right['prefix']['len']}"
    return f"{right}/32" if isinstance(right, str) and "/" not in right else str(right)


def _address(value: dict) -> str:
    return f"{value['addr']}:{value['port']}" if "port" in value else value["addr"]
