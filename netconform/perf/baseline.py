"""The machine's limit, measured in the same run: a raw veth pair between two namespaces."""

from __future__ import annotations

import secrets
from contextlib import contextmanager

from ..nodes import NamespaceNode
from ..sandbox import Sandbox

A, B = "10.255.255.1", "10.255.255.2"


@contextmanager
def veth_pair():
    """Two namespaces joined by one veth pair, in a sandbox of their own; yields (a, b)."""
    sandbox = Sandbox.start(f"base{secrets.token_hex(2)}")
    try:
        sandbox.run(["sh", "-c", "\n".join([
            "set -e", "ip netns add a", "ip netns add b",
            "ip -n a link add eth0 type veth peer name eth0 netns b",
            f"ip -n a addr add {A}/30 dev eth0", f"ip -n b addr add {B}/30 dev eth0",
            "ip -n a link set eth0 up", "ip -n b link set eth0 up",
            "ip -n a link set lo up", "ip -n b link set lo up"])]).check("baseline veth pair")
        yield NamespaceNode("a", "host", sandbox, A), NamespaceNode("b", "host", sandbox, B)
    finally:
        sandbox.close()
