"""The wire check reads captures as they are: every frame a Weave sleeve datagram carries."""

from __future__ import annotations

import ipaddress
import struct

from netconform.checks.path import SLEEVE_PORT, parse_pcap


def _ipv4(src: str, dst: str, proto: int, body: bytes) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0,
                       ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + body


def _echo(src: str, dst: str, sequence: int) -> bytes:
    return _ipv4(src, dst, 1, struct.pack(">BBHHH", 8, 0, 0, 7, sequence) + b"netconform")


def _ethernet(payload: bytes, kind: bytes = b"\x08\x00") -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + kind + payload


def _pcap(*frames: bytes) -> bytes:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for frame in frames:
        data += struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    return data


def test_every_frame_of_a_batched_sleeve_datagram_is_read():
    """weaver sends frames that queued together in one datagram (here an ARP request, then two
    echo requests); each IPv4 frame is a packet under the datagram's outer header, so a ping
    held back and sent with the next is not missed."""
    frames = [_ethernet(b"\x00\x01" * 14, kind=b"\x08\x06"),
              _ethernet(_echo("10.32.0.1", "10.40.0.0", 1)), _ethernet(_echo("10.32.0.1", "10.40.0.0", 2))]
    sleeve = b"\x00\x00\x00\x2a\x5e\x00\x00\x01" + b"".join(struct.pack(">H", len(f)) + f for f in frames)
    udp = struct.pack(">HHHH", 40000, SLEEVE_PORT, 8 + len(sleeve), 0) + sleeve
    packets = parse_pcap(_pcap(_ethernet(_ipv4("198.18.0.1", "198.18.0.2", 17, udp))))
    assert [(p.src, p.dst, p.proto, p.dport) for p in packets] == [("198.18.0.1", "198.18.0.2", "udp", SLEEVE_PORT)] * 2
    assert [(p.inner.src, p.inner.dst, p.inner.proto, p.inner.icmp_type) for p in packets] == \
        [("10.32.0.1", "10.40.0.0", "icmp", 8)] * 2


def test_a_sleeve_datagram_without_a_frame_it_can_read_is_one_packet():
    """A heartbeat or an encrypted datagram carries nothing readable: one packet, no inner."""
    udp = struct.pack(">HHHH", 40000, SLEEVE_PORT, 8 + 32, 0) + bytes(range(32))
    [packet] = parse_pcap(_pcap(_ethernet(_ipv4("198.18.0.1", "198.18.0.2", 17, udp))))
    assert packet.inner is None and packet.dport == SLEEVE_PORT
