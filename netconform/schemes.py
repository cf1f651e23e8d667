"""Cross-host schemes: how containers on different hosts reach each other.

A scheme is set up after the engines and before the containers, and states
what it promises across hosts (``crosses``).  ``local`` promises nothing
across hosts beyond what any host's NAT gives; the cross-host schemes slot
in here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    # Whether a container reaches a container on another host by its address.
    crosses: bool = False


SCHEMES = {
    "local": Scheme("local", "No cross-host container network: containers on other hosts are "
                             "reached only through their host's published ports."),
}
