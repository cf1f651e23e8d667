"""A snapshot of everything a lab must never change outside itself.

Links, addresses and routes (read with pyroute2), the iptables ruleset,
named network namespaces, mounts under /run and /etc, cgroup directories a
run could leave, files in /dev/shm (Podman's lock table), and lab daemons
still running.  Two snapshots of a clean
run are equal.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute

DAEMONS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2",
           "docker-proxy", "httpd", "iperf3", "ovs-vswitchd", "ovsdb-server",
           "libvirtd", "dnsmasq", "qemu-system-x86", "ssh", "vagrant", "ruby",
           "podman", "conmon", "aardvark-dns", "catatonit")


@dataclass(frozen=True)
class Snapshot:
    links: frozenset
    addresses: frozenset
    routes: frozenset
    iptables: tuple[str, ...]
    netns: tuple[str, ...]
    mounts: frozenset
    cgroups: frozenset
    shm: frozenset
    daemons: frozenset

    def diff(self, other: Snapshot) -> dict[str, tuple]:
        """Field name to (only before, only after) for every field that changed."""
        changed = {}
        for name in self.__dataclass_fields__:
            a, b = set(getattr(self, name)), set(getattr(other, name))
            if a != b:
                changed[name] = (sorted(map(str, a - b)), sorted(map(str, b - a)))
        return changed


def take() -> Snapshot:
    with IPRoute() as ipr:
        links = frozenset((l.get("ifname"), l.get("state"), l.get("address"), l.get("mtu"))
                          for l in ipr.get_links())
        addresses = frozenset((a.get("address"), a["prefixlen"], a["index"]) for a in ipr.get_addr())
        routes = frozenset((r.get("dst"), r["dst_len"], r.get("gateway"), r.get("oif"), r["table"])
                           for r in ipr.get_routes(table=0))
    save = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    rules = tuple(line for line in save.splitlines() if not line.startswith("#"))
    netns = tuple(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    mounts = frozenset(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                       if line.split()[4].startswith(("/run", "/etc")))
    # The run's own, and Podman's default parent (where its cgroupfs manager puts what is not
    # given a parent of ours).
    cgroups = frozenset(str(p) for pattern in ("*/netconform-*", "*/libpod_parent")
                        for p in Path("/sys/fs/cgroup").glob(pattern))
    shm = frozenset(p.name for p in Path("/dev/shm").iterdir())
    daemons = frozenset(f"{p.name}:{comm}" for p in Path("/proc").iterdir() if p.name.isdigit()
                        for comm in [_comm(p)] if comm in DAEMONS)
    return Snapshot(links, addresses, routes, rules, netns, mounts, cgroups, shm, daemons)


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""
