"""The podman runtime: rootful Podman (netavark, aardvark-dns) with its own state per host.

Podman has no daemon: every request is one ``podman`` command run on the
host (``HostNode.exec``), each with the host's own storage, run root, temp
dir and network config dir on its command line, cgroupfs (no systemd in a
lab) under the run's cgroup prefix, and file events.  The default network
("podman") is written from the scheme's ``BridgePlan`` before the first
command, as dockerd takes --bip: same bridge name, subnet, gateway, address
pool and MTU, so schemes plug into it as they do into docker0.

Netavark keeps aardvark-dns's state in a fixed directory
(``/run/containers/networks``) and Podman keeps locks under ``/run/libpod``.
Hosts of the netns provider share this machine's file system, so each host
gets a mount namespace of its own (held by a sleeping process of the lab's,
entered with ``nsenter --mount``) with private tmpfs there: one host's aardvark-dns and
networks never see another's, as on separate machines.

Containers are driven through ``podman exec`` (the prober runs inside the
container with the capabilities Podman gives it, as Docker's runs with
Docker's): a check never enters a container's namespace from the host to
do what the engine would not let it do.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import image as probe_image
from ..engines import RELEASES, SYSTEM, EngineBuild, label
from ..nodes import ContainerNode, HostNode
from ..result import Result
from ..sandbox_init import CGROUP_PREFIX
from ..topology import Container
from .base import ContainerState, NetworkSpec, Refused, Unavailable, creation_order

if TYPE_CHECKING:
    from ..schemes.base import BridgePlan, Scheme
    from ..site import Site

DEFAULT_NETWORK = "podman"  # Podman's name for its default bridge network (Docker's "bridge")
TOOLS = ("podman", "/usr/lib/podman/netavark", "/usr/lib/podman/aardvark-dns", "catatonit", "iptables")
PACKAGES = ("podman", "netavark", "aardvark-dns", "catatonit")
READY_TIMEOUT = 30
# Fixed paths Podman and netavark keep state in, each host's own: /dev/shm holds libpod_lock, the
# machine-wide table of container locks (2048), which a lab torn down without "podman rm" would
# otherwise leave taken until every podman on the machine fails to create a container.
PRIVATE_RUN = ("/run/containers", "/run/libpod", "/dev/shm")
LACKS = {
    "link": "Podman has no --link (podman run: unknown flag: --link); names come from a network "
            "with DNS instead",
    "no-icc": "Podman has no --icc=false (an engine-wide option of dockerd's default bridge)",
    "scheme:overlay": "Podman has no swarm, so no overlay network across hosts",
    "scheme:weave-plugin": "Podman runs no Docker network plugins (netavark's plugins have an API of "
                           "their own, and Weave ships none for it), so Weave's weavemesh driver cannot serve it",
    "isolate:strict": "Podman before 5 has no strict network isolation (podman network create -o "
                      "isolate=strict: 4.3.1 refuses it, 'strconv.ParseBool: parsing \"strict\"'; 5.4.2 has it)",
    "network-dns": "Podman before 5 has no DNS servers of a network's own (4.3.1: no podman network create "
                   "--dns, no podman network update; 5.4.2 has both)",
}
# What only older builds lack: feature -> the first version that has it.
HAS_SINCE = {"isolate:strict": (5, 0), "network-dns": (5, 0)}


@dataclass(frozen=True)
class PodmanContainer:
    """A ``ContainerHandle``: ``podman exec`` and ``podman inspect`` on the container's host."""

    host: HostNode = field(repr=False)
    podman: tuple[str, ...] = field(repr=False)
    name: str = ""

    def exec(self, argv: list[str]) -> tuple[int, bytes | None, bytes | None]:
        # ContainerNode.exec bounds the command with busybox timeout inside; this bound only
        # catches podman itself hanging.
        done = self.host.exec([*self.podman, "exec", self.name, *argv], timeout=3600)
        return done.rc, done.stdout.encode(), done.stderr.encode()

    def state(self) -> ContainerState:
        found = _inspect(self.host, self.podman, self.name)
        if found is None:
            raise Refused(f"podman: no container {self.name}")
        return found


