"""How each engine writes its NAT: where its rules live, and how a scheme exempts traffic from them.

Checks read every layout the same way (``checks/chains.py`` walks it as the
kernel applies it; ``checks/nftables.py`` brings native nftables tables into
that form), so a dialect only says what differs for people and for the
schemes that must add to an engine's NAT: where a message should send the
reader, and the command that keeps traffic between container subnets
unmasqueraded (host-gw), which must land where the engine's own masquerade
cannot come first.  ``Runtime.nat_dialect`` names one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NatDialect:
    masquerade_where: str
    dnat_where: str
    exempt: str  # shell: {own} -> {theirs} leaves unmasqueraded, before any of the engine's rules


IPTABLES_EXEMPT = "iptables -t nat -I POSTROUTING -s {own} -d {theirs} -j RETURN"

DIALECTS = {
    "docker": NatDialect("nat POSTROUTING", "nat PREROUTING -> DOCKER", IPTABLES_EXEMPT),
    # netavark's iptables driver: its chains are jumped to from nat POSTROUTING, after our RETURN.
    "netavark": NatDialect("nat POSTROUTING -> NETAVARK-<network>",
                           "nat PREROUTING -> NETAVARK-HOSTPORT-DNAT -> NETAVARK-DN-<network>", IPTABLES_EXEMPT),
    # netavark's nftables driver: a table of its own, whose masquerade an iptables RETURN cannot
    # stop (another table's nat chain); the exemption is an accept at the head of its own
    # POSTROUTING, made before netavark (which adds to an existing table and chain).
    "netavark-nftables": NatDialect(
        "inet netavark POSTROUTING -> nv_<network>", "inet netavark PREROUTING -> NETAVARK-HOSTPORT-DNAT -> "
        "nv_<network>_dnat",
        "nft add table inet netavark && nft add chain inet netavark POSTROUTING "
        "'{{ type nat hook postrouting priority srcnat; policy accept; }}' && "
        "nft insert rule inet netavark POSTROUTING ip saddr {own} ip daddr {theirs} accept"),
}
