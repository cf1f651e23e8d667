"""The topology as data: frozen dataclasses, nothing here creates anything.

As in Mininet's ``Topo``, a topology only describes hosts, networks and
containers; realising it is the job of a provider, a runtime and a scheme
(see ``netconform.lab``).  Field metadata carries the documentation and the
constraints, so that the YAML loader (``build.py``) and the published JSON
Schema (``schema.py``) are both generated from this one description.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

# Docker's network modes; "network" means a user-defined bridge network.
Mode = Literal["bridge", "host", "none", "container", "network"]
# How a user-defined network is isolated from the engine's others, where the engine makes it a choice
# (Podman's ``network create -o isolate=``); "default" leaves it to the engine.
Isolation = Literal["default", "true", "strict"]
MODES: tuple[str, ...] = Mode.__args__

# The longest name Linux accepts for an interface (IFNAMSIZ - 1).
IFNAME_MAX = 15
NAME_PATTERN = r"^[a-z][a-z0-9-]*$"
# Names the lab itself uses for nodes of its own.
RESERVED_NAMES = ("ext", "lan", "lo")


def meta(doc: str, **schema: object) -> dict:
    """Field metadata: ``doc`` for people, ``schema`` for JSON Schema and the loader."""
    return {"doc": doc, "schema": schema}


@dataclass(frozen=True)
class Publish:
    """A ``-p HOST:CONTAINER[/tcp]`` port mapping."""

    host_port: int
    container_port: int
    proto: str = "tcp"

    PATTERN = r"^[0-9]+:[0-9]+(/tcp)?$"
    ALLOWED = "'HOST:CONTAINER' or 'HOST:CONTAINER/tcp' with ports 1-65535"

    @classmethod
    def parse(cls, text: str) -> Publish:
        ports, _, proto = str(text).partition("/")
        host, sep, cont = ports.partition(":")
        if not sep or proto not in ("", "tcp") or not host.isdigit() or not cont.isdigit():
            raise ValueError(f"{text!r} is not a port mapping; allowed: {cls.ALLOWED}")
        for port in (int(host), int(cont)):
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} in {text!r} is out of range; allowed: 1-65535")
        return cls(int(host), int(cont))

    def __str__(self) -> str:
        return f"{self.host_port}:{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class Link:
    """A legacy ``--link SOURCE:ALIAS``."""

    source: str
    alias: str

    PATTERN = r"^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*)?$"
    ALLOWED = "'SOURCE' or 'SOURCE:ALIAS', SOURCE a container of this topology"

    @classmethod
    def parse(cls, text: str) -> Link:
        import re

        if not re.match(cls.PATTERN, str(text)):
            raise ValueError(f"{text!r} is not a link; allowed: {cls.ALLOWED}")
        source, _, alias = str(text).partition(":")
        return cls(source, alias or source)


@dataclass(frozen=True)
class Rule:
    """An expectation override: ``SRC -> DST`` or ``SRC -> HOST:PORT``.

    ``DST`` alone means every probe from SRC to that node (ICMP to each of
    its addresses and TCP to each port it serves); ``HOST:PORT`` means the
    TCP probe to that host's underlay address and port.
    """

    source: str
    target: str
    port: int | None = None

    PATTERN = r"^[a-z][a-z0-9-]* -> [a-z][a-z0-9-]*(:[0-9]+)?$"
    ALLOWED = "'SRC -> DST' or 'SRC -> HOST:PORT', names of nodes of this topology or 'ext'"

    @classmethod
    def parse(cls, text: str) -> Rule:
        import re

        if not re.match(cls.PATTERN, str(text)):
            raise ValueError(f"{text!r} is not a rule; allowed: {cls.ALLOWED}")
        source, _, dest = str(text).partition(" -> ")
        target, _, port = dest.partition(":")
        if port and not 1 <= int(port) <= 65535:
            raise ValueError(f"port {port} in {text!r} is out of range; allowed: 1-65535")
        return cls(source, target, int(port) if port else None)

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}" + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class Sysctl:
    """A host setting: ``KEY=VALUE`` for a network namespace's sysctl."""

    key: str
    value: str

    PATTERN = r"^net\.[a-z0-9_.*-]+=.+$"
    ALLOWED = ("'net.KEY=VALUE', a setting of the host's network namespace (machine-wide settings "
               "cannot differ between hosts of one kernel)")

    @classmethod
    def parse(cls, text: str) -> Sysctl:
        import re

        if not re.match(cls.PATTERN, str(text)):
            raise ValueError(f"{text!r} is not a host setting; allowed: {cls.ALLOWED}")
        key, _, value = str(text).partition("=")
        return cls(key.strip(), value.strip())

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True)
class Host:
    """A machine: on the netns provider a network namespace on the underlay LAN."""

    name: str
    underlay: ipaddress.IPv4Interface | None = field(
        default=None,
        metadata=meta("Address on the underlay LAN, with prefix; default: the next free one.",
                      format="ipv4-interface"),
    )
    subnet: ipaddress.IPv4Network | None = field(
        default=None,
        metadata=meta("Subnet of the engine's default bridge (docker0); default 172.30.N.0/24.",
                      format="ipv4-network"),
    )
    icc: bool = field(
        default=True,
        metadata=meta("Inter-container communication on docker0 (dockerd --icc)."),
    )
    userland_proxy: bool = field(
        default=True,
        metadata=meta("docker-proxy for published ports (dockerd --userland-proxy); with false, "
                      "published ports are DNAT rules alone."),
    )
    sysctl: tuple[Sysctl, ...] = field(
        default=(),
        metadata=meta("Settings of the host's network namespace over the host profile (netns provider: "
                      "Debian 13's sysctl defaults, br_netfilter not loaded), as 'net.KEY=VALUE'; "
                      "e.g. 'net.ipv4.ping_group_range=1 0' for a kernel's own default."),
    )