def _inspect(host: HostNode, podman: tuple[str, ...], name: str) -> ContainerState | None:
    done = host.exec([*podman, "container", "inspect", name])
    if done.rc != 0:
        return None
    attrs = json.loads(done.stdout)[0]
    nets = attrs["NetworkSettings"].get("Networks") or {}
    # Podman names its default network "podman"; the rest of netconform calls it by the scheme's
    # name ("bridge"), as Docker does.
    named = {("bridge" if name == DEFAULT_NETWORK else name): n.get("IPAddress") for name, n in nets.items()}
    running = bool(attrs["State"].get("Running"))
    return ContainerState(running=running, pid=attrs["State"].get("Pid") or 0,
                          addresses={n: a for n, a in named.items() if a},
                          endpoints={n: a for n, a in named.items() if a and running}, id=attrs.get("Id", ""))


def containers_conf(bindir, cgroup2: bool, firewall: str = "") -> str:
    """What a fetched build's podman reads after its release's own containers.conf
    (``CONTAINERS_CONF_OVERRIDE``): its helpers and seccomp profile from the cache, not this
    machine's; on the cgroup v2 hierarchy of a hybrid host no pids limit (no controller for it);
    netavark's firewall driver where a variant chooses one."""
    tree = bindir.parent / "root"
    limits = "pids_limit = 0\n" if cgroup2 else ""
    driver = f'firewall_driver = "{firewall}"\n' if firewall else ""
    return f"""[containers]
seccomp_profile = "{tree}/usr/share/containers/seccomp.json"
init_path = "{bindir}/catatonit"
{limits}
[network]
network_backend = "netavark"
{driver}
[engine]
conmon_path = ["{bindir}/conmon"]
helper_binaries_dir = ["{bindir}"]
runtime = "crun"

[engine.runtimes]
crun = ["{bindir}/crun"]
"""


def default_network(plan: BridgePlan) -> dict:
    """Podman's default network definition (``podman.json`` in the network config dir) for a
    scheme's bridge plan: what dockerd's --bip, --bridge, --fixed-cidr and --mtu say."""
    pool = plan.pool
    definition = {
        "name": DEFAULT_NETWORK,
        "id": hashlib.sha256(f"netconform {plan}".encode()).hexdigest(),
        "driver": "bridge", "network_interface": plan.bridge,
        "subnets": [{"subnet": str(plan.network), "gateway": str(plan.gateway.ip),
                     "lease_range": {"start_ip": str(pool.network_address + 1),
                                     "end_ip": str(pool.broadcast_address - 1)}}],
        "ipv6_enabled": False, "internal": False, "dns_enabled": False,
        "ipam_options": {"driver": "host-local"},
    }
    if plan.mtu != 1500:
        definition["options"] = {"mtu": str(plan.mtu)}
    return definition


