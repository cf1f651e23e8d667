"""What every scheme is: a promise as data, an address plan, and set-up hooks.

A scheme decides how containers on different hosts reach each other.  The
lab calls its hooks in order: ``before_engines`` (host plumbing: bridges,
tunnels, daemons), ``engine_args`` (each dockerd's address plan),
``after_engines`` (routes, firewall rules, networks, swarm, through the
runtime), ``after_container`` (per-container fixes).  Hooks get the
``Site`` (the topology and its hosts), not the lab.  ``network`` names the Docker
network that ``mode: bridge`` containers join.  The base class is the
``local`` scheme: nothing crosses hosts but what NAT and published ports give.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import skips
from ..hostprofile import Setting

if TYPE_CHECKING:
    from ..engines import Version
    from ..nodes import ContainerNode
    from ..runtimes.base import Runtime
    from ..site import Site
    from ..topology import Topology


@dataclass(frozen=True)
class Promise:
    """What a scheme promises, beyond what the Docker modes on one host do."""

    crosses: bool = False  # container -> container on another host, by its address
    hosts_reach_remote: bool = False  # host -> containers on other hosts
    ext_reaches: bool = False  # ext (the LAN) -> containers
    masquerades: bool = True  # container -> ext leaves with its host's address
    host_reaches_own: bool = True  # host -> its own containers (macvlan, overlay: no)
    own_reach_host: bool = True  # containers -> their own host (macvlan: no)
    mtu: int = 1500  # largest IP packet between containers on different hosts
    wire: str = "underlay-only"  # what the underlay carries between hosts, see checks/path.py
    tunnel_id: int | None = None  # the VXLAN VNI or GRE key on the wire (None: not promised)
    # Who answers ext on a published port: "dnat" (the container, seeing ext's address) or
    # "proxy" (docker-proxy, so the container sees the host: Docker's DNAT rule skips traffic
    # arriving on the container bridge, which is where the LAN arrives when the NIC is enslaved).
    published_via: str = "dnat"


@dataclass(frozen=True)
class BridgePlan:
    """Each engine's default bridge network on one host, engine-neutral: the docker runtime turns
    it into dockerd's --bip/--bridge/--fixed-cidr/--mtu, the podman runtime into its default
    network's definition."""

    bridge: str  # the bridge's interface name
    network: ipaddress.IPv4Network  # the bridge's network (what MASQUERADE names)
    gateway: ipaddress.IPv4Interface  # the bridge's own address
    pool: ipaddress.IPv4Network  # where container addresses come from (--fixed-cidr)
    mtu: int
    made_by_scheme: bool  # the scheme made (and addressed) the bridge before the engine started


# A scheme that builds the container bridge, or plugs a port into it, before any container is an
# admin's set-up, and its admin turns forwarding on: dockerd did already when it started (and then
# set FORWARD's policy to DROP, which it does only when it is the one enabling forwarding, so this
# comes after the engines); netavark 1.14 enables it on any bridge, 1.17 and 2.0 only on a bridge
# they make themselves (measured here).
BRIDGE_BUILT_FIRST = (Setting("net.ipv4.ip_forward", "1", "the scheme's set-up: it builds or extends the "
                              "container bridge before any container, as an admin does, forwarding on"),)


