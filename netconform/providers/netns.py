"""Hosts as network namespaces on one machine, joined by an underlay LAN.

Inside the lab's sandbox: a namespace ``lan`` holding the bridge ``lan``,
one namespace per host with ``eth0`` on the underlay, and ``ext``, the
outside world, also on the underlay, serving the whoami page on port 80
and answering DNS with NXDOMAIN (the engines' upstream resolver).
ext is a real neighbour: it routes every host's container subnets via that
host, so whatever it cannot reach, the engine blocked.  Hosts route by
default through ext, which forwards nothing: like a real uplink, except
that nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import sys

from .. import image as probe_image
from ..nodes import NamespaceNode
from ..sandbox import Sandbox
from ..schemes import SCHEMES
from ..topology import Topology

# ext's whoami server's record of the probe datagrams that reached it (PORT appended), read by
# measure.arrivals to tell a one-way leak from a blocked datagram.
EXT_ARRIVALS = "/run/lab/ext-udp.arrivals"
EXT_ICMP_ARRIVALS = "/run/lab/ext-icmp.arrivals"  # and of the probe echoes (prober icmp-arrivals)


class NetnsProvider:
    name = "netns"
    local_kernel = True  # hosts share this machine's kernel

    def missing(self) -> str | None:
        """Why this provider cannot run here, or None."""
        tools = [t for t in ("ip", "nsenter", "unshare", "busybox") if shutil.which(t) is None]
        if tools:
            return f"netns provider needs {', '.join(tools)} (apt: iproute2, util-linux, busybox-static)"
        if os.geteuid() != 0:
            return "netns provider needs root (network namespaces, mounts)"
        return None

    def up(self, topo: Topology, sandbox: Sandbox) -> dict[str, NamespaceNode]:
        members = [(h.name, topo.underlay_address(h.name)) for h in topo.hosts]
        build_underlay(topo, sandbox, members)
        ext = start_ext(topo, sandbox)
        return {**{name: NamespaceNode(name, "host", sandbox, str(address.ip)) for name, address in members},
                "ext": ext}

    def down(self) -> None:
        """Nothing to do: the hosts are namespaces, and go with the sandbox."""

    # -- what a dry run shows (plan.py) ------------------------------------------------
    workdir = "/run/lab"  # the sandbox's own tmpfs
    hosts_end_with_sandbox = True  # namespaces, processes and /run/lab of the sandbox
    fresh_hosts = True  # a new namespace has the kernel's defaults: the lab gives it a host profile
    teardown: str | None = None  # nothing beyond closing the sandbox

    def describe(self, topo: Topology) -> str:
        return f"namespaces {', '.join(h.name for h in topo.hosts)} and ext on the bridge lan"

    def underlay_nic(self, host: str) -> str:
        return "eth0"

    @staticmethod
    def wire_tap(lab, host: str) -> tuple[NamespaceNode, str]:
        """Where to watch a host's underlay traffic: its port on the LAN bridge, as a switch sees it."""
        return NamespaceNode("lan", "host", lab.sandbox, ""), host


def build_underlay(topo: Topology, sandbox: Sandbox, hosts: list[tuple[str, object]]) -> None:
    """The namespace ``lan`` with the bridge ``lan``, and ext and ``hosts`` (namespaces) on it."""
    prefix, ext = topo.underlay.prefixlen, topo.ext_address()
    script = ["set -e", "ip netns add lan", "ip -n lan link set lo up",
              "ip -n lan link add name lan type bridge", "ip -n lan link set lan up"]
    for name, address in [*hosts, ("ext", ext)]:
        script += [
            f"ip netns add {name}",
            f"ip -n {name} link set lo up",
            f"ip -n lan link add name {name} type veth peer name eth0 netns {name}",
            f"ip -n lan link set {name} master lan up",
            f"ip -n {name} addr add {address.ip}/{prefix} dev eth0",
            f"ip -n {name} link set eth0 up",
        ]
        if name != "ext":
            script.append(f"ip -n {name} route add default via {ext.ip}")
    sandbox.run(["sh", "-c", "\n".join(script)]).check("building the underlay")


def ext_routes(topo: Topology) -> list[list[str]]:
    """The ``ip route`` arguments that make ext a real neighbour: every host's container
    subnets via that host (see ``Scheme.neighbour_routes``)."""
    return [[str(net), "via", str(topo.underlay_address(host).ip)]
            for net, host in SCHEMES[topo.scheme].neighbour_routes(topo)]


def start_ext(topo: Topology, sandbox: Sandbox) -> NamespaceNode:
    """ext's routes to the container subnets, the whoami service on port 80 (the prober's, as the
    containers serve it, answering as ext), the recorder of probe echoes that reach ext, and the
    resolver (``ext_dns``: ext's own name, NXDOMAIN for the rest)."""
    for route in ext_routes(topo):
        sandbox.run(["ip", "route", "add", *route], netns="ext").check("routing ext to the containers")
    sandbox.path("/run/lab").mkdir(exist_ok=True)
    sandbox.spawn([str(probe_image.prober()), "serve", "80", "ext", f"{EXT_ARRIVALS}-80"], "ext",
                  sandbox.path("/run/lab/ext-whoami.log"))
    sandbox.spawn([str(probe_image.prober()), "icmp-arrivals", EXT_ICMP_ARRIVALS], "ext",
                  sandbox.path("/run/lab/ext-icmp-arrivals.log"))
    sandbox.spawn([sys.executable, "-m", "netconform.ext_dns", "53", str(topo.ext_address().ip)], "ext",
                  sandbox.path("/run/lab/ext-dns.log"))
    return NamespaceNode("ext", "ext", sandbox, str(topo.ext_address().ip))