class PodmanRuntime:
    name = "podman"
    lacks = LACKS
    forward_filter = None  # netavark 1.4 leaves FORWARD's policy as it was (ACCEPT in a fresh host)
    engine_builds = True  # --engine picks the build: the system's, or a Debian release's (engines.py)
    host_prerequisites = ()  # netavark loads no br_netfilter and sets no bridge-nf-call-* (measured here)
    flags: frozenset[str] = frozenset()

    def __init__(self, build: EngineBuild | None = None) -> None:
        if build is not None and build.name != SYSTEM and RELEASES[build.name].runtime != self.name:
            raise ValueError(f"--engine {build.name} is a {RELEASES[build.name].runtime} build, not podman's")
        self.build = build or EngineBuild(SYSTEM)
        self.site: Site | None = None
        self.scheme: Scheme | None = None
        self.image: probe_image.Image | None = None
        self.roots: dict[str, str] = {}  # host -> its Podman state directory
        self.holders: dict[str, int] = {}  # host -> the PID holding its mount namespace
        self._version: str | None = None
        self._driver: str | None = None
        self.recording: list[str] | None = None
        # What this build lacks (the class's ``lacks``: what any build may lack, as skips declare it).
        self.lacks = {feature: why for feature, why in LACKS.items()
                      if feature not in HAS_SINCE or self._release() < HAS_SINCE[feature]}

    # -- what it is ----------------------------------------------------

    @property
    def label(self) -> str:
        """How lab ids name this runtime: ``podman``, or ``podman-5.4`` for a fetched build."""
        return label(self.name, self.build.name)

    @property
    def fetched(self) -> bool:
        return self.build.bindir is not None

    def version(self) -> str:
        if self._version is None and self.build.packages:  # fetched: verified when it was
            self._version = dict(self.build.packages)["podman"]
        if self._version is None:
            said = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout
            self._version = said.split()[-1] if said.strip() else "unknown"
        return self._version

    def facts(self) -> dict[str, str]:
        if self.fetched:
            build = self.build.describe()
        else:
            packages = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *PACKAGES],
                                      capture_output=True, text=True).stdout.split("\n")
            build = "Debian packages: " + ", ".join(p for p in packages if p)
        cgroups = (", cgroup v2 mounted in each host's own mount namespace (Podman 6 refuses v1; this "
                   "machine is hybrid), so no resource limits (pids_limit 0)" if self.cgroup2_only else "")
        return {"name": self.build.name if self.fetched else "podman", "version": self.version(), "build": build,
                "options": f"rootful, network backend netavark ({self.firewall_driver} firewall driver, "
                           f"{'set in containers.conf' if self.build.firewall else 'its default'}), "
                           "cgroupfs, default capabilities "
                           f"(no NET_RAW: the prober's ICMP uses a datagram socket){cgroups}"}

    @property
    def firewall_driver(self) -> str:
        """The firewall driver netavark uses: its own default (``netavark version``:
        default_fw_driver, nftables from netavark 1.10 on as Debian builds it); Debian 12's 1.4
        has only iptables; a variant's choice (``EngineBuild.firewall``) where it makes one."""
        if self._driver is None and self.build.firewall:
            self._driver = self.build.firewall
        if self._driver is None:
            said = subprocess.run(self.build.command([str(self.build.bindir / "netavark"), "version"]),
                                  capture_output=True, text=True).stdout if self.fetched else ""
            try:
                self._driver = json.loads(said).get("default_fw_driver", "iptables") if said.strip() else "iptables"
            except ValueError:
                self._driver = "iptables"
        return self._driver

    @property
    def nat_dialect(self) -> str:
        return "netavark-nftables" if self.firewall_driver == "nftables" else "netavark"

    def _release(self) -> tuple[int, int]:
        """MAJOR.MINOR of this build (0.0 where unknown)."""
        parts = re.findall(r"\d+", self.version())[:2]
        return (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)

    @property
    def cgroup2_only(self) -> bool:
        """Podman 6 runs only on cgroup v2 ("Cgroups v1 not supported")."""
        return self._release() >= (6, 0)

    def missing(self) -> str | None:
        if self.build.missing():
            return self.build.missing()
        absent = [tool for tool in TOOLS if not self.fetched and shutil.which(tool) is None]
        if absent:
            return f"podman runtime needs {', '.join(absent)} here (apt: {' '.join(PACKAGES)})"
        tools = probe_image.missing_tools()
        if tools:
            return f"podman runtime needs {', '.join(tools)} here (apt: iperf3, busybox-static)"
        return None

    def missing_on(self, node: HostNode) -> str | None:
        if self.fetched:  # the build's tools, from this machine's cache (netns hosts only)
            return None
        probe = "; ".join(f"command -v {tool} >/dev/null || echo {tool}" for tool in TOOLS)
        absent = node.exec(["sh", "-c", probe]).stdout.split()
        if absent:
            return f"podman runtime: host {node.name} lacks {', '.join(absent)} (apt: {' '.join(PACKAGES)})"
        return None

    def record(self, steps: list[str]) -> None:
        self.recording = steps

    # -- one host's podman ---------------------------------------------

    def podman(self, host: str) -> tuple[str, ...]:
        """The podman command for ``host``: its own state, in its own mount namespace."""
        root = self.roots[host]
        enter = ("nsenter", f"--mount=/proc/{self.holders[host]}/ns/mnt", "--") if host in self.holders else ()
        # A fetched build: its podman, its helpers (conmon, crun, netavark, aardvark-dns, catatonit)
        # named in a containers.conf of the host's, its nft first on PATH (netavark runs it).
        # The release's own containers.conf (its defaults: default_sysctls, capabilities ...) as
        # its package installs it, then ours on top for the paths of the build's helpers.
        build = (("env", f"CONTAINERS_CONF={self.build.bindir.parent}/root/usr/share/containers/containers.conf",
                  f"CONTAINERS_CONF_OVERRIDE={root}/containers.conf", "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
                  *self.build.command([str(self.build.bindir / "podman")])) if self.fetched else ("podman",))
        return (*enter, *build, "--root", f"{root}/storage", "--runroot", f"{root}/run",
                "--tmpdir", f"{root}/tmp", "--network-config-dir", f"{root}/networks",
                "--network-backend", "netavark", "--cgroup-manager", "cgroupfs", "--events-backend", "file")

    def _run(self, host: str, *argv: str, what: str) -> Result:
        if self.recording is not None:
            self.recording.append(f"{host}: {shlex.join([*self.podman(host), *argv])}")
            return Result(argv, 0, "", "", 0.0)
        done = self.site.hosts[host].exec([*self.podman(host), *argv], timeout=120)
        if done.rc != 0:
            raise Refused(done.stderr.strip() or f"podman {what} failed (exit {done.rc})")
        return done

    def _workers(self) -> int:
        return 1 if self.recording is not None else max(1, len(self.roots))

    # -- bringing up ---------------------------------------------------

    def start_engines(self, site: Site, scheme: Scheme) -> None:
        """Give each host its Podman state and default network; nothing runs until a container does."""
        if not site.local_kernel:
            raise Unavailable("podman runtime: only on hosts that share this machine's files (the netns "
                              "provider): the probe image is imported from this machine's cache")
        self.site, self.scheme = site, scheme
        self.image = probe_image.build() if self.recording is None else probe_image.Image(
            probe_image.cache_dir() / "netconform-probe.tar", "dryrun000000")
        for host in site.topology.hosts:
            self.roots[host.name] = f"{site.hosts[host.name].workdir}/podman/{host.name}"
        with ThreadPoolExecutor(self._workers()) as pool:
            list(pool.map(self._prepare, self.roots))

    def _prepare(self, host: str) -> None:
        root, node = self.roots[host], self.site.hosts[host]
        plan = self.scheme.bridge_plan(self.site.topology, host)
        script = ["set -e", f"mkdir -p {root}/networks"]
        if self.recording is None:
            self._hold_mount_namespace(host)
        if not plan.made_by_scheme and self.scheme.plugs_into_engine_bridge:
            # As dockerd makes docker0 when it starts, so that the scheme can plug into it before
            # any container exists.  Otherwise netavark makes it with the first container, as on a
            # user's host: netavark 1.17 and later adopt a bridge they did not make without
            # enabling forwarding (measured here; 1.14 enables it either way).
            script += [f"ip link add name {plan.bridge} type bridge",
                       f"ip addr add {plan.gateway} dev {plan.bridge}", f"ip link set {plan.bridge} up"]
        network = json.dumps(default_network(plan), indent=1)
        if self.recording is not None:
            self.recording += [f"{host}: " + "; ".join(script[1:]),
                               f"{host}: {root}/networks/{DEFAULT_NETWORK}.json = {network}"]
        else:
            node.exec(["sh", "-c", "\n".join(script)]).check(f"podman state on {host}")
            node.write(f"{root}/networks/{DEFAULT_NETWORK}.json", network + "\n")
            if self.fetched:
                node.write(f"{root}/containers.conf",
                           containers_conf(self.build.bindir, self.cgroup2_only, self.build.firewall))
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self._run(host, "info", "--format", "{{.Host.NetworkBackend}}", what="info")
                return
            except Refused:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _hold_mount_namespace(self, host: str) -> None:
        """Start the process that holds ``host``'s mount namespace (private tmpfs on Podman's fixed
        run directories) and note its PID, by which podman commands enter it."""
        root, node = self.roots[host], self.site.hosts[host]
        mounts = "; ".join(f"mkdir -p {d} && mount -t tmpfs podman-{host} {d}" for d in PRIVATE_RUN)
        if self.fetched:
            # Podman 5 with crun refuses this machine's hybrid cgroups while the v2 mount carries a
            # controller (hugetlb): only this host's mount namespace loses that mount.
            mounts += "; if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi"
            if self.cgroup2_only:  # the one v2 hierarchy over the v1 ones, in this namespace only; the
                # sandbox removes the run's cgroups in it too (sandbox_init.remove_cgroups)
                mounts += "; mount -t cgroup2 none /sys/fs/cgroup"
        node.exec(["mkdir", "-p", root]).check(f"mkdir {root}")
        node.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    f"set -e; {mounts}; echo $$ > {root}/holder.pid.part; mv {root}/holder.pid.part "
                    f"{root}/holder.pid; exec sleep 2147483647"], f"{root}/holder.log")
        deadline = time.monotonic() + READY_TIMEOUT
        while not (said := node.exec(["cat", f"{root}/holder.pid"]).stdout.strip()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"podman on {host}: no mount namespace: {node.read(f'{root}/holder.log')}")
            time.sleep(0.01)
        self.holders[host] = int(said)

    def populate(self) -> dict[str, ContainerNode]:
        with ThreadPoolExecutor(self._workers()) as pool:
            per_host = list(pool.map(self._populate, self.roots))
        return {name: node for nodes in per_host for name, node in nodes.items()}

    def _populate(self, host: str) -> dict[str, ContainerNode]:
        topo = self.site.topology
        self._run(host, "import", str(self.image.tarball), self.image.tag, what="import")
        for net in topo.networks:
            if net.host == host:
                # Podman 4.3 cannot name the bridge (no --interface-name): netavark picks podmanN.
                self.create_network(host, NetworkSpec(net.name, "bridge", str(net.subnet), isolate=net.isolate,
                                                      dns=tuple(map(str, net.dns))))
        return {spec.name: self.run_container(host, spec) for spec in creation_order(topo.containers_on(host))}

    def run_container(self, host: str, spec: Container, name: str | None = None) -> ContainerNode:
        """``podman run`` one container as ``spec`` says; a refusal is Podman's own words."""
        name = name or spec.name
        if spec.links:
            raise Refused(LACKS["link"])
        network = {"network": spec.network, "container": f"container:{spec.container}",
                   "bridge": self._bridge_network()}.get(spec.mode, spec.mode)
        argv = ["run", "-d", "--init", "--name", name, "--network", network, *self.cgroup_parent(host)]
        if spec.mode not in ("host", "container"):  # as the docker runtime: the stack's own name
            argv += ["--hostname", name]
        for pub in spec.publish:
            argv += ["-p", f"{pub.host_port}:{pub.container_port}/{pub.proto}"]
        self._run(host, *argv, self.image.tag, "/serve", *map(str, spec.ports), what="run")
        node = ContainerNode(name, host, self.handle(host, name))
        if self.recording is None:
            node.reload()
        if spec.mode in ("bridge", "network"):
            self.scheme.after_container(self.site, node)
        return node

    def cgroup_parent(self, host: str) -> list[str]:
        """Where a container of ``host`` and its conmon go: under the run's cgroup, which the
        sandbox removes (without it, Podman's cgroupfs manager uses /libpod_parent of the machine)."""
        return ["--cgroup-parent", f"/{CGROUP_PREFIX}{self.site.run_id}/{host}"]

    def _bridge_network(self) -> str:
        """The network of mode-bridge containers: Podman's default, or the scheme's own."""
        return DEFAULT_NETWORK if self.scheme.engine_network == "bridge" else self.scheme.engine_network

    def handle(self, host: str, name: str) -> PodmanContainer:
        return PodmanContainer(self.site.hosts[host], self.podman(host), name)

    def create_network(self, host: str, spec: NetworkSpec) -> None:
        argv = ["network", "create", "--driver", spec.driver, "--subnet", spec.subnet]
        if spec.ip_range:
            argv += ["--ip-range", spec.ip_range]
        if spec.gateway:
            argv += ["--gateway", spec.gateway]
        for key, value in spec.options:
            argv += ["-o", f"{key}={value}"]
        if spec.isolate != "default":
            argv += ["-o", f"isolate={spec.isolate}"]
        for server in spec.dns:
            argv += ["--dns", server]
        self._run(host, *argv, spec.name, what="network create")

    def set_network_dns(self, host: str, network: str, add: tuple[str, ...], drop: tuple[str, ...]) -> None:
        argv = [*(a for server in add for a in ("--dns-add", server)),
                *(a for server in drop for a in ("--dns-drop", server))]
        self._run(host, "network", "update", *argv, network, what="network update")

    def form_cluster(self, manager: str, addresses: dict[str, str]) -> None:
        raise Refused(LACKS["scheme:overlay"])  # never asked: such labs are skipped (lacks)

    def api_endpoint(self, host: str) -> str:
        raise Refused(LACKS["scheme:weave-plugin"])  # never asked: such labs are skipped (lacks)

    def service(self, host: str, name: str, published: int, target: int):
        raise Refused(LACKS["scheme:overlay"])

    def stop(self, node: ContainerNode) -> None:
        self._run(node.host, "stop", "-t", "0", node.name, what="stop")

    def start(self, node: ContainerNode) -> None:
        self._run(node.host, "start", node.name, what="start")
        node.reload()

    def remove(self, host: str, name: str) -> None:
        # -t 0: the probe image's PID 1 would otherwise be given 10 s to stop.
        self._run(host, "rm", "--force", "--ignore", "-t", "0", name, what="rm")

    def connect(self, node: ContainerNode, network: str) -> None:
        self._run(node.host, "network", "connect", network, node.name, what="network connect")
        node.reload()

    def disconnect(self, node: ContainerNode, network: str) -> None:
        self._run(node.host, "network", "disconnect", network, node.name, what="network disconnect")
        node.reload()

    def states(self, host: str, name: str) -> list[ContainerState]:
        found = _inspect(self.site.hosts[host], self.podman(host), name)
        return [found] if found is not None else []

    def cli(self, host: str) -> str:
        return shlex.join(self.podman(host))

    def state_dir(self, host: str) -> str:
        return f"{self.roots[host]}/run"

    def enter_command(self, node: ContainerNode) -> str:
        return f"(on {node.host}) {self.cli(node.host)} exec -it {node.name} sh"

    # -- tearing down --------------------------------------------------

    def down(self) -> None:
        """Remove every container (those joined to another first); the sandbox takes the rest."""
        with ThreadPoolExecutor(self._workers()) as pool:
            list(pool.map(self._down, self.roots))

    def _down(self, host: str) -> None:
        # Podman refuses to remove a container that others joined (container mode) while they
        # exist: the first pass removes those, the second their targets.
        for _ in range(2):
            self.site.hosts[host].exec([*self.podman(host), "rm", "--all", "--force", "-t", "0"])
