"""Network stacks: what each mode shares, owns, or lacks."""

from __future__ import annotations

import ipaddress
from contextlib import contextmanager
from dataclasses import dataclass

from ..lab import Lab
from ..nodes import Node

NAMESPACES = ("net", "mnt", "pid", "uts")


def namespaces(node: Node) -> dict[str, str]:
    """Namespace identities (``net:[4026…]``) of a node's processes."""
    out = node.exec(["busybox", "sh", "-c", " ; ".join(
        f"echo {ns} $(busybox readlink /proc/self/ns/{ns})" for ns in NAMESPACES)]).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def links_and_addresses(node: Node) -> tuple[set[str], set[str]]:
    """Interface names and IPv4 addresses (with prefix) of a node's stack."""
    links = node.exec(["busybox", "ip", "-o", "link"]).stdout
    addrs = node.exec(["busybox", "ip", "-o", "-4", "addr"]).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line}
    return names, {line.split()[3] for line in addrs.splitlines() if len(line.split()) > 3}


def ping_refused(name: str) -> str:
    """The observation of a container whose ping may not open an ICMP socket (deviations predict it)."""
    return f"{name}: ping may not open an ICMP socket"


@dataclass(frozen=True)
class PingRefused:
    """A container whose own ping could not send: what the engine's default capabilities allow."""

    name: str
    said: str  # ping's own words

    @property
    def observation(self) -> str:  # what deviations predict: the refusal, not its wording's details
        return ping_refused(self.name)

    def __str__(self) -> str:
        return f"{self.name}: ping to ext refused inside the container: {self.said}"


def ping_refusals(lab: Lab) -> list[PingRefused]:
    """Containers (any mode with a stack) whose busybox ping, run as the engine runs it with the
    capabilities the engine grants by default, cannot open an ICMP socket at all.  Whether the
    echo is answered is the matrix's business; this is whether a user's ``ping`` runs."""
    found = []
    for c in lab.topology.containers:
        if c.mode == "none":
            continue
        done = lab.containers[c.name].exec(["ping", "-c", "1", "-W", "2", lab.ext.address])
        if "permission denied" in (done.stdout + done.stderr).lower():
            found.append(PingRefused(c.name, (done.stderr or done.stdout).strip()))
    return found


def host_mode_shares_stack(lab: Lab) -> list[str]:
    """A host-mode container is in its host's network namespace: same links, same addresses."""
    problems = []
    for c in lab.topology.containers:
        if c.mode != "host":
            continue
        host, mine = lab.hosts[c.host], lab.containers[c.name]
        if namespaces(mine)["net"] != namespaces(host)["net"]:
            problems.append(f"{c.name}: not in {c.host}'s network namespace")
        if links_and_addresses(mine) != links_and_addresses(host):
            problems.append(f"{c.name}: sees links/addresses {links_and_addresses(mine)}, "
                            f"{c.host} has {links_and_addresses(host)}")
    return problems


def host_mode_port_competition(lab: Lab, free_port: int = 8099) -> list[str]:
    """Host and host-mode container compete for ports, both ways."""
    problems = []
    for c in lab.topology.containers:
        if c.mode != "host":
            continue
        host, mine = lab.hosts[c.host], lab.containers[c.name]
        for port in c.ports:  # held by the container's service: the host cannot bind it
            if _can_bind(host, port):
                problems.append(f"{c.host}: could bind port {port}, which {c.name} holds")
        holder = host.exec(["sh", "-c", f"busybox timeout 30 busybox nc -l -p {free_port} "
                                        ">/dev/null 2>&1 </dev/null & echo $!"]).stdout.strip()
        try:
            if _can_bind(mine, free_port):
                problems.append(f"{c.name}: could bind port {free_port}, which {c.host} holds")
        finally:
            host.exec(["kill", holder])
    return problems


def _can_bind(node: Node, port: int) -> bool:
    """Listen on a port for a second: still listening (killed by timeout) means it was free."""
    result = node.exec(["busybox", "timeout", "1", "busybox", "nc", "-l", "-p", str(port)])
    return "in use" not in result.stderr