class Scheme:
    name = "local"
    # The scheme a variant of it belongs to (weave-encrypted: weave), for tests that need any of them
    # (``requires("scheme:weave")``); the name itself by default.
    family: str | None = None
    description = ("No cross-host container network: containers on other hosts are reached "
                   "only through their host's published ports.")
    promise = Promise()
    network = "bridge"  # the Docker network of mode-bridge containers (the one they are addressed on)
    bridge = "docker0"  # each engine's default bridge (dockerd --bridge, NAT rules)
    # Host subnets are slices of the underlay (containers live on the LAN itself).
    on_underlay = False
    # Whether the scheme rewires the hosts' underlay NICs (enslaves them, puts them in a
    # switch): then host-to-host figures are the scheme's own, not the LAN's (perf.paths).
    moves_underlay = False
    # Whether the scheme plugs something into the engine's own bridge before any container exists
    # (a tunnel port): then that bridge must exist once the engine is up, as docker0 does.
    plugs_into_engine_bridge = False
    # Host settings the scheme's set-up gives each host once the engines are up, as its admin would:
    # where it builds or extends the container bridge before any container, forwarding
    # (``BRIDGE_BUILT_FIRST``).
    admin_settings: tuple[Setting, ...] = ()
    # How the scheme was realised, for the report.
    realised = "Docker's default bridge on each host"
    # What packets cross on one host (container to container, to ext, ext to a published port)
    # where the scheme leaves that path as the engine made it, so labs of different schemes share
    # those figures (perf.paths.datapath); None where the scheme changes it (its own bridge, MTU,
    # offloads, a namespace of its own), so its paths are measured as its own.
    local_datapath: str | None = "the engine's Linux bridge, NAT via the host's NIC"
    # The scheme whose machinery carries this one's packets between hosts, where the two differ only
    # in how containers join it (weave-plugin: weave's routers and sleeve), so one run measures that
    # path once for both (perf.paths.datapath); None: its own.
    crosses_like: str | None = None

    @property
    def engine_network(self) -> str:
        """The engine network mode-bridge containers are created on: ``network``, unless the
        scheme attaches them to its own afterwards (Weave Net)."""
        return self.network

    def promise_on(self, site: Site) -> Promise:
        """What the scheme promises on these hosts: ``promise``, unless the hosts decide between
        datapaths of its own (Weave: fast datapath where their kernel has openvswitch).  Decided
        from what the hosts have, never from what the scheme did with it."""
        return self.promise

    def realised_in(self, site: Site, version: Version) -> str:
        """How the scheme was realised on these hosts with an engine of ``version``."""
        return self.realised

    def missing(self) -> str | None:
        """Why this scheme cannot run here (a skip reason), or None."""
        return None

    def validate(self, topo: Topology) -> list[tuple[str, str]]:
        """Scheme-specific problems, as (key path, message)."""
        return []

    # -- address plan ---------------------------------------------------

    def bridge_network(self, topo: Topology, host: str) -> ipaddress.IPv4Network:
        """The network of the host's container bridge (what MASQUERADE names)."""
        return topo.bridge_subnet(host)

    def gateway(self, topo: Topology, host: str) -> ipaddress.IPv4Interface:
        """The bridge's own address: the containers' gateway."""
        net = self.bridge_network(topo, host)
        return ipaddress.IPv4Interface(f"{topo.bridge_subnet(host)[1]}/{net.prefixlen}")

    def bridge_plan(self, topo: Topology, host: str) -> BridgePlan:
        """The host's default bridge network, whichever engine realises it."""
        return BridgePlan(self.bridge, self.bridge_network(topo, host), self.gateway(topo, host),
                          topo.bridge_subnet(host), self.promise.mtu, made_by_scheme=self.bridge != "docker0")

    def engine_args(self, topo: Topology, host: str, version: Version) -> list[str]:
        """The host's dockerd options for this scheme's address plan, on an engine of ``version``."""
        plan = self.bridge_plan(topo, host)
        if not plan.made_by_scheme:
            args = ["--bip", str(plan.gateway)]
            if plan.network != plan.pool:
                args += ["--fixed-cidr", str(plan.pool)]
        else:  # a bridge the scheme made, addressed, before the engine started
            args = ["--bridge", plan.bridge, "--fixed-cidr", str(plan.pool)]
        if plan.mtu != 1500:
            args += ["--mtu", str(plan.mtu)]
        return args

    def neighbour_routes(self, topo: Topology) -> list[tuple[ipaddress.IPv4Network, str]]:
        """(container subnet, host) pairs a neighbour on the LAN routes via that host.

        A real neighbour (a router, a machine on the segment) can route to any
        host's container subnets through the host; ext does too, so that what
        it cannot reach is the engine's doing, not a missing route.  Subnets on
        the underlay itself need no route.
        """
        routes = [(topo.bridge_subnet(h.name), h.name) for h in topo.hosts]
        routes += [(n.subnet, n.host) for n in topo.networks]
        return [(net, host) for net, host in routes if not net.subnet_of(topo.underlay)]

    def addressing(self, topo: Topology, host: str):
        """(network, pool, gateway) a mode-bridge container's address must fit, or None."""
        return self.bridge_network(topo, host), topo.bridge_subnet(host), self.gateway(topo, host).ip

    # -- hooks ----------------------------------------------------------

    def before_engines(self, site: Site) -> None:
        pass

    def after_engines(self, site: Site, runtime: Runtime) -> None:
        pass

    def after_container(self, site: Site, node: ContainerNode) -> None:
        pass


def kernel_lacks(limit_id: str, kind: str, setup: str) -> str | None:
    """Why the kernel cannot make a link of ``kind`` (tried in a throwaway namespace), or None;
    the reason names the environment limit ``limit_id`` (``skips.LIMITS``)."""
    done = subprocess.run(["unshare", "--net", "sh", "-c", setup], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    return skips.limit(limit_id, f"the kernel cannot create {kind} links: "
                                 f"{done.stderr.strip() or 'failed'}")


def covering(networks: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The smallest network containing all of these (one L2 domain over all hosts)."""
    net = networks[0]
    while not all(n.subnet_of(net) for n in networks):
        net = net.supernet()
    return net
