"""Lab nodes: hosts, the external client and containers, behind one exec().

As in pytest-testinfra, a backend is a few lines behind one ``run``
contract: ``exec(argv, timeout, input) -> Result``, one process per command
and no long-lived shells.  Hosts add what the runtime and schemes need
beyond that (``HostNode``): start a daemon, reach one of its unix sockets,
read and write files, and the name of the underlay NIC.  A host is a
namespace here (``NamespaceNode``) or a machine reached over SSH
(``SshNode``: VMs of the vagrant provider, hosts of an ssh inventory).
"""

from __future__ import annotations

import base64
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from .result import Result
from .sandbox import Sandbox

if TYPE_CHECKING:
    from .runtimes.base import ContainerHandle, ContainerState

Kind = Literal["host", "ext", "container"]


class Node(Protocol):
    name: str
    kind: Kind

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result: ...


class HostNode(Node, Protocol):
    address: str  # its underlay address
    nic: str  # its underlay interface
    workdir: str  # where the lab keeps daemons' state on it

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen: ...

    def socket(self, path: str, timeout: float = 30) -> Path: ...

    def read(self, path: str) -> str: ...

    def write(self, path: str, text: str) -> None: ...

    def install(self, local: Path) -> str:
        """Make a static tool of this machine runnable on the host; its path there."""
        ...


@dataclass
class NamespaceNode:
    """A host or ext: a network namespace inside the lab's sandbox."""

    name: str
    kind: Kind
    sandbox: Sandbox = field(repr=False)
    address: str  # its underlay address
    nic: str = "eth0"
    workdir: str = "/run/lab"  # the sandbox's own tmpfs
    netns: str | None = None  # a namespace path, where it is not the sandbox's /run/netns/NAME

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        return self.sandbox.run(argv, netns=self.netns or self.name, input=input, timeout=timeout)

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        """Start a daemon in this namespace; it dies with the sandbox at the latest."""
        return self.sandbox.spawn(argv, self.netns or self.name, self.sandbox.path(log))

    def socket(self, path: str, timeout: float = 30) -> Path:
        """A unix socket of this host, as the pytest process reaches it (once it exists)."""
        return _wait_for(self.sandbox.path(path), timeout)

    def read(self, path: str) -> str:
        return self.sandbox.path(path).read_text(errors="replace")

    def write(self, path: str, text: str) -> None:
        self.sandbox.path(path).parent.mkdir(parents=True, exist_ok=True)
        self.sandbox.path(path).write_text(text)

    def install(self, local: Path) -> str:
        return str(local)  # the sandbox sees this machine's files


