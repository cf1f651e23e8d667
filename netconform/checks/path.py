"""The path between hosts: what the underlay carries, and how large a packet fits.

``wire()`` captures on the source host's port of the LAN bridge (inside
the lab, with tcpdump) while a container pings a container on another
host, and compares what passed with what the scheme says the wire shows:
VXLAN on UDP 4789, UDP 6784, Weave's sleeve on UDP 6783, GRE, plain container addresses, or (without a
cross-host network) nothing but underlay addresses.  ``mtu()`` sends
unfragmentable pings of the largest size the scheme promises and one byte
more.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..expect import Probe, network_of, own_stacks
from ..lab import Lab
from ..measure import REQUEST, run_probes
from ..result import Result
from . import firewall

CAPTURE_DIR = "/run/lab"
CAPTURE = f"{CAPTURE_DIR}/capture.pcap"
# Swarm's control traffic is not the data path.
FILTER = "not arp and not port 2377 and not port 7946"
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp"}


VXLAN_PORTS = (4789, 6784)  # IANA's VXLAN port, and Weave Net's fast datapath (VXLAN too)
SLEEVE_PORT = 6783  # Weave Net's sleeve: its own framing of captured Ethernet frames, over UDP
ETH_IPV4, ETH_BRIDGED = 0x0800, 0x6558  # GRE protocol types: IPv4, transparent Ethernet


@dataclass(frozen=True)
class Packet:
    """A captured IPv4 packet by its outer header, and what it carries where it is a tunnel's."""

    src: str
    dst: str
    proto: str
    dport: int | None = None
    icmp_type: int | None = None  # 8 echo request, 0 echo reply
    tunnel_id: int | None = None  # VXLAN VNI or GRE key
    carries: int | None = None  # GRE protocol type (ETH_BRIDGED: Ethernet frames)
    inner: Packet | None = None  # the encapsulated IPv4 packet

    def __str__(self) -> str:
        text = f"{self.src} > {self.dst} {self.proto}" + (f"/{self.dport}" if self.dport else "")
        if self.tunnel_id is not None:
            text += f" id {self.tunnel_id}"
        return text + (f" [{self.inner}]" if self.inner else "")


def parse_ip(ip: bytes) -> Packet | None:
    """An IPv4 packet, decoding VXLAN and GRE to the IPv4 packet they carry (a sleeve datagram: the
    first frame it carries)."""
    found = parse_datagram(ip)
    return found[0] if found else None


def parse_datagram(ip: bytes) -> list[Packet]:
    """An IPv4 packet as the packets it stands for: itself, decoding VXLAN and GRE to the IPv4
    packet they carry; a Weave sleeve datagram once per frame it carries, each under the
    datagram's outer header (itself alone where none can be read)."""
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return []
    header, number = (ip[0] & 0x0F) * 4, ip[9]
    src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
    body = ip[header:]
    proto = PROTOCOLS.get(number, str(number))
    if number in (6, 17) and len(body) >= 4:
        dport = struct.unpack_from(">H", body, 2)[0]
        if number == 17 and dport in VXLAN_PORTS and len(body) >= 16 + 14:
            frame = body[16:]
            inner = parse_ip(frame[14:]) if frame[12:14] == b"\x08\x00" else None
            return [Packet(src, dst, proto, dport, tunnel_id=int.from_bytes(body[12:15], "big"), inner=inner)]
        if number == 17 and dport == SLEEVE_PORT:
            outer = Packet(src, dst, proto, dport)
            return [replace(outer, inner=frame) for frame in sleeve_frames(body[8:])] or [outer]
        return [Packet(src, dst, proto, dport)]
    if number == 1 and body:
        return [Packet(src, dst, proto, icmp_type=body[0])]
    if number == 47 and len(body) >= 4:
        flags, carries = struct.unpack_from(">HH", body)
        offset = 4 + (4 if flags & 0x8000 else 0)
        key = int.from_bytes(body[offset:offset + 4], "big") if flags & 0x2000 else None
        offset += (4 if flags & 0x2000 else 0) + (4 if flags & 0x1000 else 0)
        payload = body[offset:]
        if carries == ETH_BRIDGED:
            payload = payload[14:] if payload[12:14] == b"\x08\x00" else b""
        return [Packet(src, dst, proto, tunnel_id=key, carries=carries, inner=parse_ip(payload))]
    return [Packet(src, dst, proto)]


