"""ext's resolver: one name of its own, NXDOMAIN for every other query, at once.

Engines in a lab use ext as their upstream DNS (``dockerd --dns``), so
nothing ever tries to resolve outward, and a name Docker's embedded DNS
does not know fails in milliseconds instead of a five-second timeout.
``NAME`` (``ext.netconform.test``) answers ext's own address: only a
resolver that really forwards to ext finds it, which is how a network's own
DNS servers (``podman network create --dns``) are checked.
"""

from __future__ import annotations

import socket
import sys

NAME = "ext.netconform.test"
A, IN = 1, 1


def _question(query: bytes) -> tuple[str, int, int] | None:
    """The first question's name, type and where it ends, or None where it cannot be read."""
    labels, at = [], 12
    while at < len(query) and query[at]:
        length = query[at]
        labels.append(query[at + 1: at + 1 + length].decode(errors="replace"))
        at += 1 + length
    if at + 5 > len(query):
        return None
    return ".".join(labels).lower(), int.from_bytes(query[at + 1: at + 3], "big"), at + 5


def answer(query: bytes, address: str | None = None) -> bytes:
    """The response to ``query``: for ``NAME`` (type A) ``address``, for its other types no record,
    for every other name NXDOMAIN; the question echoed, QR and recursion available set."""
    if len(query) < 12:
        return b""
    asked = _question(query)
    ours = address is not None and asked is not None and asked[0] == NAME
    code = 0 if ours else 3
    records = b""
    if ours and asked[1] == A:
        records = b"\xc0\x0c" + A.to_bytes(2, "big") + IN.to_bytes(2, "big") + (1).to_bytes(4, "big") \
            + (4).to_bytes(2, "big") + socket.inet_aton(address)
    flags = (query[2] | 0x80).to_bytes(1, "big") + bytes([0x80 | code])
    end = asked[2] if asked else len(query)
    return (query[:2] + flags + b"\0\x01" + (1 if records else 0).to_bytes(2, "big") + b"\0\0\0\0"
            + query[12:end] + records)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 53
    address = sys.argv[2] if len(sys.argv) > 2 else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        query, peer = sock.recvfrom(512)
        reply = answer(query, address)
        if reply:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
