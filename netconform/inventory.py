"""An inventory: machines the user already has, for ``--provider ssh --inventory FILE``.

    # Where ssh runs: a network namespace path (a lab's), or "host" for this
    # machine's own network.
    ssh_from: /run/netns/mylab
    hosts:                       # the topology's host names
      h1: {address: 192.168.121.10, user: vagrant, key: ~/.ssh/id_ed25519, underlay: eth1}
      h2: {address: 192.168.121.11, user: vagrant, key: ~/.ssh/id_ed25519, underlay: eth1, port: 22}
    ext: {netns: /run/netns/ext}  # the outside world: a namespace on the underlay

Each host must already carry its underlay address from the topology on the
``underlay`` interface; the provider checks that before changing anything.
Problems are reported like a topology file's: file, key, what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .topology import TopologyError

HOST_KEYS = {"address": str, "user": str, "key": str, "underlay": str, "port": int}
REQUIRED = ("address", "user", "key", "underlay")


@dataclass(frozen=True)
class Machine:
    name: str
    address: str  # where SSH reaches it
    user: str  # logs in with the key, runs the lab's commands through sudo -n
    key: str  # identity file
    underlay: str  # the NIC holding the topology's underlay address
    port: int = 22


@dataclass(frozen=True)
class Inventory:
    file: str
    ssh_from: str  # a network namespace path, or "host"
    machines: tuple[Machine, ...]
    ext_netns: str

    def machine(self, name: str) -> Machine | None:
        return next((m for m in self.machines if m.name == name), None)


def load(path: str | Path) -> Inventory:
    file = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise TopologyError(file, (("(file)", f"cannot be read: {err.strerror}"),)) from None
    except yaml.YAMLError as err:
        raise TopologyError(file, (("(file)", f"is not YAML: {err}"),)) from None
    problems: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        raise TopologyError(file, (("(file)", "must be a mapping with ssh_from, hosts and ext"),))
    for key in sorted(set(data) - {"ssh_from", "hosts", "ext"}):
        problems.append((key, "unknown key; allowed: ssh_from, hosts, ext"))
    ssh_from = data.get("ssh_from")
    if not isinstance(ssh_from, str) or not (ssh_from == "host" or ssh_from.startswith("/")):
        problems.append(("ssh_from", f"{ssh_from!r} is not allowed; allowed: a network namespace path "
                                     "(/run/netns/NAME, /proc/PID/ns/net) or 'host'"))
    machines = []
    hosts = data.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        problems.append(("hosts", "must map host names to {address, user, key, underlay[, port]}"))
        hosts = {}
    for name, entry in hosts.items():
        if not isinstance(entry, dict):
            problems.append((f"hosts.{name}", "must be a mapping with address, user, key, underlay[, port]"))
            continue
        for key in sorted(set(entry) - set(HOST_KEYS)):
            problems.append((f"hosts.{name}.{key}", f"unknown key; allowed: {', '.join(HOST_KEYS)}"))
        for key in REQUIRED:
            if key not in entry:
                problems.append((f"hosts.{name}.{key}", "is required"))
        for key, kind in HOST_KEYS.items():
            if key in entry and not isinstance(entry[key], kind):
                problems.append((f"hosts.{name}.{key}", f"{entry[key]!r} is not allowed; allowed: "
                                                        f"{'a number' if kind is int else 'text'}"))
        if not problems:
            fields = {k: entry[k] for k in HOST_KEYS if k in entry}
            fields["key"] = str(Path(fields["key"]).expanduser())
            machines.append(Machine(name, **fields))
    ext = data.get("ext")
    if not isinstance(ext, dict) or set(ext) != {"netns"} or not str(ext["netns"]).startswith("/"):
        problems.append(("ext", "must be {netns: PATH}: a network namespace on the underlay that plays "
                                "the outside world (serving whoami on port 80 and DNS)"))
    if problems:
        raise TopologyError(file, tuple(problems))
    return Inventory(file, ssh_from, tuple(machines), ext["netns"])