def sleeve_frames(payload: bytes) -> list[Packet]:
    """The IPv4 packets in a Weave sleeve datagram, in order: weaver sends the Ethernet frames it
    captured behind a header and a length of its own (unencrypted), several in one datagram when
    they queue together (a frame held while the peer's address is learned goes out with the
    next), so each frame is found where an Ethernet header says IPv4 and a well-formed IPv4
    header follows, and the search goes on past it.  Encrypted sleeve (NaCl) shows none, which
    is what a wire check of an encrypted mesh must see."""
    found, at = [], payload.find(b"\x08\x00\x45")
    while at >= 12:
        inner = parse_ip(payload[at + 2:])
        if inner is not None and inner.proto in PROTOCOLS.values():
            found.append(inner)
            at += 2 + max(struct.unpack_from(">H", payload, at + 4)[0], 20) - 1
        at = payload.find(b"\x08\x00\x45", at + 1)
    return found


def parse_pcap(data: bytes) -> list[Packet]:
    """IPv4 packets of an Ethernet pcap (tcpdump -w)."""
    packets, offset = [], 24  # global header
    while offset + 16 <= len(data):
        captured = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16: offset + 16 + captured]
        offset += 16 + captured
        if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
            packets += parse_datagram(frame[14:])
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
                if lab.promise.crosses:
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
ENCAPSULATION = {"udp/4789": ("udp", 4789), "udp/6784": ("udp", 6784), "udp/6783": ("udp", SLEEVE_PORT),
                 "gre": ("gre", None), "esp": ("esp", None)}
ENCRYPTED = " encrypted"  # a promise's suffix: that form, its payload unreadable (weave --password)
PINGS = 3


def wire(lab: Lab) -> list[str]:
    """Cross-host traffic takes the scheme's path, as seen on the underlay.

    The trigger (pings between containers on two hosts, or a request to the
    other host's published port) must succeed, and the capture must hold the
    trigger's own packets in the promised form: plain with the container
    addresses, inside VXLAN to the scheme's port (and VNI) or GRE carrying
    Ethernet, or (no cross-host network) between the hosts' addresses only.
    An empty or unrelated capture is a failure that says what was seen.
    """
    path = cross_path(lab)
    if path is None:
        return ["no two containers on different hosts to send traffic between"]
    source_ip = lab.containers[path.source].addresses[lab.scheme.network]
    local, remote = lab.hosts[path.source_host].address, lab.hosts[path.target_host].address
    node = lab.containers[path.source]
    done: list[Result] = []
    if path.port:
        request = f"printf '{REQUEST}' | nc -w 2 {path.address} {path.port}"
        packets = capture(lab, path.source_host, lambda: done.append(node.exec(["sh", "-c", request])))
        succeeded = "name=" in done[0].stdout
    else:  # the host's ping in the container's stack: what is checked is the wire, not whether
        # the engine lets a container ping (Podman's containers lack NET_RAW; see deviations)
        packets = capture(lab, path.source_host, lambda: done.append(lab.netns_exec(
            node, ["ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", path.address])))
        succeeded = done[0].ok
    where = f"{path.source} -> {path.target} on the underlay"
    problems = [] if succeeded else [f"{where}: the trigger failed ({done[0]}), so the wire carried "
                                     "no working traffic"]
    expected = lab.promise.wire
    seen = _flows(packets, {local, remote})
    exposed = [p for p in packets if {p.src, p.dst} & ({source_ip, path.address} - {local, remote})]
    if expected == "underlay-only":
        trigger = [p for p in packets if (p.src, p.dst, p.proto, p.dport) == (local, remote, "tcp", path.port)]
        if not trigger:
            problems.append(f"{where}: none of the trigger's packets ({local} > {remote} tcp/{path.port}) "
                            f"in {len(packets)} captured:\n  {seen}")
        if exposed:
            problems.append(f"{where}: container addresses on the wire:\n  {_flows(exposed, {local, remote})}")
        return problems
    requests = (source_ip, path.address, "icmp", 8)
    if expected == "plain":
        plain = [p for p in packets if (p.src, p.dst, p.proto, p.icmp_type) == requests]
        if len(plain) < PINGS:
            problems.append(f"{where}: expected {PINGS} plain echo requests {source_ip} > {path.address}, "
                            f"found {len(plain)} in {len(packets)} captured:\n  {seen}")
        return problems
    if expected.endswith(ENCRYPTED):
        return problems + _encrypted(packets, expected, where, (local, remote), exposed)
    proto, port = ENCAPSULATION[expected]
    tunnel_id = lab.promise.tunnel_id
    carried = [p for p in packets if (p.src, p.dst, p.proto) == (local, remote, proto)
               and (port is None or p.dport == port) and p.inner is not None
               and (p.inner.src, p.inner.dst, p.inner.proto, p.inner.icmp_type) == requests]
    right = [p for p in carried if (tunnel_id is None or p.tunnel_id == tunnel_id)
             and (proto != "gre" or p.carries == ETH_BRIDGED)]
    if len(right) < PINGS:
        form = expected + (f" id {tunnel_id}" if tunnel_id is not None else "") + \
            (" carrying Ethernet" if proto == "gre" else "")
        problems.append(f"{where}: expected {PINGS} echo requests {source_ip} > {path.address} inside "
                        f"{form} from {local} to {remote}, found {len(right)} ({len(carried)} with "
                        f"another id or payload) in {len(packets)} captured:\n  {seen}")
    if exposed:
        problems.append(f"{where}: container addresses outside {expected}:\n  {_flows(exposed, {local, remote})}")
    return problems


