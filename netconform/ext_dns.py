"""ext's resolver: answers every query with NXDOMAIN, at once.

Engines in a lab use ext as their upstream DNS (``dockerd --dns``), so
nothing ever tries to resolve outward, and a name Docker's embedded DNS
does not know fails in milliseconds instead of a five-second timeout.
"""

from __future__ import annotations

import socket
import sys


def answer(query: bytes) -> bytes:
    """The query echoed back as a response: QR set, recursion available, NXDOMAIN."""
    if len(query) < 12:
        return b""
    flags = (query[2] | 0x80).to_bytes(1, "big") + bytes([0x80 | 0x03])
    return query[:2] + flags + query[4:6] + b"\0\0\0\0\0\0" + query[12:]


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 53
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        query, peer = sock.recvfrom(512)
        reply = answer(query)
        if reply:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