def none_has_only_lo(lab: Lab) -> list[str]:
    problems = []
    for c in lab.topology.containers:
        if c.mode == "none":
            links, addresses = links_and_addresses(lab.containers[c.name])
            if links != {"lo"} or addresses != {"127.0.0.1/8"}:
                problems.append(f"{c.name}: mode none should have only lo with 127.0.0.1/8, "
                                f"has links {sorted(links)} and addresses {sorted(addresses)}")
    return problems


def container_mode_shares_net_only(lab: Lab) -> list[str]:
    """``--network container:X`` shares X's network namespace and nothing else."""
    problems = []
    for c in lab.topology.containers:
        if c.mode != "container":
            continue
        mine = namespaces(lab.containers[c.name])
        theirs = namespaces(lab.containers[c.container])
        if mine["net"] != theirs["net"]:
            problems.append(f"{c.name}: not in {c.container}'s network namespace")
        for ns in ("mnt", "pid"):
            if mine[ns] == theirs[ns]:
                problems.append(f"{c.name}: shares {c.container}'s {ns} namespace, which it should not")
        if links_and_addresses(lab.containers[c.name]) != links_and_addresses(lab.containers[c.container]):
            problems.append(f"{c.name}: interfaces or addresses differ from {c.container}'s")
    return problems


def addressing_plans(lab: Lab) -> list[tuple[str, ipaddress.IPv4Network, ipaddress.IPv4Network, str]]:
    """(container, network, pool, gateway) for every bridged container whose address the
    scheme plans (overlay plans none: its containers have two interfaces)."""
    topo, scheme = lab.topology, lab.scheme
    plans = []
    for c in topo.containers:
        if c.mode == "network":
            subnet = topo.network(c.network).subnet
            plans.append((c.name, subnet, subnet, str(subnet[1])))
        elif c.mode == "bridge" and scheme.addressing(topo, c.host):
            network, pool, gateway = scheme.addressing(topo, c.host)
            plans.append((c.name, network, pool, str(gateway)))
    return plans


def bridge_addressing(lab: Lab) -> list[str]:
    """Each bridged container has an address from its host's pool, the bridge as gateway."""
    problems = []
    for name, network, pool, gateway in addressing_plans(lab):
        node = lab.containers[name]
        _, addresses = links_and_addresses(node)
        mine = [ipaddress.IPv4Interface(a) for a in addresses if not a.startswith("127.")]
        if len(mine) != 1 or mine[0].network != network or mine[0].ip not in pool:
            problems.append(f"{name}: addresses {[str(a) for a in mine]}, want one from {pool} "
                            f"on {network}")
        routes = node.exec(["busybox", "ip", "route"]).stdout.splitlines()
        default = next((r.split() for r in routes if r.startswith("default ")), [])
        if default[1:3] != ["via", gateway]:
            problems.append(f"{name}: default route {' '.join(default) or 'missing'}, "
                            f"want via {gateway}")
    return problems


@contextmanager
def wired_by_hand(lab: Lab, name: str):
    """Give a container a veth from its host's docker0 and an address, as pipework does.

    Yields the address; the veth is removed again on exit.
    """
    spec = lab.topology.container(name)
    pid = lab.containers[name].pid
    subnet = lab.topology.bridge_subnet(spec.host)
    address, gateway, veth = str(subnet[-2]), str(subnet[1]), f"pw-{name}"[:15]
    inside = (f"nsenter --net=/proc/{pid}/ns/net sh -c 'ip addr add {address}/{subnet.prefixlen} "
              f"dev eth1 && ip link set eth1 up && ip route add default via {gateway}'")
    host = lab.hosts[spec.host]
    host.exec(["sh", "-c", f"ip link add {veth} type veth peer name eth1 netns {pid} && "
                           f"ip link set {veth} master docker0 up && {inside}"]).check("wiring by hand")
    try:
        yield address
    finally:
        host.exec(["ip", "link", "del", veth])
