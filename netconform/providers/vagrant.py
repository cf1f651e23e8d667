"""Hosts as VMs: vagrant-libvirt guests on the lab's underlay, driven over SSH.

Steps, each inside the lab's sandbox: the underlay bridge and ext (as on the
netns provider), libvirtd (``vm/libvirt.py``), the box added to vagrant's
store once per build, a Vagrantfile generated from the topology
(``vm/vagrantfile.py``), ``vagrant up`` (guests boot in parallel), then each
guest's underlay address and default route (towards ext) set over SSH.  Down
is ``vagrant destroy -f``; if that never runs (``kill -9``), the guests die
with the sandbox, which holds libvirtd, QEMU and every file they made.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor

from ..image import cache_dir
from ..nodes import HostNode, SshNode
from ..result import Result
from ..sandbox import Sandbox
from ..topology import Topology
from ..vm import accel, box, libvirt
from ..vm.vagrantfile import Guest, render
from .netns import NetnsProvider, build_underlay, start_ext

PROJECT = "/run/lab/vagrant"
NIC = "eth1"  # the guest's underlay NIC (eth0 is the management network)
UP_TIMEOUT = 1800
# One SSH connection per guest, reused by every command, kept until the sandbox goes.
SSH_REUSE = """
Host *
  ControlMaster auto
  ControlPath /run/lab/ssh/%h.sock
  ControlPersist yes
  ServerAliveInterval 15
"""


class VagrantProvider:
    name = "vagrant"
    local_kernel = False  # guests run the box's kernel, with every module

    def __init__(self, box: str | None = None) -> None:
        self.sandbox: Sandbox | None = None
        self.notice = ""
        self.box = box  # a box already in vagrant's store (a public Debian 12 one), or ours

    def missing(self) -> str | None:
        """Why this provider cannot run here (a skip reason), or None."""
        tools = [t for t in ("vagrant", "ssh") if shutil.which(t) is None] + libvirt.missing_tools()
        if tools:
            return (f"vagrant provider needs {', '.join(tools)} (apt: vagrant, vagrant-libvirt, "
                    "libvirt-daemon-system, qemu-system-x86, dnsmasq-base, openssh-client)")
        if not plugin_installed():
            return "vagrant provider needs the vagrant-libvirt plugin (apt: vagrant-libvirt)"
        if self.box is None and not box.cached().path.exists():
            return "no box for the vagrant provider yet: build it with `netconform box` (about 2 minutes)"
        if os.geteuid() != 0:
            return "vagrant provider needs root (libvirtd and the lab's namespaces)"
        return None

    def up(self, topo: Topology, sandbox: Sandbox) -> dict[str, HostNode]:
        self.sandbox = sandbox
        build_underlay(topo, sandbox, [])
        ext = start_ext(topo, sandbox)
        built = box.cached()
        chosen = accel.choose(built.kernel)
        if chosen.software:
            warnings.warn(chosen.notice, stacklevel=2)
        self.notice = chosen.notice
        libvirt.start(sandbox)
        sandbox.path(PROJECT).mkdir(parents=True)
        if self.box is None:
            self._add_box(built)
            guest = Guest(box.NAME, driver=chosen.driver)
        else:  # a public box gets what ours has from the provisioning script
            guest = Guest(self.box, driver=chosen.driver, provision=box.provision_script())
        sandbox.path(f"{PROJECT}/Vagrantfile").write_text(render(topo, guest))
        self.vagrant("up", timeout=UP_TIMEOUT).check("vagrant up")
        config = self.vagrant("ssh-config").check("vagrant ssh-config").stdout + SSH_REUSE
        sandbox.path("/run/lab/ssh").mkdir(parents=True)
        sandbox.path(f"{PROJECT}/ssh_config").write_text(config)
        hosts = {h.name: SshNode(h.name, "host", sandbox, str(topo.underlay_address(h.name).ip), NIC,
                                 f"{PROJECT}/ssh_config", "vagrant") for h in topo.hosts}
        with ThreadPoolExecutor(len(hosts)) as pool:
            list(pool.map(lambda node: self._underlay(topo, node), hosts.values()))
        return {**hosts, "ext": ext}

    wire_tap = staticmethod(NetnsProvider.wire_tap)  # the guests' taps are ports of the same LAN bridge

    # -- what a dry run shows (plan.py) ------------------------------------------------
    workdir = "/var/lib/netconform"
    fresh_hosts = False  # booted machines: their settings are their own, recorded as found
    hosts_end_with_sandbox = False  # guests' engines are stopped before the VMs go
    teardown: str | None = None  # the guests go with the sandbox's libvirtd

    def describe(self, topo: Topology) -> str:
        return (f"vagrant up {', '.join(h.name for h in topo.hosts)} (libvirt, in the lab's namespace), "
                "then the underlay address on eth1")

    def underlay_nic(self, host: str) -> str:
        return "eth1"  # eth0 is vagrant's management network

    def down(self) -> None:
        if self.sandbox is not None and self.sandbox.path(f"{PROJECT}/Vagrantfile").exists():
            self.vagrant("destroy", "-f", timeout=300)

    def vagrant(self, *args: str, timeout: float = 300) -> Result:
        """Run vagrant on the lab's project, inside the sandbox, in the namespace of its networks."""
        env = [f"VAGRANT_HOME={cache_dir() / 'vagrant.d'}", "VAGRANT_CHECKPOINT_DISABLE=1",
               "VAGRANT_BOX_UPDATE_CHECK_DISABLE=1", "VAGRANT_DEFAULT_PROVIDER=libvirt",
               "VAGRANT_NO_COLOR=1"]
        return self.sandbox.run(["env", "-C", PROJECT, *env, "vagrant", *args], netns="lan", timeout=timeout)

    def _add_box(self, built: box.Box) -> None:
        """Put the box in vagrant's store once per build (its digest is kept beside it)."""
        marker = cache_dir() / "vagrant.d" / "netconform-box.digest"
        marker.parent.mkdir(parents=True, exist_ok=True)
        with open(marker.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # labs on pytest-xdist workers add it once
            if marker.exists() and marker.read_text() == built.digest:
                return
            self.vagrant("box", "add", "--force", "--name", box.NAME, str(built.path)).check("vagrant box add")
            marker.write_text(built.digest)

    @staticmethod
    def _underlay(topo: Topology, node: SshNode) -> None:
        """The guest's place on the underlay: its address, default route via ext, its name."""
        prefix = topo.underlay.prefixlen
        node.exec(["sh", "-c", "\n".join([
            "set -e",
            f"hostname {node.name}",
            f"echo '127.0.1.1 {node.name}' >> /etc/hosts",
            f"ip link set {NIC} up",
            f"ip addr add {node.address}/{prefix} dev {NIC}",
            f"ip route replace default via {topo.ext_address().ip} dev {NIC}"])]).check(
                f"underlay address on {node.name}")


def plugin_installed() -> bool:
    listed = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True,
                            env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"})
    return "vagrant-libvirt" in listed.stdout
