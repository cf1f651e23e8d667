"""Known engine deviations: measured behaviours that break a promise, as data.

A deviation names the runtime and version range it was seen on, the check
it affects, and how to predict, from the live lab, the exact observations
that show it.  ``excuse`` turns a check's observations into a strict
expected failure only when they equal a matching deviation's prediction on
an engine inside its range; anything else (another version, one more or
one fewer wrong probe, rules that differ) stays a failure.  An engine that
keeps the promise passes whatever the table says.

An engine may have several deviations on one check (Podman lets a routed
neighbour in *and* does not isolate networks): the observations must then be
exactly the union of what all of them that apply predict.

Observations are short sentences (``"ext -> web (172.30.1.2:80 tcp) reached"``,
``"filter DOCKER: link rules name 172.30.1.2"``) so that a prediction and a
measurement compare as sets and a mismatch can be printed as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .checks.names import dns_kept_after_drop, hostname_not_shared, own_dns
from .checks.path import cross_path
from .measure import NO_ICMP_SOCKET, ONE_WAY
from .checks.stacks import ping_refused
from .engines import Version
from .expect import Probe, network_of, own_stacks


@dataclass(frozen=True)
class HostCondition:
    """A host setting a deviation depends on (read live, ``Lab.host_settings``): an engine
    behaviour that shows only on hosts set up so is that setting's doing as much as the engine's,
    and is excused only where every host of the lab has it."""

    key: str  # a key of hostprofile.RECORDED
    said: str  # the condition in words, for the report
    holds: Callable[[str], bool]

    def on(self, settings: dict[str, dict[str, str]]) -> bool:
        return bool(settings) and all(self.holds(values.get(self.key, "absent")) for values in settings.values())


def _admits_root(group_range: str) -> bool:
    low, _, high = group_range.partition(" ")
    return low.isdigit() and high.isdigit() and int(low) <= 0 <= int(high)


BR_NETFILTER_ON = HostCondition(
    "net.bridge.bridge-nf-call-iptables", "bridge-nf-call-iptables = 1 (br_netfilter loaded and passing "
    "bridged traffic through iptables, as on a host where dockerd or an admin loaded it)", lambda v: v == "1")
BR_NETFILTER_OFF = HostCondition(
    "net.bridge.bridge-nf-call-iptables", "br_netfilter not loaded (or bridge-nf-call-iptables = 0), as on a "
    "host where no engine or admin loaded it", lambda v: v in ("0", "absent"))
NO_ICMP_SOCKETS_FOR_ROOT = HostCondition(
    "net.ipv4.ping_group_range", "a ping_group_range that does not admit group 0 (the kernel's own default "
    "'1 0'; Debian 13 boots with '0 2147483647')", lambda v: not _admits_root(v))


@dataclass(frozen=True)
class Deviation:
    """One engine behaviour the promise does not hold for."""

    id: str
    runtime: str
    since: Version  # first version it applies to
    until: Version | None  # first version it no longer applies to (None: still open)
    check: str  # the check it excuses: "isolation", "link-rules-after-restart", ...
    summary: str
    seen: str  # where and on which versions it was measured
    reference: str  # upstream record of the behaviour
    predict: Callable[..., frozenset[str]]  # (lab, **context) -> the exact observations
    flag: str | None = None  # a daemon option the engine must run with for it to apply
    needs: tuple[HostCondition, ...] = ()  # host settings it shows only under

    def applies(self, runtime: str, version: Version, flags: frozenset[str] = frozenset(),
                settings: dict[str, dict[str, str]] | None = None) -> bool:
        """Whether it applies to this engine, its options and (when given) its hosts' settings."""
        return (runtime == self.runtime and self.since <= version
                and (self.until is None or version < self.until)
                and (self.flag is None or self.flag in flags)
                and (settings is None or all(c.on(settings) for c in self.needs)))

    @property
    def range(self) -> str:
        bounds = [f">= {self.since}" if self.since > Version(0, 0) else "",
                  f"< {self.until}" if self.until else ""]
        where = f" with {self.flag}" if self.flag else ""
        hosts = f" on hosts with {' and '.join(c.said for c in self.needs)}" if self.needs else ""
        return f"{self.runtime} {', '.join(b for b in bounds if b) or 'any version'}{where}{hosts}"