def _encrypted(packets: list[Packet], expected: str, where: str, hosts: tuple[str, str],
               exposed: list[Packet]) -> list[str]:
    """An encrypted tunnel: at least one datagram a ping between the hosts on the promised port,
    none holding a frame that can be read (any IPv4 packet inside, the trigger's or another's),
    and no container address in an outer header."""
    form = expected.removesuffix(ENCRYPTED)
    proto, port = ENCAPSULATION[form]
    seen = _flows(packets, set(hosts))
    datagrams = [p for p in packets if (p.src, p.dst, p.proto) == (*hosts, proto) and (port is None or p.dport == port)]
    problems = []
    if len(datagrams) < PINGS:
        problems.append(f"{where}: expected at least {PINGS} {form} datagrams from {hosts[0]} to {hosts[1]} "
                        f"(the trigger's, encrypted), found {len(datagrams)} in {len(packets)} captured:\n  {seen}")
    readable = [p for p in datagrams if p.inner is not None]
    if readable:
        problems.append(f"{where}: {len(readable)} of {len(datagrams)} {form} datagrams carry plaintext "
                        f"packets, the tunnel is not encrypted:\n  {_flows(readable, set(hosts))}")
    if exposed:
        problems.append(f"{where}: container addresses outside {form}:\n  {_flows(exposed, set(hosts))}")
    return problems


def _flows(packets: list[Packet], hosts: set[str], most: int = 6) -> str:
    """What a capture held, as distinct flows with counts, those between ``hosts`` first."""
    counts: dict[str, int] = {}
    for p in sorted(packets, key=lambda p: {p.src, p.dst} != hosts):
        counts[str(p)] = counts.get(str(p), 0) + 1
    lines = [f"{flow} (x{n})" for flow, n in list(counts.items())[:most]]
    if len(counts) > most:
        lines.append(f"... {len(counts) - most} more flows")
    return "\n  ".join(lines) or "(nothing)"


def mtu(lab: Lab) -> list[str]:
    """The largest unfragmented packet the scheme promises passes; one byte more is refused on
    the path.

    The source's own interface carries the promised MTU too, so for the
    second half its MTU (and its veth peer's on the host) is raised first:
    the extra byte must then be refused beyond the sender, by a bridge or
    tunnel dropping it or an ICMP fragmentation-needed from the path.  Where
    the kernel refuses to raise it (a macvlan is bounded by its parent, the
    underlay NIC itself), the sender's interface is the path.
    """
    path = cross_path(lab)
    if path is None:
        return ["no path between hosts to measure"]
    promised = lab.promise.mtu
    where = f"{path.source} -> {path.target} ({path.address})"

    def ping(size: int) -> Result:
        return lab.netns_exec(path.source, ["ping", "-M", "do", "-c", "1", "-W", "2", "-s",
                                            str(size - 28), path.address])  # IP 20 + ICMP 8

    problems = []
    if not ping(promised).ok:
        problems.append(f"{where}: {promised}-byte packet did not pass; promised MTU {promised}")
    with raised_mtu(lab, path.source, path.address, promised + 100) as device:
        over = ping(promised + 1)
    text = over.stdout + over.stderr
    if over.ok:
        problems.append(f"{where}: {promised + 1}-byte packet passed; promised MTU {promised}")
    elif device and ("message too long" in text.lower() or "local error" in text.lower()) and _own_mtu(
            text, promised + 100):
        problems.append(f"{where}: {promised + 1}-byte packet was refused by {path.source}'s own "
                        f"{device} (MTU raised to {promised + 100}), not by the path")
    return problems


