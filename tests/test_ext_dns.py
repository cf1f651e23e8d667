"""ext's resolver: its own name answered with ext's address, every other name NXDOMAIN."""

from __future__ import annotations

import socket
import struct

from netconform.ext_dns import NAME, answer

EXT = "198.18.0.254"


def _query(name: str, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\0" + struct.pack(">HH", qtype, 1)


def _header(reply: bytes) -> tuple[int, int, int]:
    """(rcode, questions, answers)"""
    return reply[3] & 0x0F, *struct.unpack_from(">HH", reply, 4)


def test_its_own_name_is_answered_with_its_address():
    query = _query(NAME)
    reply = answer(query, EXT)
    assert reply[:2] == query[:2] and _header(reply) == (0, 1, 1)
    assert reply[len(query):].endswith(socket.inet_aton(EXT))


def test_other_types_of_its_name_get_no_record_and_other_names_nxdomain():
    assert _header(answer(_query(NAME, qtype=28), EXT)) == (0, 1, 0)
    assert _header(answer(_query("example.org"), EXT)) == (3, 1, 0)
    assert _header(answer(_query(NAME), None)) == (3, 1, 0)  # started without an address: NXDOMAIN only
    assert answer(b"\x00" * 5, EXT) == b""