def probe_seen(probe: Probe, reached: bool) -> str:
    """A prediction of one probe's verdict, worded as ``Verdict.observation`` measures it."""
    return f"{probe} {'reached' if reached else 'blocked'}"


def _routed_stacks(lab) -> list[tuple[object, str]]:
    """(container, address) of each own stack whose address lies in a subnet the LAN neighbour
    routes via a host."""
    routed = [net for net, _ in lab.scheme.neighbour_routes(lab.topology)]
    found = []
    for c in own_stacks(lab.topology):
        address = next(iter(lab.containers[c.name].addresses.values()), None)
        if address is not None and any(ipaddress.IPv4Address(address) in net for net in routed):
            found.append((c, address))
    return found


def _reached_on_every_port(source: str, target, address: str) -> set[str]:
    """``source`` reaching ``target`` at ``address`` by ICMP and on every port it serves, TCP and UDP."""
    return {probe_seen(p, True) for p in (Probe(source, target.name, address, "icmp"),
                                          *(Probe(source, target.name, address, proto, port)
                                            for port in target.ports for proto in ("tcp", "udp")))}


def _routed_neighbour_reaches_published(lab, **_) -> frozenset[str]:
    """ext, routed to the container subnets, reaches each published container port on the
    container's own address (no direct-routing guard), and nothing else it must not."""
    return frozenset(probe_seen(Probe("ext", c.name, address, "tcp", p.container_port), True)
                     for c, address in _routed_stacks(lab) for p in c.publish)


def _link_rules_stay_on_old_address(lab, *, new: Probe, stale: Probe, old: str, **_) -> frozenset[str]:
    """After the link source restarts elsewhere, the receiver loses it and reaches whoever holds
    the old address, because the ACCEPT rules of the link still name the old address only."""
    return frozenset({probe_seen(new, False), probe_seen(stale, True),
                      f"filter DOCKER: link rules name {old}"})


def _routed_neighbour_reaches_containers(lab, **_) -> frozenset[str]:
    """ext, routed to the container subnets, reaches every container on them on every port it
    serves: nothing filters forwarded traffic into them."""
    return frozenset().union(*(_reached_on_every_port("ext", c, address) for c, address in _routed_stacks(lab)))


def _networks_not_isolated(lab, **_) -> frozenset[str]:
    """Containers on different networks of one host reach each other on every port served, except
    between networks the topology asked Podman to isolate (``-o isolate``: 'true' on both, or
    'strict' on either), where a probe that passes is a failure of that option, not excused."""
    topo, stacks = lab.topology, own_stacks(lab.topology)
    seen = set()
    for src in stacks:
        for dst in stacks:
            address = next(iter(lab.containers[dst.name].addresses.values()), None)
            ours, theirs = network_of(topo, src.name), network_of(topo, dst.name)
            if src.host == dst.host and ours != theirs and address and not _isolated(topo, ours, theirs):
                seen |= _reached_on_every_port(src.name, dst, address)
    return frozenset(seen)


def _strict_isolation_one_way(lab, **_) -> frozenset[str]:
    """From a container on a network of the same host without strict isolation into one with it:
    TCP and UDP on every port served arrive, only the answers are dropped (ICMP is not seen: the
    targets have no raw socket to see an unanswered echo)."""
    topo, stacks = lab.topology, own_stacks(lab.topology)
    strict = {n.name for n in topo.networks if n.isolate == "strict"}
    seen = set()
    for src in stacks:
        for dst in stacks:
            address = next(iter(lab.containers[dst.name].addresses.values()), None)
            if (src.host == dst.host and address and network_of(topo, dst.name) in strict
                    and network_of(topo, src.name) not in strict):
                seen |= {f"{Probe(src.name, dst.name, address, proto, port)} {ONE_WAY}"
                         for port in dst.ports for proto in ("tcp", "udp")}
    return frozenset(seen)