@dataclass
class SshNode:
    """A machine reached over SSH, from inside the lab's sandbox (netns ``via``).

    One master connection per host (``ControlMaster``, set in ``config``)
    carries every command; commands run as root through ``sudo -n`` and are
    bounded by ``timeout`` on the far side too.  Unix sockets are forwarded
    into the sandbox's /run, so the Docker SDK talks to a remote engine as
    it does to a local one.
    """

    name: str
    kind: Kind
    sandbox: Sandbox = field(repr=False)
    address: str  # its underlay address
    nic: str
    config: str  # ssh_config inside the sandbox, with a Host entry for ``name``
    user: str  # the login user (sockets are handed to it for forwarding)
    via: str = "lan"  # the namespace (a sandbox one's name, or a path) that reaches its SSH address
    workdir: str = "/var/lib/netconform"
    installed: set[str] = field(default_factory=set, repr=False)

    def _ssh(self, remote: str, *options: str) -> list[str]:
        return ["ssh", "-F", self.config, *options, self.name, remote]

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        remote = f"sudo -n timeout -s KILL {int(timeout)} {shlex.join(argv)}"
        done = self.sandbox.run(self._ssh(remote), netns=self.via, input=input, timeout=timeout + 10)
        return Result(tuple(argv), done.rc, done.stdout, done.stderr, done.duration)

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        """Start a daemon in the foreground of an SSH session; its output goes to ``log`` there."""
        remote = f"sudo -n sh -c {shlex.quote(f'exec {shlex.join(argv)} >>{log} 2>&1')}"
        local = self.sandbox.path(f"/run/lab/ssh/{self.name}-{Path(log).name}")
        return self.sandbox.spawn(self._ssh(remote), self.via, local)

    def socket(self, path: str, timeout: float = 30) -> Path:
        """Forward the remote socket ``path`` into the sandbox once it exists there."""
        wait = f"i=0; while [ ! -S {path} ] && [ $i -lt {int(timeout * 10)} ]; do sleep 0.1; i=$((i+1)); done"
        self.exec(["sh", "-c", f"{wait}; chown {self.user} {path}"], timeout=timeout + 5).check(
            f"socket {path} on {self.name}")
        local = f"/run/lab/ssh/{self.name}-{Path(path).name}"
        self.sandbox.spawn(self._ssh("", "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:{path}"),
                           self.via, self.sandbox.path(f"{local}.log"))
        return _wait_for(self.sandbox.path(local), timeout)

    def read(self, path: str) -> str:
        return self.exec(["cat", path]).stdout

    def write(self, path: str, text: str) -> None:
        self.exec(["sh", "-c", f'mkdir -p "$(dirname {path})" && cat > {path}'], input=text).check(
            f"writing {path} on {self.name}")

    def install(self, local: Path) -> str:
        """Copy the tool into the lab's work directory, once per run (teardown removes it, with
        the directory); the prober's name carries its digest, so a changed one is copied anew."""
        remote = f"{self.workdir}/bin/{local.name}"
        if remote not in self.installed:
            self.exec(["sh", "-c", f"mkdir -p {self.workdir}/bin && base64 -d > {remote}.part && "
                                   f"chmod 755 {remote}.part && mv {remote}.part {remote}"],
                      timeout=120, input=base64.b64encode(local.read_bytes()).decode()).check(
                f"copying {local.name} to {self.name}")
            self.installed.add(remote)
        return remote


@dataclass
class ContainerNode:
    """A container, driven through its runtime's handle (``runtimes.base.ContainerHandle``)."""

    name: str
    host: str
    handle: ContainerHandle = field(repr=False)
    kind: Kind = "container"
    _state: ContainerState | None = field(default=None, repr=False)
    # Network name to address, for networks a scheme attached the container to outside its engine
    # (Weave Net's CNI plugin): the engine does not report them.
    attached: dict[str, str] = field(default_factory=dict)

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        if input is not None:
            raise NotImplementedError("container exec takes no input; pass data in argv")
        start = time.monotonic()
        # Engine APIs have no exec timeout; busybox's timeout enforces it inside.
        wrapped = ["timeout", "-s", "KILL", str(int(timeout)), *argv]
        rc, out, err = self.handle.exec(wrapped)
        return Result(tuple(argv), rc, _text(out), _text(err), time.monotonic() - start)

    def reload(self) -> None:
        self._state = self.handle.state()

    @property
    def pid(self) -> int:
        """The PID of the container's first process on its host, as the engine reports it now."""
        self.reload()
        return self._state.pid

    @property
    def id(self) -> str:
        """The engine's ID of the container."""
        if self._state is None:
            self.reload()
        return self._state.id

    @property
    def addresses(self) -> dict[str, str]:
        """Network name to IPv4 address, as the engine reported them at the last ``reload``, and
        those a scheme attached."""
        if self._state is None:
            self.reload()
        return {**self._state.addresses, **self.attached}


@dataclass(frozen=True)
class InStack:
    """A node's network stack driven with its host's tools (``Site.netns_exec`` for a container):
    for what measures the datapath rather than what an engine lets a container do, such as ICMP
    round trips from a container whose engine withholds NET_RAW (Podman)."""

    name: str
    run: Callable[[list[str], float], Result] = field(repr=False)

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        if input is not None:
            raise NotImplementedError("a stack's tools take no input")
        return self.run(argv, timeout)


def _wait_for(path: Path, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)
    return path


def _text(data: bytes | None) -> str:
    return data.decode(errors="replace") if data else ""
