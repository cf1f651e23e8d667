"""Hosts the user already has, reached over SSH (``--provider ssh --inventory FILE``).

Nothing is created: the inventory (``inventory.py``) names the machines, how
to log in and which NIC is the underlay.  Before the lab touches a machine
its state is recorded (``ledger.snapshot``); at teardown the lab's daemons
are stopped and every difference is undone (``ledger.undo``), and what could
not be undone is reported.  The changes are also written to the lab's
sandbox (``/run/lab/changes/HOST``) while the lab is up.  ssh runs inside
the namespace the inventory names, like every other client of a lab.
"""

from __future__ import annotations

import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor

from ..inventory import Inventory, Machine
from ..ledger import State, changes, snapshot, undo
from ..nodes import HostNode, NamespaceNode, SshNode
from ..sandbox import Sandbox
from ..topology import Topology, TopologyError
from .netns import ext_routes
from .vagrant import SSH_REUSE

CONFIG = "/run/lab/ssh/config"


class SshProvider:
    name = "ssh"
    local_kernel = False  # the machines' own kernels

    def __init__(self, inventory: Inventory | None = None) -> None:
        self.inventory = inventory
        self.hosts: dict[str, SshNode] = {}
        self.before: dict[str, State] = {}
        self.ext: NamespaceNode | None = None
        self.ext_routes: list[list[str]] = []  # added to the user's ext namespace, removed in down()

    def missing(self) -> str | None:
        if shutil.which("ssh") is None:
            return "ssh provider needs ssh (apt: openssh-client)"
        if self.inventory is None:
            return "ssh provider needs --inventory FILE"
        return None

    def check(self, topo: Topology) -> None:
        """Every host of the topology must have a machine: say which are missing, before anything."""
        absent = [h.name for h in topo.hosts if self.inventory.machine(h.name) is None]
        if absent:
            raise TopologyError(self.inventory.file, tuple(
                (f"hosts.{name}", f"missing; topology {topo.name!r} needs it (its hosts: "
                                  f"{', '.join(h.name for h in topo.hosts)})") for name in absent))

    def up(self, topo: Topology, sandbox: Sandbox) -> dict[str, HostNode]:
        self.check(topo)
        sandbox.path("/run/lab/ssh").mkdir(parents=True, exist_ok=True)
        sandbox.path(CONFIG).write_text("".join(_entry(self.inventory.machine(h.name)) for h in topo.hosts)
                                        + SSH_REUSE)
        via = self.inventory.ssh_from if self.inventory.ssh_from != "host" else f"/proc/{os.getpid()}/ns/net"
        for host in topo.hosts:
            machine = self.inventory.machine(host.name)
            self.hosts[host.name] = SshNode(host.name, "host", sandbox, str(topo.underlay_address(host.name).ip),
                                            machine.underlay, CONFIG, machine.user, via=via)
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            states = list(pool.map(lambda n: (n.name, self._prepare(topo, n)), self.hosts.values()))
        self.before = dict(states)
        ext = NamespaceNode("ext", "ext", sandbox, str(topo.ext_address().ip), netns=self.inventory.ext_netns)
        self.ext, self.ext_routes = ext, ext_routes(topo)
        for route in self.ext_routes:
            ext.exec(["ip", "route", "replace", *route]).check("routing ext to the containers")
        return {**self.hosts, "ext": ext}

    def _prepare(self, topo: Topology, node: SshNode) -> State:
        """Check the machine is as the topology says, then record its state."""
        prefix = topo.underlay.prefixlen
        has = node.exec(["ip", "-4", "-o", "addr", "show", "dev", node.nic])
        if f" {node.address}/{prefix} " not in has.stdout + " ":
            raise TopologyError(self.inventory.file, ((
                f"hosts.{node.name}.underlay",
                f"{node.nic} on {node.name} does not carry {node.address}/{prefix} as the topology says "
                f"({has.stdout.strip() or has.stderr.strip() or 'no address'})"),))
        return snapshot(node)

    def changes(self) -> dict[str, list[str]]:
        """What the lab has changed on each machine so far."""
        return {name: changes(self.before[name], snapshot(node)) for name, node in self.hosts.items()
                if name in self.before}

    @staticmethod
    def wire_tap(lab, host: str) -> tuple[HostNode, str]:
        """Where to watch a host's underlay traffic: its own underlay NIC (the LAN is not ours)."""
        return lab.hosts[host], lab.hosts[host].nic

    # -- what a dry run shows (plan.py) ------------------------------------------------
    workdir = "/var/lib/netconform"
    fresh_hosts = False  # booted machines: their settings are their own, recorded as found
    hosts_end_with_sandbox = False  # machines that outlive the run: engines are stopped on them
    teardown = "stop the lab's daemons, then undo every recorded difference on each host"

    def describe(self, topo: Topology) -> str:
        machines = [self.inventory.machine(h.name) for h in topo.hosts]
        return ("ssh to " + ", ".join(f"{m.name} ({m.user}@{m.address}, underlay {m.underlay})" for m in machines)
                + "; check the underlay addresses; record each host's state")

    def underlay_nic(self, host: str) -> str:
        return self.inventory.machine(host).underlay

    def down(self) -> None:
        for route in self.ext_routes:
            self.ext.exec(["ip", "route", "del", *route])
        with ThreadPoolExecutor(max(1, len(self.before))) as pool:
            left = dict(pool.map(lambda n: (n, undo(self.hosts[n], self.before[n])), list(self.before)))
        for name, residue in left.items():
            if residue:
                warnings.warn(f"ssh provider could not undo on {name}: {'; '.join(residue)}", stacklevel=2)


def _entry(machine: Machine) -> str:
    return f"""Host {machine.name}
  HostName {machine.address}
  User {machine.user}
  Port {machine.port}
  IdentityFile {machine.key}
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking accept-new
  UserKnownHostsFile /run/lab/ssh/known_hosts
  LogLevel ERROR

"""
