"""A lab: a topology realised by a provider, a runtime and a scheme.

As in Mininet's ``buildFromTopo``, the topology is data and this is where
it becomes real: the sandbox first (so everything after it is owned by the
run), then the provider's hosts, then the runtime's engines and containers.
The scheme's hooks run between those steps (see ``schemes/base.py``); they
and the runtime get the ``Site`` (the topology and the provider's hosts),
never the lab itself.
A lab is a context manager and tears down even when setup fails halfway.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import hostprofile, registry
from .engines import Version
from .nodes import ContainerNode, HostNode, InStack, NamespaceNode, Node
from .providers.base import Provider
from .result import Result
from .runtimes.base import Runtime, Unavailable
from .sandbox import Sandbox
from .site import Site
from .schemes import SCHEMES, Promise
from .topology import Topology


@dataclass
class Phases:
    """Seconds spent in each step of bringing a lab up and down."""

    sandbox: float = 0.0
    hosts: float = 0.0
    scheme: float = 0.0  # the scheme's hooks around the engines
    runtime: float = 0.0
    down: float = 0.0


@dataclass
class Lab:
    topology: Topology
    provider_name: str = "netns"
    runtime_name: str = "docker"
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    sandbox: Sandbox | None = None
    hosts: dict[str, HostNode] = field(default_factory=dict)
    containers: dict[str, ContainerNode] = field(default_factory=dict)
    phases: Phases = field(default_factory=Phases)
    kept: bool = False
    provider_options: dict = field(default_factory=dict)  # e.g. the ssh provider's inventory
    runtime_options: dict = field(default_factory=dict)  # e.g. the docker runtime's engine build
    start_sandbox: Callable[[str], Sandbox] = Sandbox.start  # the dry run passes one that starts nothing
    site: Site | None = None  # the provider's hosts, once they are up
    # Each host's settings once the engines ran (hostprofile.RECORDED): what deviations depend on.
    host_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    # Told each step of bringing the lab up and down as it ends, for people watching (a
    # line per phase: minutes on VMs); the pytest plugin passes its terminal reporter's.
    progress: Callable[[str], None] = lambda text: None

    def __post_init__(self) -> None:
        self.provider: Provider = registry.load("provider", self.provider_name, **self.provider_options)
        self.runtime: Runtime = registry.load("runtime", self.runtime_name, **self.runtime_options)
        self.scheme = SCHEMES[self.topology.scheme]
        # What the scheme promises on these hosts (``Scheme.promise_on``), once they are up.
        self.promise: Promise = self.scheme.promise

    @property
    def id(self) -> str:
        """How test ids and reports name this lab: topology@provider-runtime, where the runtime
        label names a chosen engine build (``bridge@netns-docker-28.5``)."""
        return f"{self.topology.name}@{self.provider_name}-{self.runtime.label}"

    def missing(self) -> str | None:
        """Why this lab cannot be built here (a skip reason), or None."""
        # A scheme's kernel probes look at this machine's kernel: they say nothing of VMs'.
        scheme = self.scheme.missing() if self.provider.local_kernel else None
        return self.provider.missing() or self.runtime.missing() or scheme

    def __enter__(self) -> Lab:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        mark = time.monotonic()
        self.sandbox = self.start_sandbox(self.run_id)
        self.phases.sandbox, mark = time.monotonic() - mark, time.monotonic()
        self.hosts = self.provider.up(self.topology, self.sandbox)
        for name in (h.name for h in self.topology.hosts):  # before any engine starts
            reason = self.runtime.missing_on(self.hosts[name])
            if reason:
                raise Unavailable(reason)
        if self.provider.fresh_hosts:  # before any engine: each host as it is after boot
            for host in self.topology.hosts:
                chosen = hostprofile.settings(self.topology, host.name, self.runtime.host_prerequisites)
                self.hosts[host.name].exec(["sh", "-c", hostprofile.script(chosen)]).check(
                    f"host settings of {host.name} (hostprofile.PROFILE, {self.runtime.name}'s prerequisites, "
                    f"the topology's sysctl)")
        self.site = Site(self.topology, self.hosts, self.provider.local_kernel, self.run_id,
                         planned=self.runtime.recording is not None)
        self.phases.hosts, mark = time.monotonic() - mark, time.monotonic()
        hosts = len(self.topology.hosts)
        self._told(f"{hosts} host{'s' * (hosts != 1)} up on {self.provider_name}", self.phases.sandbox + self.phases.hosts)
        self.scheme.before_engines(self.site)
        self.phases.scheme, mark = time.monotonic() - mark, time.monotonic()
        self.runtime.start_engines(self.site, self.scheme)
        self.phases.runtime, mark = time.monotonic() - mark, time.monotonic()
        self._told(f"engines started ({self.runtime.label})", self.phases.scheme + self.phases.runtime)
        self.scheme.after_engines(self.site, self.runtime)
        self.promise = self.scheme.promise_on(self.site)
        if self.scheme.admin_settings:  # the scheme's set-up, after the engine as an admin's comes
            for host in self.topology.hosts:
                self.hosts[host.name].exec(["sh", "-c", hostprofile.script(self.scheme.admin_settings)]).check(
                    f"the {self.scheme.name} scheme's host settings on {host.name}")
        scheme_after, mark = time.monotonic() - mark, time.monotonic()
        self.phases.scheme += scheme_after
        self._told(f"scheme {self.scheme.name} set up", scheme_after)
        self.containers = self.runtime.populate()
        self.host_settings = {h.name: hostprofile.read(self.hosts[h.name]) for h in self.topology.hosts}
        populated = time.monotonic() - mark
        self.phases.runtime += populated
        self._told(f"{len(self.containers)} containers started", populated)

    def _told(self, what: str, seconds: float) -> None:
        self.progress(f"{self.id}: {what} ({seconds:.1f} s)")

    def down(self) -> None:
        if self.sandbox is None or self.kept:
            return
        mark = time.monotonic()
        try:
            try:
                if not self.provider.hosts_end_with_sandbox:  # else closing the sandbox ends it all
                    self.runtime.down()
            finally:
                self.provider.down()
        finally:
            self.sandbox.close()
            self.phases.down = time.monotonic() - mark
            self._told("torn down", self.phases.down)

    def keep(self) -> None:
        """Leave the lab running after this process exits; ``kill <sandbox pid>`` removes it."""
        self.sandbox.keep()
        self.kept = True

    def node(self, name: str) -> Node:
        return self.hosts.get(name) or self.containers[name]

    @property
    def ext(self) -> NamespaceNode:
        return self.hosts["ext"]

    def netns_exec(self, container: str | ContainerNode, argv: list[str], timeout: float = 30) -> Result:
        """Run a tool of the host's (ping -M, ethtool, ip) in a container's network namespace."""
        node = self.containers[container] if isinstance(container, str) else container
        return self.site.netns_exec(node, argv, timeout)

    def stack_tools(self, name: str) -> Node:
        """The node ``name`` as its host's tools see its network stack: a host or ext itself, a
        container through ``netns_exec``."""
        if name in self.hosts:
            return self.hosts[name]
        return InStack(name, lambda argv, timeout: self.netns_exec(name, argv, timeout))

    def realised(self) -> str:
        """How the scheme was realised on these hosts with this engine, for the report."""
        return self.scheme.realised_in(self.site, Version.parse(self.runtime.version()))

