"""The path between hosts: what the underlay carries, and how large a packet fits.

``wire()`` captures on the source host's port of the LAN bridge (inside
the lab, with tcpdump) while a container pings a container on another
host, and compares what passed with what the scheme says the wire shows:
VXLAN on UDP 4789, UDP 6784, GRE, plain container addresses, or (without a
cross-host network) nothing but underlay addresses.  ``mtu()`` sends
unfragmentable pings of the largest size the scheme promises and one byte
more.
"""

from __future__ import annotations

import base64
import ipaddress
import struct
import time
from dataclasses import dataclass

from docker.types import EndpointSpec

from ..expect import Probe, network_of, own_stacks
from ..lab import Lab
from ..measure import run_probes

CAPTURE_DIR = "/run/lab"
CAPTURE = f"{CAPTURE_DIR}/capture.pcap"
# Swarm's control traffic is not the data path.
FILTER = "not arp and not port 2377 and not port 7946"
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre"}


@dataclass(frozen=True)
class Packet:
    """A captured frame's outer IPv4 header: what the underlay really carried."""

    src: str
    dst: str
    proto: str
    dport: int | None = None

    def __str__(self) -> str:
        return f"{self.src} > {self.dst} {self.proto}" + (f"/{self.dport}" if self.dport else "")


def parse_pcap(data: bytes) -> list[Packet]:
    """IPv4 packets of an Ethernet pcap (tcpdump -w), by their outer header."""
    packets, offset = [], 24  # global header
    while offset + 16 <= len(data):
        captured = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16: offset + 16 + captured]
        offset += 16 + captured
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        proto = ip[9]
        header = (ip[0] & 0x0F) * 4
        dport = struct.unpack_from(">H", ip, header + 2)[0] if proto in (6, 17) else None
        packets.append(Packet(str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20])),
                              PROTOCOLS.get(proto, str(proto)), dport))
    return packets


@dataclass(frozen=True)
class Path:
    """Two containers on different hosts, or a container and another host's published port."""

    source: str
    source_host: str
    target: str  # a container, or a host when no container network crosses hosts
    target_host: str
    address: str
    port: int | None = None


def cross_path(lab: Lab) -> Path | None:
    topo, scheme = lab.topology, lab.scheme
    mine = [c for c in own_stacks(topo) if network_of(topo, c.name) == scheme.network]
    for a in mine:
        for b in mine:
            if a.host != b.host:
                if scheme.promise.crosses:
                    address = lab.containers[b.name].addresses[scheme.network]
                    return Path(a.name, a.host, b.name, b.host, address)
                published = [p.host_port for p in b.publish]
                if published:
                    return Path(a.name, a.host, b.host, b.host, lab.hosts[b.host].address, published[0])
    return None


def capture(lab: Lab, host: str, trigger) -> list[Packet]:
    """Packets that crossed ``host``'s link to the underlay while ``trigger()`` ran.

    Where the provider owns the underlay, on the LAN bridge's port for the host
    (outside the host, as a switch would see it); on machines it does not own,
    on the host's own underlay NIC.
    """
    node, interface = lab.provider.wire_tap(lab, host)
    started = node.exec(["sh", "-c", f"mkdir -p {CAPTURE_DIR} && tcpdump -i {interface} -nn -U "
                                     f"--immediate-mode -w {CAPTURE} '{FILTER}' >/dev/null 2>{CAPTURE}.err "
                                     "& echo $!"]).check("tcpdump")
    deadline = time.monotonic() + 5
    while ("listening on" not in node.exec(["sh", "-c", f"cat {CAPTURE}.err 2>/dev/null"]).stdout
           and time.monotonic() < deadline):
        time.sleep(0.05)
    try:
        trigger()
    finally:
        node.exec(["kill", started.stdout.strip()])
        time.sleep(0.2)
    # base64 carries the binary pcap through any node's text exec (namespaces and SSH alike).
    return parse_pcap(base64.b64decode(node.exec(["base64", CAPTURE]).check("reading the capture").stdout))