def _keeps_last_dns_server(lab, **_) -> frozenset[str]:
    """Every container on a network whose DNS servers were all dropped still resolves through them
    (the check drops every server of the network: the last one goes too)."""
    want = str(lab.topology.ext_address().ip)
    return frozenset(dns_kept_after_drop(c.name, want, servers, c.network) for c, servers in own_dns(lab))


def _isolated(topo, one: str, other: str) -> bool:
    """Whether the topology's isolate options keep networks ``one`` and ``other`` apart."""
    options = {n.name: n.isolate for n in topo.networks}
    chosen = (options.get(one, "default"), options.get(other, "default"))
    return "strict" in chosen or chosen == ("true", "true")


def _host_mode_has_no_icmp(lab, *, matrix, **_) -> frozenset[str]:
    """Every promised ICMP probe from a host-mode container is blocked because it could open no
    ICMP socket at all: neither a raw one (no NET_RAW) nor a datagram one (the host's
    ping_group_range, which an engine does not set for the host's own stack)."""
    host_mode = {c.name for c in lab.topology.containers if c.mode == "host"}
    return frozenset(f"{probe_seen(v.probe, False)} {NO_ICMP_SOCKET}" for v in matrix.verdicts
                     if v.expected and v.probe.source in host_mode and v.probe.proto == "icmp")


def _no_hairpin_to_own_published_port(lab, *, matrix, **_) -> frozenset[str]:
    """A container that publishes a port cannot reach itself through its host's address and that
    port: the DNAT sends the packet back out of the bridge port it came in on, which netavark
    does not put in hairpin mode."""
    own = {(c.name, c.host, p.host_port) for c in lab.topology.containers for p in c.publish}
    return frozenset(probe_seen(v.probe, False) for v in matrix.verdicts
                     if v.expected and (v.probe.source, v.probe.target, v.probe.port) in own)


def _hostname_not_shared(lab, **_) -> frozenset[str]:
    """A container-mode container keeps a hostname of its own, the one Podman gives every
    container it names no hostname for: the first 12 characters of its ID."""
    return frozenset(hostname_not_shared(c.name, lab.containers[c.name].id[:12], c.container, c.container)
                     for c in lab.topology.containers if c.mode == "container")


def _refused_publish_takes_setmark_rules(lab, *, host, port, before, **_) -> frozenset[str]:
    """Cleaning up the refused container removes the SETMARK rules of the port's existing
    mapping (the same rule text for the same network and port), leaving its DNAT."""
    return frozenset(f"{host}: nat lost {line}" for line in before.nat
                     if line.startswith("-A NETAVARK-DN-") and f"--dport {port} " in line
                     and line.endswith("-j NETAVARK-HOSTPORT-SETMARK"))


def _bridge_forwards_past_the_tunnel_mtu(lab, **_) -> frozenset[str]:
    """The one-byte-over packet of the path MTU check passes: the Linux bridge forwards a frame to
    a port if it fits the port's MTU plus a VLAN tag (is_skb_forwardable allows VLAN_HLEN, 4 bytes),
    and only br_netfilter's own output path enforces the MTU exactly."""
    found = cross_path(lab)
    if found is None:
        return frozenset()
    promised = lab.promise.mtu
    return frozenset({f"{found.source} -> {found.target} ({found.address}): {promised + 1}-byte packet "
                      f"passed; promised MTU {promised}"})


def _ping_refused_everywhere(lab, **_) -> frozenset[str]:
    """busybox ping in every container with a stack may not open an ICMP socket."""
    return frozenset(ping_refused(c.name) for c in lab.topology.containers if c.mode != "none")


PODMAN_SEEN = "Podman 4.3.1 with netavark 1.4.0 and aardvark-dns 1.4.0 (Debian 12) on this machine"

DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        id="docker-routed-neighbour-reaches-published-ports",
        runtime="docker", since=Version(0, 0), until=Version(28, 0), check="isolation",
        summary="a LAN neighbour with a route to the container subnet via the host reaches "
                "published container ports directly on the container's address (Docker adds "
                "the direct-routing guard, raw PREROUTING DROP, only from 28.0)",
        seen="Docker 20.10.24 and 26.1.5 on this machine (netns provider), every topology with -p",
        reference="moby#48724, moby#49325 (Docker 28.0 release notes)",
        predict=_routed_neighbour_reaches_published),
    Deviation(
        id="docker-allow-direct-routing-reaches-published-ports",
        runtime="docker", since=Version(28, 2), until=None, check="isolation",
        flag="--allow-direct-routing",
        summary="with --allow-direct-routing (which a scheme that routes to containers, host-gw, must "
                "set from Docker 28) the direct-routing guard is off, so a routed LAN neighbour again "
                "reaches published container ports directly, as the option documents",
        seen="Docker 28.5.2 on this machine, host-gw",
        reference="moby#49832 (Docker 28.2 release notes: allow-direct-routing)",
        predict=_routed_neighbour_reaches_published),
    Deviation(
        id="docker-icc-false-link-rules-stay-on-old-address",
        runtime="docker", since=Version(20, 10), until=None,
        check="link-rules-after-restart",
        summary="with --icc=false, when a link's source restarts with a new address the "
                "receiver's /etc/hosts follows it but the link's ACCEPT rules stay on the old "
                "address: the receiver loses the source and reaches whoever takes the old address",
        seen="Docker 20.10.24, 26.1.5 and 28.5.2 on this machine (issue 10: not fixed by 28)",
        reference="moby links: rules are written once at container start (daemon/links)",
        predict=_link_rules_stay_on_old_address),
    Deviation(
        id="podman-routed-neighbour-reaches-containers",
        runtime="podman", since=Version(0, 0), until=None, check="isolation",
        summary="a LAN neighbour with a route to a container subnet via the host reaches every "
                "container on it, on every port: netavark accepts what its networks send and what "
                "answers them, but filters nothing forwarded into them (FORWARD's policy stays "
                "ACCEPT; Docker sets DROP and filters per network)",
        seen=PODMAN_SEEN + ", every topology with bridged containers",
        reference="netavark iptables driver: NETAVARK_FORWARD has only ACCEPT rules (containers/netavark "
                  "src/firewall/varktables)",
        predict=_routed_neighbour_reaches_containers),
    Deviation(
        id="podman-networks-not-isolated",
        runtime="podman", since=Version(0, 0), until=Version(6, 0), check="isolation",
        summary="containers on different networks of one host reach each other: Podman's networks "
                "are not isolated from one another before Podman 6 (an opt-in isolate option since "
                "Podman 4.5; Docker isolates bridge networks by default). Podman 6 isolates every "
                "network by default (measured: 4.3.1, 5.4.2 and 5.8.6 reach across, 6.1.1 blocks, "
                "netavark 2.0's NETAVARK-ISOLATION chains)",
        seen=PODMAN_SEEN + ", user-defined",
        reference="podman-network-create(1): --opt isolate (Podman 4.5+)",
        predict=_networks_not_isolated),
    Deviation(
        id="podman-strict-isolation-one-way",
        runtime="podman", since=Version(5, 0), until=Version(6, 0), check="isolation",
        summary="a network created with -o isolate=strict still receives TCP and UDP from the host's "
                "other networks (its default one among them); only the answers are dropped, by "
                "netavark's NETAVARK-ISOLATION-3 rule on the other network's bridge (oifname ... drop), "
                "so a one-way packet into the isolated network arrives (measured: 5.4.2 and 5.8.6; "
                "6.1.1 blocks both ways; Docker's bridge networks drop it on the way in)",
        seen="Podman 5.4.2 (netavark 1.14) and 5.8.6 (netavark 1.17) on this machine, isolated-networks",
        reference="podman-network-create(1): --opt isolate=strict",
        predict=_strict_isolation_one_way),
    Deviation(
        id="podman-network-update-keeps-last-dns-server",
        runtime="podman", since=Version(5, 0), until=None, check="network-dns-update",
        summary="podman network update --dns-drop of a network's last DNS server does not reach the "
                "running aardvark-dns: the network's config file loses the server, but its containers "
                "keep resolving through it until aardvark-dns reloads (a SIGHUP by hand applies it). "
                "Dropping one of two servers, or adding one, applies at once (measured: 5.4.2, 5.8.6, 6.1.1)",
        seen="Podman 5.4.2, 5.8.6 and 6.1.1 (aardvark-dns 1.14, 1.17) on this machine, network-dns",
        reference="podman-network-update(1): --dns-drop; netavark update (containers/netavark#617: an "
                  "empty list is allowed)",
        predict=_keeps_last_dns_server),
    Deviation(
        id="podman-host-mode-has-no-icmp",
        runtime="podman", since=Version(0, 0), until=None, check="reachability",
        summary="a host-mode container cannot send ICMP on a host whose ping_group_range admits no "
                "ICMP datagram sockets for root: Podman's default capabilities lack NET_RAW (Docker "
                "grants it), and Podman sets ping_group_range only in containers' own namespaces. "
                "On a host with Debian 13's sysctl defaults it can (measured here): the lab's hosts "
                "have them unless a topology sets the kernel's own '1 0'",
        seen=PODMAN_SEEN + ", host",
        reference="containers.conf(5): default_capabilities, default_sysctls (ping_group_range)",
        predict=_host_mode_has_no_icmp, needs=(NO_ICMP_SOCKETS_FOR_ROOT,)),
    Deviation(
        id="podman-containers-lack-net-raw",
        runtime="podman", since=Version(0, 0), until=None, check="ping",
        summary="busybox ping fails in every container ('permission denied'): Podman's default "
                "capabilities lack NET_RAW (Docker grants it), and busybox ping uses a raw socket. "
                "The matrix's ICMP probes still run, from the same containers, through the ICMP "
                "datagram socket Podman's default sysctl (ping_group_range) permits",
        seen=PODMAN_SEEN + ", every topology",
        reference="containers.conf(5): default_capabilities (no NET_RAW since Podman 4.0)",
        predict=_ping_refused_everywhere),
    Deviation(
        id="podman-no-hairpin-to-own-published-port",
        runtime="podman", since=Version(0, 0), until=None, check="reachability",
        summary="a container cannot reach its own published port through its host's address "
                "where br_netfilter passes bridged traffic through iptables (netavark 1.4 DNATs it "
                "back to the same bridge port without hairpin mode; Docker's userland proxy or hairpin "
                "NAT answers). A Podman-only host has no br_netfilter loaded, and there it reaches "
                "(measured here)",
        seen=PODMAN_SEEN + ", portmap",
        reference="netavark bridge driver: hairpin mode on bridge ports came with netavark 1.6",
        predict=_no_hairpin_to_own_published_port, needs=(BR_NETFILTER_ON,)),
    Deviation(
        id="podman-bridge-forwards-past-the-tunnel-mtu",
        runtime="podman", since=Version(0, 0), until=None, check="path-mtu",
        summary="one byte over the scheme's MTU still crosses to the other host: the container bridge "
                "forwards a frame that fits its tunnel port's MTU plus a VLAN tag (4 bytes), and with "
                "no br_netfilter loaded (Podman loads none; dockerd does) nothing enforces the exact MTU",
        seen=PODMAN_SEEN + ", weave and ovs (bridge ports of MTU below the bridge's own)",
        reference="Linux net/core/dev.c is_skb_forwardable (VLAN_HLEN slack), net/bridge/br_netfilter_hooks.c "
                  "br_nf_dev_queue_xmit (exact MTU)",
        predict=_bridge_forwards_past_the_tunnel_mtu, needs=(BR_NETFILTER_OFF,)),
    Deviation(
        id="podman-container-mode-keeps-own-hostname",
        runtime="podman", since=Version(0, 0), until=None, check="shared-hostname",
        summary="a container in another's network namespace (--network container:X) keeps a "
                "hostname of its own; Docker gives it X's. Podman shares the UTS namespace only "
                "when asked (--uts container:X)",
        seen=PODMAN_SEEN + ", container",
        reference="podman-run(1): --network container:id, --uts",
        predict=_hostname_not_shared),
    Deviation(
        id="podman-refused-publish-removes-existing-setmark-rules",
        runtime="podman", since=Version(0, 0), until=Version(5, 4), check="half-made",
        summary="when a second container asks for a host port already published and is refused, "
                "Podman's cleanup of it deletes the existing mapping's SETMARK rules (same rule "
                "text, same network and port): the first container keeps its DNAT, but traffic "
                "to it from its own network or from localhost is no longer masqueraded. Gone in "
                "5.4.2 (measured; 4.4 to 5.3 not run here): its refusal leaves the mapping whole",
        seen=PODMAN_SEEN + ", portmap",
        reference="netavark teardown deletes port-forward rules by their text (iptables -D)",
        predict=_refused_publish_takes_setmark_rules),
)


