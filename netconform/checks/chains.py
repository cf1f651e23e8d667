"""An iptables table evaluated as the kernel walks it: the rule that applies, not a rule that exists.

A rule check that accepts a matching rule anywhere in a chain passes when an
earlier rule already decided the packet (an ACCEPT or RETURN in front of a
MASQUERADE, a DNAT to the wrong port ahead of the engine's).  ``walk``
follows a chain from its start for one packet, in order, through jumps and
RETURNs (to the calling chain), past non-terminal targets (MARK, LOG), and
stops at the first terminal one: what the kernel does with the first packet
of that flow in that table.  Docker's and netavark's iptables layouts are
rules in ``iptables -S`` form, and netavark's nftables table is read into
that form (``checks/nftables.py``), so one walker reads them all.

Matches it does not know (a module other than the ones engines write in
their nat rules) are taken to match, so an unknown rule in front of the
engine's is reported as applying rather than silently skipped; the
``Step`` names the rule, so the message says which one it was.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

TERMINAL = {"ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"}
IGNORED = {"-m", "--comment", "-j", "--to-destination", "--to-source", "--to-ports", "--set-xmark",
           "--set-mark", "--random", "--random-fully", "--reject-with", "-g"}


@dataclass(frozen=True)
class Packet:
    """The first packet of a flow as a nat table sees it."""

    proto: str  # tcp, udp, icmp
    src: str
    dst: str
    dport: int | None = None
    iif: str | None = None  # None: not known at this hook (POSTROUTING, OUTPUT)
    oif: str | None = None  # None: not known at this hook (PREROUTING)
    local: frozenset[str] = frozenset()  # the host's own addresses (-m addrtype --dst-type LOCAL)


@dataclass(frozen=True)
class Rule:
    chain: str
    words: tuple[tuple[str, str, bool], ...]  # (option, value, negated)
    target: str
    line: str

    @classmethod
    def parse(cls, line: str) -> Rule | None:
        try:
            words = shlex.split(line)
        except ValueError:
            return None
        if len(words) < 2 or words[0] != "-A":
            return None
        pairs, target, negate, i = [], "", False, 2
        while i < len(words):
            word = words[i]
            if word == "!":
                negate = True
            elif word.startswith("-"):
                value = words[i + 1] if i + 1 < len(words) and not (words[i + 1].startswith("-") and
                                                                   words[i + 1] != "-") else ""
                if word in ("-j", "-g"):
                    target = value
                pairs.append((word, value, negate))
                negate = False
                i += 1 if value else 0
            i += 1
        return cls(words[1], tuple(pairs), target, line)

    def value(self, option: str) -> str | None:
        return next((v for o, v, _ in self.words if o == option), None)

    def matches(self, packet: Packet) -> bool:
        for option, value, negated in self.words:
            found = _match(option, value, packet)
            if found is None:
                continue
            if found == negated:
                return False
        return True


def _in(address: str, network: str) -> bool:
    return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(network, strict=False)


def _iface(name: str | None, pattern: str) -> bool | None:
    if name is None:
        return None  # not known at this hook: the kernel would not let such a rule load there
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern


def _match(option: str, value: str, packet: Packet) -> bool | None:
    """Whether one match holds for the packet; None for words that are not matches."""
    if option in IGNORED or option.startswith("--set") or option.startswith("--to"):
        return None
    if option in ("-s", "--source"):
        return _in(packet.src, value)
    if option in ("-d", "--destination"):
        return _in(packet.dst, value)
    if option in ("-p", "--protocol"):
        return value == packet.proto or value == "all"
    if option in ("--dport", "--destination-port"):
        return packet.dport is not None and _port_in(packet.dport, value)
    if option == "--dports":
        return packet.dport is not None and any(_port_in(packet.dport, v) for v in value.split(","))
    if option in ("-i", "--in-interface"):
        return _iface(packet.iif, value)
    if option in ("-o", "--out-interface"):
        return _iface(packet.oif, value)
    if option in ("--dst-type", "--src-type"):  # -m addrtype: the packets walked are unicast
        address = packet.dst if option == "--dst-type" else packet.src
        return {"LOCAL": address in packet.local, "UNICAST": True}.get(value, False)
    if option in ("--ctstate", "--state"):  # the first packet of a flow is NEW
        return "NEW" in value.upper().split(",")
    if option == "--mark":  # a first packet carries no mark yet
        mark, _, mask = value.partition("/")
        return int(mark, 0) & int(mask or "0xffffffff", 0) == 0
    return True  # a match this walker does not know: taken to hold (see the module's docstring)


def _port_in(port: int, spec: str) -> bool:
    low, _, high = spec.partition(":")
    return int(low or 0) <= port <= int(high or low)


@dataclass(frozen=True)
class Step:
    """The rule that decided a packet, and the target it applied."""

    target: str  # MASQUERADE, DNAT, ACCEPT, ... or "policy" when no rule decided
    rule: str  # the rule line, or the chain whose policy applied
    to: str = ""  # DNAT/SNAT's --to-destination/--to-source

    def __str__(self) -> str:
        return self.rule


def walk(lines: list[str], chain: str, packet: Packet, depth: int = 0) -> Step | None:
    """The first terminal rule the packet meets from ``chain`` on, following jumps; None when it
    falls off ``chain`` (RETURN or its end: the caller goes on, or a built-in chain's policy)."""
    if depth > 32:
        return None
    for line in lines:
        rule = Rule.parse(line)
        if rule is None or rule.chain != chain or not rule.matches(packet):
            continue
        if rule.target == "RETURN":
            return None
        if rule.target in TERMINAL:
            return Step(rule.target, line, rule.value("--to-destination") or rule.value("--to-source") or "")
        if rule.target and rule.target not in TERMINAL and any(l.split()[:2] in (["-N", rule.target],
                                                                                  ["-A", rule.target]) for l in lines):
            found = walk(lines, rule.target, packet, depth + 1)
            if found is not None:
                return found
            if rule.value("-g") is not None:  # goto: falling off returns past the caller
                return None
        # MARK, LOG, CONNMARK ...: not terminal, the walk goes on
    return None


def applies(lines: list[str], chain: str, packet: Packet) -> Step:
    """What the table does with the packet from the built-in ``chain``: the deciding rule, or the
    chain's policy (ACCEPT in nat: the packet leaves untranslated)."""
    found = walk(lines, chain, packet)
    if found is not None:
        return found
    policy = next((l.split()[2] for l in lines if l.startswith(f"-P {chain} ")), "ACCEPT")
    return Step(policy, f"policy of {chain} ({policy}): no rule applied")