# What each scheme's wire promise looks like in an outer header: (protocol, port).
ENCAPSULATION = {"udp/4789": ("udp", 4789), "udp/6784": ("udp", 6784), "gre": ("gre", None)}


def wire(lab: Lab) -> list[str]:
    """Cross-host traffic takes the scheme's path, as seen on the underlay."""
    path = cross_path(lab)
    if path is None:
        return ["no two containers on different hosts to send traffic between"]
    source_ip = lab.containers[path.source].addresses[lab.scheme.network]
    local, remote = lab.hosts[path.source_host].address, lab.hosts[path.target_host].address
    node = lab.containers[path.source]
    if path.port:
        request = rf"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 {path.address} {path.port}"
        packets = capture(lab, path.source_host, lambda: node.exec(["sh", "-c", request]))
    else:
        packets = capture(lab, path.source_host,
                          lambda: node.exec(["ping", "-c", "3", "-i", "0.2", "-W", "2", path.address]))
    expected = lab.scheme.promise.wire
    underlay = {local, remote}
    exposed = [p for p in packets if {p.src, p.dst} & {source_ip, path.address} - underlay]
    seen = "\n  ".join(map(str, packets[:6])) or "(nothing)"
    where = f"{path.source} -> {path.target} on the underlay"
    if expected == "underlay-only":
        return [f"{where}: container addresses on the wire:\n  " +
                "\n  ".join(map(str, exposed[:6]))] if exposed else []
    if expected == "plain":
        plain = [p for p in exposed if (p.src, p.dst) == (source_ip, path.address)]
        return [] if plain else [f"{where}: expected plain IP {source_ip} > {path.address}, saw:\n  {seen}"]
    proto, port = ENCAPSULATION[expected]
    carried = [p for p in packets if (p.src, p.dst, p.proto) == (local, remote, proto)
               and (port is None or p.dport == port)]
    problems = []
    if not carried:
        problems.append(f"{where}: expected {expected} from {local} to {remote}, saw:\n  {seen}")
    if exposed:
        problems.append(f"{where}: container addresses outside {expected}:\n  " +
                        "\n  ".join(map(str, exposed[:6])))
    return problems


def mtu(lab: Lab) -> list[str]:
    """The largest unfragmented packet the scheme promises passes; one byte more does not."""
    path = cross_path(lab)
    if path is None:
        return ["no path between hosts to measure"]
    size = lab.scheme.promise.mtu - 28  # IP 20 + ICMP 8
    problems = []
    for payload, should_pass in ((size, True), (size + 1, False)):
        result = lab.netns_exec(path.source, ["ping", "-M", "do", "-c", "1", "-W", "2", "-s",
                                              str(payload), path.address])
        if result.ok != should_pass:
            problems.append(f"{path.source} -> {path.target} ({path.address}): {payload + 28}-byte "
                            f"packet {'did not pass' if should_pass else 'passed'}; promised MTU "
                            f"{lab.scheme.promise.mtu}")
    return problems


MESH_PORT = 8088


def ingress(lab: Lab, timeout: float = 60) -> list[str]:
    """A swarm service published on a port answers on every host's address (the routing mesh).

    Runs only where the kernel has IPVS; the suite skips it otherwise.
    """
    hosts = [h.name for h in lab.topology.hosts]
    manager = lab.engine(hosts[0])
    service = manager.services.create(lab.runtime.image.tag, command=["/serve", "80"], name="mesh",
                                      endpoint_spec=EndpointSpec(ports={MESH_PORT: 80}))
    try:
        deadline = time.monotonic() + timeout
        while not any(t["Status"]["State"] == "running" for t in service.tasks()):
            if time.monotonic() > deadline:
                return [f"service mesh did not start within {timeout:.0f} s"]
            time.sleep(0.5)
        probes = [Probe("ext", h, lab.hosts[h].address, "tcp", MESH_PORT) for h in hosts]
        reached = run_probes(lab, probes)
        return [f"ext -> {p.target}:{MESH_PORT}: no answer from the routing mesh"
                for p in probes if p not in reached]
    finally:
        service.remove()