def applying(lab, check: str) -> list[Deviation]:
    """The deviations of this lab's engine (name, version, options) and hosts on ``check``."""
    version = Version.parse(lab.runtime.version())
    return [d for d in DEVIATIONS
            if d.check == check and d.applies(lab.runtime_name, version, lab.runtime.flags, lab.host_settings)]


def explaining(lab, check: str, observation: str, **context) -> list[Deviation]:
    """The deviations of this lab's engine on ``check`` whose prediction holds ``observation``:
    for a test that sees one consequence of a behaviour another test checks exactly."""
    return [d for d in applying(lab, check) if observation in d.predict(lab, **context)]


def matching(lab, check: str, observed: frozenset[str], **context) -> list[Deviation]:
    """The deviations of this lab's engine on ``check`` when, together, they predict exactly
    ``observed`` (those that predict nothing here left out); else none."""
    found = [(d, d.predict(lab, **context)) for d in applying(lab, check)]
    found = [(d, predicted) for d, predicted in found if predicted]
    if found and frozenset().union(*(predicted for _, predicted in found)) == observed:
        return [d for d, _ in found]
    return []


def assert_excused(lab, check: str, problems: list[str], **context) -> None:
    """Nothing wrong; or problems that are exactly a known deviation of this engine (each problem
    its own observation: a strict xfail naming it); else a failure listing them, with what the
    deviations of this check would have needed."""
    __tracebackhide__ = True
    if problems:
        notes = excuse(lab, check, frozenset(problems), **context)
        pytest.fail("\n".join(problems) + (f"\n{notes}" if notes else ""))