@dataclass(frozen=True)
class Network:
    """A user-defined bridge network on one host (``docker network create``)."""

    name: str
    host: str = field(metadata=meta("The host whose engine owns the network."))
    subnet: ipaddress.IPv4Network = field(
        metadata=meta("The network's subnet.", format="ipv4-network"))
    isolate: Isolation = field(
        default="default",
        metadata=meta("Isolation from the engine's other networks, where the engine makes it a choice "
                      "(podman network create -o isolate=...): 'true' blocks traffic between networks "
                      "that have it, 'strict' between this network and every other; 'default' is the "
                      "engine's own (Docker isolates bridge networks always, Podman from 6 on)."))
    dns: tuple[ipaddress.IPv4Address, ...] = field(
        default=(),
        metadata=meta("DNS servers the network's containers ask for names outside it (podman network "
                      "create --dns, changed live by podman network update); Docker has none per network.",
                      format="ipv4"))


@dataclass(frozen=True)
class Container:
    """A container and how it is attached to the network."""

    name: str
    host: str = field(metadata=meta("The host whose engine runs the container."))
    mode: Mode = field(default="bridge", metadata=meta("Docker network mode."))
    network: str | None = field(
        default=None,
        metadata=meta("For mode 'network': the user-defined network to join."),
    )
    container: str | None = field(
        default=None,
        metadata=meta("For mode 'container': the container whose namespace is shared."),
    )
    publish: tuple[Publish, ...] = field(
        default=(), metadata=meta("Published ports, as with docker run -p."))
    links: tuple[Link, ...] = field(
        default=(), metadata=meta("Legacy links, as with docker run --link."))
    serve: tuple[int, ...] | None = field(
        default=None,
        metadata=meta("TCP ports the container serves and exposes; default 80, none in mode "
                      "'container' (its ports are its target's).", minimum=1, maximum=65535),
    )

    @property
    def ports(self) -> tuple[int, ...]:
        """The TCP ports the container's whoami service listens on."""
        if self.serve is not None:
            return self.serve
        return () if self.mode == "container" else (80,)


@dataclass(frozen=True)
class Expect:
    """Overrides of the reachability the modes and scheme imply."""

    reach: tuple[Rule, ...] = field(default=(), metadata=meta("Probes that must succeed."))
    isolate: tuple[Rule, ...] = field(default=(), metadata=meta("Probes that must fail."))


@dataclass(frozen=True)
class Topology:
    """A whole lab: hosts on an underlay LAN, their networks and containers."""

    name: str = field(metadata=meta("Short name, as given to --topology.", pattern=NAME_PATTERN))
    description: str = field(metadata=meta("One line on what the topology shows."))
    hosts: tuple[Host, ...] = field(
        metadata=meta("Hosts by name.", keyed=True, minProperties=1))
    scheme: str = field(
        default="local",
        metadata=meta("How containers on different hosts reach each other."),
    )
    underlay: ipaddress.IPv4Network = field(
        default=ipaddress.IPv4Network("198.18.0.0/24"),
        metadata=meta("The LAN joining the hosts and ext (benchmark range 198.18.0.0/15).",
                      format="ipv4-network"),
    )
    ext: ipaddress.IPv4Address | None = field(
        default=None,
        metadata=meta("Address of ext, the outside world; default: the last one of the underlay.",
                      format="ipv4"),
    )
    networks: tuple[Network, ...] = field(
        default=(), metadata=meta("User-defined bridge networks by name.", keyed=True))
    containers: tuple[Container, ...] = field(
        default=(), metadata=meta("Containers by name.", keyed=True))
    expect: Expect = field(default=Expect(), metadata=meta("Overrides of the expected matrix."))
    source: str = field(default="", compare=False, metadata=meta("", internal=True))

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def container(self, name: str) -> Container:
        return next(c for c in self.containers if c.name == name)

    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    def containers_on(self, host: str) -> tuple[Container, ...]:
        return tuple(c for c in self.containers if c.host == host)

    def underlay_address(self, host: str) -> ipaddress.IPv4Interface:
        """The host's underlay address: given, or the host's position plus one."""
        given = self.host(host).underlay
        if given is not None:
            return given
        index = [h.name for h in self.hosts].index(host)
        return ipaddress.IPv4Interface(f"{self.underlay[index + 1]}/{self.underlay.prefixlen}")

    def ext_address(self) -> ipaddress.IPv4Interface:
        address = self.ext or self.underlay[-2]
        return ipaddress.IPv4Interface(f"{address}/{self.underlay.prefixlen}")

    def bridge_subnet(self, host: str) -> ipaddress.IPv4Network:
        """The subnet of the host's docker0: given, or 172.30.N.0/24."""
        given = self.host(host).subnet
        if given is not None:
            return given
        index = [h.name for h in self.hosts].index(host)
        return ipaddress.IPv4Network(f"172.30.{index + 1}.0/24")
