"""The docker runtime: a real Docker engine per host, driven by the Docker SDK.

Each engine is a dockerd the lab starts on its host (``HostNode.spawn``),
with its own data-root, exec-root, socket and config under the host's
workdir and the scheme's address plan on its command line.  On the netns
provider that is inside the host's namespace (``nsenter --net=``, not ``ip
netns exec``, which remounts /sys and breaks dockerd's cgroups), with its
containers' cgroups under ``netconform-<run id>`` so the sandbox can remove
them even after ``kill -9``; on VMs it is over SSH.  Engines start in
parallel; the SDK reaches each socket through ``HostNode.socket`` (a path
under ``/proc/PID/root``, or a socket forwarded over SSH).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker
from docker.types import EndpointSpec, IPAMConfig, IPAMPool

from .. import image as probe_image
from ..engines import SYSTEM, EngineBuild, Version, label
from ..hostprofile import br_netfilter_loaded
from ..nodes import ContainerNode, HostNode
from ..result import CommandError, Result
from ..sandbox_init import CGROUP_PREFIX
from ..topology import Container
from .base import ContainerState, NetworkSpec, Refused, Task, creation_order

if TYPE_CHECKING:
    from ..schemes.base import Scheme
    from ..site import Site

TOOLS = ("dockerd", "containerd", "docker-init", "docker-proxy", "iptables")
START_TIMEOUT = 30
# dockerd options that change networking behaviour, for the reports (the rest is bookkeeping).
OPTIONS_OF_NOTE = ("--allow-direct-routing", "--icc", "--userland-proxy", "--mtu", "--bridge", "--fixed-cidr")


@dataclass
class Engine:
    """One host's dockerd and the client that talks to it."""

    host: str
    root: str  # its directory inside the sandbox
    process: object = field(repr=False)  # the nsenter or ssh Popen that runs dockerd
    client: docker.DockerClient | None = field(default=None, repr=False)
    socket: Path | None = None  # its API socket, as this process reaches it


@dataclass(frozen=True)
class DockerContainer:
    """A ``ContainerHandle`` over the SDK's container object (which stays in this module)."""

    container: object = field(repr=False)  # docker.models.containers.Container

    def exec(self, argv: list[str]) -> tuple[int, bytes | None, bytes | None]:
        rc, (out, err) = self.container.exec_run(argv, demux=True)
        return rc, out, err

    def state(self) -> ContainerState:
        self.container.reload()
        return _state(self.container.attrs)


def _state(attrs: dict) -> ContainerState:
    nets = attrs["NetworkSettings"]["Networks"] or {}
    return ContainerState(
        running=bool(attrs["State"].get("Running")), pid=attrs["State"].get("Pid") or 0,
        addresses={name: n["IPAddress"] for name, n in nets.items() if n.get("IPAddress")},
        endpoints={name: n.get("IPAddress") for name, n in nets.items() if n.get("EndpointID")},
        id=attrs.get("Id", ""))


@dataclass(frozen=True)
class SwarmService:
    """A ``Service`` over the SDK's swarm service."""

    service: object = field(repr=False)

    def tasks(self) -> list[Task]:
        return [Task(t["NodeID"][:12], t["Status"]["State"], t["Status"].get("Err", ""))
                for t in self.service.tasks()]

    def remove(self) -> None:
        self.service.remove()


@dataclass
class RecordingClient:
    """A dry run's engine client (or any part of one): every call that changes the engine is
    written down; reads (``get``, ``list``, ``reload`` ...) are answered empty, unrecorded."""

    label: str
    steps: list[str] = field(repr=False)

    READS = ("get", "list", "reload", "items", "version", "tasks", "exec_run", "close")

    def __getattr__(self, name: str) -> RecordingClient:
        return RecordingClient(f"{self.label}.{name}", self.steps)

    def __call__(self, *args, **kwargs) -> RecordingClient:
        if self.label.rsplit(".", 1)[-1] not in self.READS:
            shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
            self.steps.append(f"{self.label}({', '.join(shown)})")
        return RecordingClient(f"{self.label}(...)", self.steps)

    def __getitem__(self, key) -> RecordingClient:
        return RecordingClient(f"{self.label}[{key!r}]", self.steps)

    def __iter__(self):
        return iter(())

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:  # a value read from the engine, as the plan shows it
        return f"<{self.label}>"


@dataclass
class Timings:
    """Where bringing the runtime up spent its time (bench/provision.py)."""

    engines: float = 0.0
    image: float = 0.0
    containers: float = 0.0


