"""The runtime seam: what schemes, checks and suites may ask of a container engine.

As containerlab's ``runtime.Runtime`` interface, one Protocol holds what the
rest of netconform really needs: start and stop the engines, make networks
and containers from specs, a container's state (its namespace's PID, its
addresses), exec, a cluster for overlay networks, and the engine's name and
version.  Nothing outside a runtime module touches an engine's own client
objects; what a runtime returns is plain data, and an engine's refusal is
``Refused`` carrying the engine's own words, so a suite can assert on them
without knowing which engine said it.  A second runtime (Podman) is one more
module that satisfies this, plus its line in ``registry.RUNTIMES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..hostprofile import Setting
    from ..nodes import ContainerNode, HostNode
    from ..schemes.base import Scheme
    from ..site import Site
    from ..topology import Container


class Unavailable(RuntimeError):
    """A host lacks what the runtime needs (probed on the host): the lab is skipped, with this."""


class Refused(RuntimeError):
    """The engine refused a request; ``str()`` is its own message."""


@dataclass(frozen=True)
class NetworkSpec:
    """A network a scheme asks for on one host (or cluster-wide, for an overlay)."""

    name: str
    driver: str  # bridge, macvlan, overlay
    subnet: str
    ip_range: str | None = None
    gateway: str | None = None
    options: tuple[tuple[str, str], ...] = ()  # the driver's options
    attachable: bool = False  # an overlay that plain containers may join
    isolate: str = "default"  # a bridge network's isolation where the engine makes it a choice (topology Network)
    dns: tuple[str, ...] = ()  # the network's own DNS servers, where the engine has them (topology Network)


@dataclass(frozen=True)
class ContainerState:
    """A container as its engine reports it now."""

    running: bool
    pid: int  # its first process on the host (0 when not running)
    addresses: dict[str, str] = field(default_factory=dict)  # network -> IPv4 address
    endpoints: dict[str, str] = field(default_factory=dict)  # networks it holds an endpoint on -> address
    id: str = ""  # the engine's ID of the container


@dataclass(frozen=True)
class Task:
    """One task of a cluster service: where it runs and how it is doing."""

    node: str
    state: str
    error: str = ""


class ContainerHandle(Protocol):
    """What a ``ContainerNode`` needs of its engine: exec and inspect."""

    def exec(self, argv: list[str]) -> tuple[int, bytes | None, bytes | None]: ...

    def state(self) -> ContainerState: ...


class Service(Protocol):
    def tasks(self) -> list[Task]: ...

    def remove(self) -> None: ...


class Runtime(Protocol):
    name: str
    label: str  # how lab ids name it: docker, docker-28.5
    flags: frozenset[str]  # the engine options the engines run with
    # What the runtime has no equivalent for: a topology feature (``plugin.features``: link,
    # no-icc, scheme:overlay ...) -> why.  A lab needing one is skipped with that reason, which
    # --strict-skips accepts because it is declared here (``skips.unsupported``).
    lacks: Mapping[str, str]
    # The filter chain the engine leaves for the user's own forward rules (DOCKER-USER), or None
    # when the engine filters nothing forwarded that it did not make (a scheme adds none then).
    forward_filter: str | None
    nat_dialect: str  # how it writes its NAT (``dialects.DIALECTS``)
    engine_builds: bool  # whether --engine picks among its builds (docker), or it runs the system's
    # What the engine itself sets on a host it runs on (a module it loads, a sysctl its daemon
    # writes), which a fresh lab host must be given to behave like a real host running it.
    host_prerequisites: tuple[Setting, ...]

    def missing(self) -> str | None: ...

    def missing_on(self, node: HostNode) -> str | None: ...

    def version(self) -> str: ...

    def facts(self) -> dict[str, str]: ...  # also before start_engines where ``lacks`` is not empty

    def start_engines(self, site: Site, scheme: Scheme) -> None: ...

    def populate(self) -> dict[str, ContainerNode]: ...

    def down(self) -> None: ...

    def record(self, steps: list[str]) -> None: ...

    recording: list[str] | None  # a dry run's steps, since record(); None in a real run

    def create_network(self, host: str, spec: NetworkSpec) -> None: ...

    def set_network_dns(self, host: str, network: str, add: tuple[str, ...], drop: tuple[str, ...]) -> None:
        """Change a network's own DNS servers while its containers run (``podman network update
        --dns-add/--dns-drop``); Refused where the engine has no such servers (``lacks``)."""
        ...

    def form_cluster(self, manager: str, addresses: dict[str, str]) -> None: ...

    def api_endpoint(self, host: str) -> str:
        """The engine's Docker API as the host's own processes reach it (``unix://PATH``), for
        third-party software that drives the engine (Weave's Docker plugin); Refused where the
        engine has no such plugins (``lacks``)."""
        ...

    def run_container(self, host: str, spec: Container, name: str | None = None) -> ContainerNode: ...

    def stop(self, node: ContainerNode) -> None: ...

    def start(self, node: ContainerNode) -> None: ...

    def remove(self, host: str, name: str) -> None: ...

    def connect(self, node: ContainerNode, network: str) -> None: ...

    def disconnect(self, node: ContainerNode, network: str) -> None: ...

    def states(self, host: str, name: str) -> list[ContainerState]: ...

    def service(self, host: str, name: str, published: int, target: int) -> Service: ...

    def cli(self, host: str) -> str: ...

    def state_dir(self, host: str) -> str: ...

    def enter_command(self, node: ContainerNode) -> str: ...


def creation_order(containers: tuple[Container, ...]) -> list[Container]:
    """Targets of container mode and sources of links before those that need them."""
    done: list[Container] = []
    pending = list(containers)
    while pending:
        names = {c.name for c in done}
        ready = [c for c in pending if {c.container or c.name, *(l.source for l in c.links)}
                 - {c.name} <= names]
        if not ready:
            raise ValueError(f"links form a cycle among {', '.join(c.name for c in pending)}")
        done += ready
        pending = [c for c in pending if c not in ready]
    return done

