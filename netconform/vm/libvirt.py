"""libvirtd started by the lab, inside the lab's sandbox, in its ``lan`` namespace.

No init system runs libvirtd here, and a system one would put its bridges,
firewall rules and domains in the root namespace.  So the lab starts its
own: in the sandbox's mount namespace, /etc/libvirt is a copy (with no
autostarted networks and a qemu.conf for a daemon without cgroups, user
switching or security drivers), and /var/lib, /var/cache and /var/log of
libvirt are fresh directories on the sandbox's tmpfs.  libvirtd runs in the
``lan`` namespace, so the guests' taps, the management network and its
dnsmasq all sit beside the underlay bridge, and all of it, guests included,
dies with the sandbox.
"""

from __future__ import annotations

import pwd
import shutil
import time

from ..sandbox import Sandbox

TOOLS = ("libvirtd", "virsh", "qemu-system-x86_64", "dnsmasq")
STATE = "/run/lab/libvirt"
QEMU_USER = "libvirt-qemu"
QEMU_CONF = """
# netconform: a daemon of the lab's own, without cgroups, user switching or labels
user = "root"
group = "root"
swtpm_user = "root"
swtpm_group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"""
# The underlay: the lab's own bridge, which libvirt plugs taps into and nothing more
# (no address, no DHCP, no forwarding).
UNDERLAY = "<network><name>lan</name><forward mode='bridge'/><bridge name='lan'/></network>"
PRIVATE = {"/etc/libvirt": "etc", "/var/lib/libvirt": "lib", "/var/cache/libvirt": "cache",
           "/var/log/libvirt": "log"}


def missing_tools() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    try:
        pwd.getpwnam(QEMU_USER)  # libvirtd resolves it before it reads qemu.conf
    except KeyError:
        missing.append(f"the {QEMU_USER} user (setup.sh makes it; or apt: libvirt-daemon-system)")
    return missing


def start(sandbox: Sandbox, netns: str = "lan", timeout: float = 30) -> None:
    """Start libvirtd in the sandbox and define the underlay network on the bridge ``lan``."""
    # The mount points exist wherever libvirt's packages are installed; made if not.
    script = ["set -e", *(f"mkdir -p {STATE}/{d} {path}" for path, d in PRIVATE.items()),
              f"cp -a /etc/libvirt/. {STATE}/etc/",
              f"rm -rf {STATE}/etc/qemu/networks/autostart {STATE}/etc/qemu/*.xml",
              *(f"mount --bind {STATE}/{d} {path}" for path, d in PRIVATE.items())]
    sandbox.run(["sh", "-c", "\n".join(script)]).check("preparing libvirt's private state")
    with open(sandbox.path("/etc/libvirt/qemu.conf"), "a") as conf:
        conf.write(QEMU_CONF)
    process = sandbox.spawn(["libvirtd"], netns, sandbox.path(f"{STATE}/libvirtd.log"))
    deadline = time.monotonic() + timeout
    while not virsh(sandbox, netns, "version").ok:
        if process.poll() is not None or time.monotonic() > deadline:
            log = sandbox.path(f"{STATE}/libvirtd.log").read_text(errors="replace")
            raise RuntimeError("libvirtd did not start: " + " / ".join(log.splitlines()[-5:]))
        time.sleep(0.2)
    sandbox.path(f"{STATE}/lan.xml").write_text(UNDERLAY)
    virsh(sandbox, netns, "net-define", f"{STATE}/lan.xml").check("defining the underlay network")
    virsh(sandbox, netns, "net-start", "lan").check("starting the underlay network")


def virsh(sandbox: Sandbox, netns: str, *args: str):
    return sandbox.run(["virsh", "-c", "qemu:///system", "-q", *args], netns=netns)