class DockerRuntime:
    name = "docker"
    lacks: dict[str, str] = {
        "network-dns": "Docker has no DNS servers of a network's own: docker network create has no --dns "
                       "(only docker run --dns, per container)",
    }
    forward_filter = "DOCKER-USER"
    nat_dialect = "docker"
    engine_builds = True  # --engine picks the build
    host_prerequisites = br_netfilter_loaded(
        "dockerd's bridge driver loads br_netfilter when the host lacks it (modprobe -va bridge br_netfilter, "
        "moby libnetwork/drivers/bridge); the module's default is 1")

    def __init__(self, build: EngineBuild | None = None) -> None:
        self.build = build or EngineBuild(SYSTEM)
        self.engines: dict[str, Engine] = {}
        self.image: probe_image.Image | None = None
        self.timings = Timings()
        self.site: Site | None = None  # the hosts the engines run on (start_engines)
        self.scheme: Scheme | None = None  # whose address plan and network they carry
        self._version: str | None = None
        self.flags: frozenset[str] = frozenset()  # the dockerd options the engines run with (--icc=false)
        self.recording: list[str] | None = None  # a dry run's steps (record())

    @property
    def label(self) -> str:
        """How lab ids name this runtime: ``docker``, or ``docker-28.5`` for a fetched engine."""
        return label(self.name, self.build.name)

    def version(self) -> str:
        """The engine's version (every host runs the same build), known before any engine starts,
        since schemes pick daemon options by it: a fetched build's package version, or what the
        first host's dockerd says (this machine's, for a lab never built: one the runtime lacks a
        feature of)."""
        if self._version is None and self.build.packages:  # fetched: verified when it was
            self._version = dict(self.build.packages)["docker.io"]
        if self._version is None:
            node = self.site.first if self.site else None
            if node is None or self.site.local_kernel:  # hosts run this machine's dockerd: ask it here
                said = Result(("dockerd",), 0, subprocess.run(self.build.command(["dockerd", "--version"]),
                                                               capture_output=True, text=True).stdout, "", 0.0)
            else:
                said = node.exec(self.build.command(["dockerd", "--version"])).check("dockerd --version")
            found = re.search(r"version (\S+?),", said.stdout)
            self._version = found.group(1) if found else said.stdout.strip()
        return self._version

    def record(self, steps: list[str]) -> None:
        """Make this a dry run: engines are clients that write every change down into ``steps``,
        the image a stand-in, and hosts are served one at a time so the steps read in order."""
        self.recording = steps

    def _workers(self) -> int:
        return 1 if self.recording is not None else max(1, len(self.engines))

    def facts(self) -> dict[str, str]:
        """What reports say of the engine: the build's name (``system``, ``docker-28.5``), its version,
        where it came from and the networking options it ran with."""
        return {"name": self.build.name, "version": self.version(), "build": self.build.describe(),
                "options": " ".join(sorted(f for f in self.flags if f.split("=")[0] in OPTIONS_OF_NOTE))}

    def missing(self) -> str | None:
        """What this machine lacks: the engine build, and the tools the probe image is built from
        (the engine's own tools are probed on each host, ``missing_on``)."""
        if self.build.missing():
            return self.build.missing()
        tools = probe_image.missing_tools()
        if tools:
            return f"docker runtime needs {', '.join(tools)} here (apt: iperf3, busybox-static)"
        return None

    def missing_on(self, node: HostNode) -> str | None:
        """What a host lacks to run its engine, probed on the host itself (a VM, a machine over
        SSH, or a namespace of this one), with the engine build's tools first on its PATH."""
        probe = "; ".join(f"command -v {tool} >/dev/null || echo {tool}" for tool in TOOLS)
        absent = node.exec(self.build.command(["sh", "-c", probe])).stdout.split()
        if absent:
            return (f"docker runtime: host {node.name} lacks {', '.join(absent)} "
                    "(apt: docker.io, containerd, iptables)")
        return None

    # -- bringing up ---------------------------------------------------

    def start_engines(self, site: Site, scheme: Scheme) -> None:
        """Start every host's dockerd at once, with ``scheme``'s address plan, and wait until each answers."""
        start = time.monotonic()
        self.site, self.scheme = site, scheme
        self.version()
        self.image = probe_image.build() if self.recording is None else probe_image.Image(
            Path("netconform-probe.tar"), "dryrun000000")
        for host in site.topology.hosts:
            self.engines[host.name] = self._spawn(host.name)
        with ThreadPoolExecutor(self._workers()) as pool:
            list(pool.map(self._wait_ready, self.engines.values()))
        self.timings.engines = time.monotonic() - start

    def populate(self) -> dict[str, ContainerNode]:
        """Import the image, create networks and containers, on all hosts in parallel."""
        with ThreadPoolExecutor(self._workers()) as pool:
            per_host = list(pool.map(self._populate, self.engines))
        return {name: node for nodes in per_host for name, node in nodes.items()}

    def _spawn(self, host: str) -> Engine:
        node = self.site.hosts[host]
        root = f"{node.workdir}/docker/{host}"
        node.write(f"{root}/daemon.json", "{}\n")
        return Engine(host, root, node.spawn(self.build.command(self.engine_argv(host, root)),
                                             f"{root}/dockerd.log"))

    def engine_argv(self, host: str, root: str) -> list[str]:
        """The host's dockerd command line: its own state under ``root``, the scheme's address plan."""
        topo = self.site.topology
        argv = ["dockerd", "--config-file", f"{root}/daemon.json", "--data-root", f"{root}/data",
                "--exec-root", f"{root}/exec", "-H", f"unix://{root}/docker.sock",
                "--pidfile", f"{root}/docker.pid", *self.build.daemon_flags(),
                *self.scheme.engine_args(topo, host, Version.parse(self.version())),
                f"--icc={str(topo.host(host).icc).lower()}",
                f"--userland-proxy={str(topo.host(host).userland_proxy).lower()}", "--dns", str(topo.ext_address().ip),
                "--log-level", "warn"]
        if self.site.local_kernel:  # on this machine: cgroups the sandbox can remove
            argv += ["--cgroup-parent", f"/{CGROUP_PREFIX}{self.site.run_id}/{host}"]
        self.flags |= {word for word in argv if word.startswith("--")}
        return argv

    def _wait_ready(self, engine: Engine) -> None:
        if self.recording is not None:
            engine.client = RecordingClient(f"{engine.host} engine", self.recording)
            return
        node = self.site.hosts[engine.host]
        deadline = time.monotonic() + START_TIMEOUT
        try:
            socket = node.socket(f"{engine.root}/docker.sock", START_TIMEOUT)
        except (TimeoutError, CommandError):
            socket = None
        while socket and time.monotonic() < deadline and engine.process.poll() is None:
            try:
                engine.client = docker.DockerClient(base_url=f"unix://{socket}", version="auto",
                                                    timeout=60)
                engine.socket = socket
                return
            except docker.errors.DockerException:
                time.sleep(0.02)  # the socket is bound before the API answers
        log = node.read(f"{engine.root}/dockerd.log")
        raise RuntimeError(f"dockerd on {engine.host} did not start: " + " / ".join(log.splitlines()[-5:]))

    def _populate(self, host: str) -> dict[str, ContainerNode]:
        topo = self.site.topology
        client = self.engines[host].client
        start = time.monotonic()
        client.api.import_image_from_file(str(self.image.tarball), repository=probe_image.REPOSITORY,
                                          tag=self.image.digest[:12])
        self.timings.image = max(self.timings.image, time.monotonic() - start)
        start = time.monotonic()
        for net in topo.networks:
            if net.host == host:
                # The bridge is named after the network, so people can find it.  Docker isolates its
                # bridge networks always: a topology's ``isolate`` asks nothing more of it.
                self.create_network(host, NetworkSpec(net.name, "bridge", str(net.subnet), options=(
                    ("com.docker.network.bridge.name", net.name),)))
        nodes = {}
        for spec in creation_order(topo.containers_on(host)):
            nodes[spec.name] = self.run_container(host, spec)
        self.timings.containers = max(self.timings.containers, time.monotonic() - start)
        return nodes

    def run_container(self, host: str, spec: Container, name: str | None = None) -> ContainerNode:
        """Create and start one container as ``spec`` says; errors come from Docker as they are."""
        api = self.engines[host].client.api
        name = name or spec.name
        network_mode = {"network": spec.network, "container": f"container:{spec.container}",
                        "bridge": self.scheme.engine_network}.get(spec.mode, spec.mode)
        host_config = api.create_host_config(
            network_mode=network_mode, init=True,
            port_bindings={p.container_port: p.host_port for p in spec.publish} or None,
            links={link.source: link.alias for link in spec.links} or None)
        # Docker refuses a hostname where the UTS or network stack is shared.
        hostname = name if spec.mode not in ("host", "container") else None

        def create_and_start():
            created = api.create_container(
                self.image.tag, command=["/serve", *map(str, spec.ports)], name=name, hostname=hostname,
                ports=list(spec.ports) or None, host_config=host_config, detach=True)
            container = self.engines[host].client.containers.get(created["Id"])
            # A start that fails leaves the container as the engine left it (suites check what
            # the engine itself cleaned up); the lab's teardown removes it.
            container.start()
            return container

        try:
            try:
                container = create_and_start()
            except docker.errors.APIError as err:
                if not _attachment_timed_out(err):
                    raise
                api.remove_container(name, force=True)  # only a new container gets the attachment
                container = create_and_start()
        except docker.errors.APIError as err:
            raise Refused(str(err.explanation or err)) from err
        node = ContainerNode(name, host, DockerContainer(container))
        node.reload()
        if spec.mode in ("bridge", "network"):
            self.scheme.after_container(self.site, node)
        return node

    def create_network(self, host: str, spec: NetworkSpec) -> None:
        pool = IPAMPool(subnet=spec.subnet, iprange=spec.ip_range, gateway=spec.gateway)
        self.engines[host].client.networks.create(spec.name, driver=spec.driver, options=dict(spec.options),
                                                  ipam=IPAMConfig(pool_configs=[pool]),
                                                  attachable=spec.attachable or None)

    def set_network_dns(self, host: str, network: str, add: tuple[str, ...], drop: tuple[str, ...]) -> None:
        raise Refused(self.lacks["network-dns"])  # never asked: such labs are skipped (lacks)

    def form_cluster(self, manager: str, addresses: dict[str, str]) -> None:
        """A swarm: ``manager`` initialises it, every other host of ``addresses`` joins."""
        first = self.engines[manager].client
        first.swarm.init(advertise_addr=addresses[manager], listen_addr=f"{addresses[manager]}:2377")
        token = first.swarm.attrs["JoinTokens"]["Worker"]
        for host, own in addresses.items():
            if host != manager:
                self.engines[host].client.swarm.join(remote_addrs=[f"{addresses[manager]}:2377"], join_token=token,
                                                     advertise_addr=own, listen_addr=f"{own}:2377")

    def stop(self, node: ContainerNode) -> None:
        self._container(node.host, node.name).stop(timeout=0)

    def start(self, node: ContainerNode) -> None:
        self._container(node.host, node.name).start()
        node.reload()

    def remove(self, host: str, name: str) -> None:
        for found in self.engines[host].client.containers.list(all=True, filters={"name": f"^{name}$"}):
            found.remove(force=True)

    def connect(self, node: ContainerNode, network: str) -> None:
        self.engines[node.host].client.networks.get(network).connect(node.name)

    def disconnect(self, node: ContainerNode, network: str) -> None:
        self.engines[node.host].client.networks.get(network).disconnect(node.name)

    def states(self, host: str, name: str) -> list[ContainerState]:
        """Every container the engine holds under exactly ``name`` (none, or one)."""
        found = self.engines[host].client.containers.list(all=True, filters={"name": f"^{name}$"})
        return [_state(c.attrs) for c in found]

    def service(self, host: str, name: str, published: int, target: int) -> SwarmService:
        """A swarm service of the probe image serving ``target``, published on every host's ``published``."""
        return SwarmService(self.engines[host].client.services.create(
            self.image.tag, command=["/serve", str(target)], name=name,
            endpoint_spec=EndpointSpec(ports={published: target})))

    def api_endpoint(self, host: str) -> str:
        return f"unix://{self.engines[host].root}/docker.sock"

    def cli(self, host: str) -> str:
        """The docker command that talks to ``host``'s engine, from inside the lab's sandbox."""
        return f"docker -H {self.api_endpoint(host)}"

    def state_dir(self, host: str) -> str:
        """The engine's exec-root on its host (its network namespaces are under netns/)."""
        return f"{self.engines[host].root}/exec"

    def enter_command(self, node: ContainerNode) -> str:
        """A shell in the container, for people, from the root namespace (``--keep-lab``)."""
        return f"docker -H unix://{self.engines[node.host].socket} exec -it {node.name} sh"

    def _container(self, host: str, name: str):
        return self.engines[host].client.containers.get(name)

    # -- tearing down --------------------------------------------------

    def down(self) -> None:
        """Remove containers, then stop each engine; the sandbox takes the rest."""
        with ThreadPoolExecutor(self._workers()) as pool:
            list(pool.map(self._stop, self.engines.values()))

    def _stop(self, engine: Engine) -> None:
        if engine.client is not None:
            try:
                for container in engine.client.containers.list(all=True):
                    container.remove(force=True)
            except docker.errors.DockerException:
                pass  # the engine may already be gone; the sandbox still cleans up
            engine.client.close()
        pidfile = f"{engine.root}/docker.pid"
        self.site.hosts[engine.host].exec(["sh", "-c", f"[ ! -f {pidfile} ] || kill -TERM $(cat {pidfile})"])
        try:
            engine.process.wait(15)
        except Exception:
            engine.process.kill()


def _attachment_timed_out(err: docker.errors.APIError) -> bool:
    """Whether attaching to a swarm network ran past the manager's deadline (worth one more try).

    Attaching to a swarm-scoped (overlay) network asks the manager for an
    address under a fixed deadline; on slow hosts (VMs under software
    emulation) the first attachment can take longer (measured here: about
    18 s on two TCG guests), and Docker then drops the attachment.  A new
    container, made the same way, gets it.  Any other error is Docker's answer.
    """
    return "attaching to network failed" in str(err) and "deadline exceeded" in str(err)