def _own_mtu(text: str, raised: int) -> bool:
    """Whether a local refusal was the sender's own interface: ping names the MTU it hit, and one
    below the raised interface's is a path MTU the path itself taught the sender (an earlier
    "fragmentation needed", cached by its kernel), so the refusal is the path's."""
    said = re.search(r"mtu\s*=\s*(\d+)", text)
    return said is None or int(said.group(1)) >= raised


@contextmanager
def raised_mtu(lab: Lab, container: str, address: str, size: int):
    """Raise the MTU of the interface ``container`` routes ``address`` through, and of its veth
    peer on the host, for the block; yields the interface, or None where the kernel will not
    raise it (its lower device bounds it)."""
    route = lab.netns_exec(container, ["ip", "-o", "route", "get", address]).stdout.split()
    device = route[route.index("dev") + 1] if "dev" in route else "eth0"
    link = lab.netns_exec(container, ["ip", "-o", "link", "show", device]).stdout
    old = re.search(r" mtu (\d+)", link)
    peer_index = re.search(rf"{re.escape(device)}@if(\d+):", link)
    host = lab.hosts[lab.containers[container].host]
    peer = None
    if peer_index:
        listed = host.exec(["ip", "-o", "link"]).stdout
        found = re.search(rf"^{peer_index.group(1)}: ([^:@]+)[@:].* mtu (\d+)", listed, re.M)
        peer = (found.group(1), found.group(2)) if found else None
    raised = lab.netns_exec(container, ["ip", "link", "set", device, "mtu", str(size)]).ok
    if raised and peer:
        host.exec(["ip", "link", "set", peer[0], "mtu", str(size)]).check(f"raising {peer[0]}'s MTU")
    try:
        yield device if raised else None
    finally:
        if raised and old:
            lab.netns_exec(container, ["ip", "link", "set", device, "mtu", old.group(1)])
            if peer:
                host.exec(["ip", "link", "set", peer[0], "mtu", peer[1]])


MESH_PORT = 8088


def ingress(lab: Lab, timeout: float = 90) -> list[str]:
    """A swarm service published on a port answers on every host's address (the routing mesh).

    The mesh converges host by host after the task starts (the published
    port's DNAT into the ingress sandbox, its IPVS service, the ingress
    overlay to the task's host); on slow hosts that takes seconds.  Each
    host is probed until it answers or ``timeout`` runs out; one that never
    answers is reported with the evidence: its DOCKER-INGRESS rules, the
    IPVS table of its ingress sandbox, and where the task runs.

    Runs only where the kernel has IPVS; the suite skips it otherwise.
    """
    hosts = [h.name for h in lab.topology.hosts]
    service = lab.runtime.service(hosts[0], "mesh", MESH_PORT, 80)
    try:
        deadline = time.monotonic() + timeout
        while not any(t.state == "running" for t in service.tasks()):
            if time.monotonic() > deadline:
                return [f"service mesh did not start within {timeout:.0f} s: "
                        f"{[t.error or t.state for t in service.tasks()]}"]
            time.sleep(0.5)
        waiting = {h: Probe("ext", h, lab.hosts[h].address, "tcp", MESH_PORT) for h in hosts}
        while waiting and time.monotonic() < deadline:
            reached = run_probes(lab, list(waiting.values()))
            waiting = {h: p for h, p in waiting.items() if p not in reached}
            if waiting:
                time.sleep(1)
        placed = [f"{t.node} {t.state}" for t in service.tasks()]
        return [f"ext -> {host}:{MESH_PORT}: no answer from the routing mesh within {timeout:.0f} s; "
                f"{_mesh_evidence(lab, host)}; tasks: {', '.join(placed)}" for host in waiting]
    finally:
        service.remove()


def _mesh_evidence(lab: Lab, host: str) -> str:
    """What the host has of the mesh: the published port's rules and the ingress sandbox's IPVS."""
    node = lab.hosts[host]
    rules = firewall.rules(node, "nat", "DOCKER-INGRESS") + firewall.rules(node, "filter", "DOCKER-INGRESS")
    sandbox = f"{lab.runtime.state_dir(host)}/netns/ingress_sbox"
    ipvs = node.exec(["nsenter", f"--net={sandbox}", "cat", "/proc/net/ip_vs"])
    mine = [r for r in rules if str(MESH_PORT) in r]
    table = " / ".join(line.strip() for line in ipvs.stdout.splitlines()[2:]) or \
        (ipvs.stderr.strip() or "empty")
    return f"DOCKER-INGRESS rules for {MESH_PORT}: {mine or 'none'}; ingress_sbox IPVS: {table}"