def excuse(lab, check: str, observed: frozenset[str], **context) -> str:
    """Strict xfail when ``observed`` is exactly a known deviation of this engine; otherwise
    return what the deviations of this check would have needed, for the failure message."""
    __tracebackhide__ = True
    found = matching(lab, check, observed, **context)
    if found:
        ids = ", ".join(d.id for d in found)
        what = (f"({found[0].range}) {found[0].summary}." if len(found) == 1
                else " ".join(f"{d.id} ({d.range}): {d.summary}." for d in found))
        counts = "; ".join(f"{d.id} excused {len(d.predict(lab, **context) & observed)}" for d in found)
        pytest.xfail(f"known deviation{'s' * (len(found) > 1)} {ids} of engine {lab.runtime_name} "
                     f"{lab.runtime.version()}: {what} Excused {len(observed)} observation(s) ({counts}). "
                     f"Observed exactly: {'; '.join(sorted(observed))}")
    version = Version.parse(lab.runtime.version())
    notes = []
    for d in DEVIATIONS:
        if d.check != check:
            continue
        if not d.applies(lab.runtime_name, version, lab.runtime.flags):
            notes.append(f"known deviation {d.id} is for {d.range}, not {lab.runtime_name} "
                         f"{lab.runtime.version()}")
        elif not d.applies(lab.runtime_name, version, lab.runtime.flags, lab.host_settings):
            notes.append(f"known deviation {d.id} is for {d.range}; this lab's hosts have "
                         + "; ".join(f"{h}: " + ", ".join(f"{c.key} = {v.get(c.key, 'absent')}" for c in d.needs)
                                     for h, v in lab.host_settings.items()))
        else:
            predicted = d.predict(lab, **context)
            notes.append(f"known deviation {d.id} predicts {'; '.join(sorted(predicted)) or 'nothing'}"
                         f"; unexplained: {'; '.join(sorted(observed - predicted)) or 'none'}"
                         f"; missing: {'; '.join(sorted(predicted - observed)) or 'none'}")
    return "\n".join(notes)
