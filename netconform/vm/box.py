"""A vagrant-libvirt box built locally from Debian packages (no box catalogue here).

``netconform box`` runs debootstrap with the package list below into a
directory, makes an ext4 file system of it at 1 MiB into a raw disk with an
MBR and extlinux, converts that to qcow2 and packs ``box.img``,
``metadata.json`` and a ``Vagrantfile`` into ``netconform-debian.box``.
Everything is cached under ``~/.cache/netconform/box/DIGEST/`` where DIGEST
covers the package list, the suite and this recipe, so the box is rebuilt
only when one of them changes.  The guest runs Docker, Open vSwitch and the
measuring tools, but their services are disabled: the lab starts its own
daemons with the scheme's settings, as it does on the netns provider.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..image import cache_dir

RECIPE = 2  # bump when the steps below change
SUITE = "bookworm"
NAME = "netconform/debian12"
PACKAGES = (
    # boot, log in, be managed
    "linux-image-amd64", "systemd-sysv", "udev", "dbus", "openssh-server", "sudo", "kmod", "apparmor",
    # what the schemes and checks use on a host
    "iproute2", "iptables", "nftables", "docker.io", "openvswitch-switch", "ethtool", "tcpdump",
    "iputils-ping", "procps", "bridge-utils", "busybox-static",
    # measuring tools
    "iperf3",
)
DISABLED = ("docker.service", "docker.socket", "containerd.service", "openvswitch-switch.service",
            "ovs-vswitchd.service", "ovsdb-server.service", "apt-daily.timer",
            "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer")
DISK_GIB = 4
OFFSET = 1 << 20  # the root partition starts at 1 MiB
TOOLS = ("debootstrap", "mkfs.ext4", "extlinux", "qemu-img", "unshare", "mount")
MBR = Path("/usr/lib/EXTLINUX/mbr.bin")
INSECURE_KEY = "vagrant.pub"  # Vagrant's well-known key, as every public box carries it

# The guest's management NIC: DHCP from libvirt's network, but no default route or
# resolver from it, so nothing in a guest is routed towards the machine running it.
MGMT_NETWORK = """[Match]
Name=eth0

[Network]
DHCP=ipv4

[DHCPv4]
UseRoutes=false
UseDNS=false
"""
EXTLINUX = """DEFAULT linux
TIMEOUT 1
LABEL linux
  KERNEL /boot/{kernel}
  INITRD /boot/{initrd}
  APPEND root=/dev/vda1 rw console=ttyS0 net.ifnames=0 biosdevname=0 quiet
"""
BOX_VAGRANTFILE = """Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
"""


@dataclass(frozen=True)
class Box:
    path: Path  # the .box file
    digest: str

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def kernel(self) -> Path:
        """The guest kernel, kept beside the box for the KVM probe (vm/accel.py)."""
        return self.directory / "vmlinuz"


def provision_script() -> str:
    """What turns a public Debian 12 box into this one (for machines that can download boxes)."""
    return "\n".join([
        "set -e",
        "export DEBIAN_FRONTEND=noninteractive",
        "apt-get update -qq",
        f"apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)}",
        f"systemctl disable --now {' '.join(DISABLED)} 2>/dev/null || true",
        f"systemctl mask {' '.join(DISABLED)}",
        "printf 'openvswitch\\nvxlan\\nip_gre\\nip_vs\\nbr_netfilter\\noverlay\\n' "
        "> /etc/modules-load.d/netconform.conf",
        "systemctl restart systemd-modules-load",
        # The management NIC keeps its address but gives no default route: the lab routes via ext.
        "ip route del default dev eth0 2>/dev/null || true",
    ]) + "\n"


def mirror() -> str:
    """The Debian mirror: $NETCONFORM_MIRROR, else the first one apt on this machine uses."""
    if os.environ.get("NETCONFORM_MIRROR"):
        return os.environ["NETCONFORM_MIRROR"]
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        text = source.read_text(errors="replace") if source.is_file() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def digest() -> str:
    recipe = json.dumps([RECIPE, SUITE, sorted(PACKAGES), DISABLED, MGMT_NETWORK, EXTLINUX])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def cached() -> Box:
    """Where the box for the current recipe lives (it may not be built yet)."""
    key = digest()
    return Box(cache_dir() / "box" / key / "netconform-debian.box", key)


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None] + ([] if MBR.exists() else [str(MBR)])


def insecure_key() -> Path:
    """Vagrant's insecure public key, as shipped with the vagrant package."""
    found = sorted(Path("/usr/share/rubygems-integration/all/gems").glob(f"vagrant-*/keys/{INSECURE_KEY}"))
    found += sorted(Path("/opt/vagrant/embedded/gems").glob(f"**/keys/{INSECURE_KEY}"))
    if not found:
        raise FileNotFoundError("vagrant's keys/vagrant.pub was not found (apt: vagrant)")
    return found[0]


def build(force: bool = False, log=print) -> Box:
    """Return the cached box, building it first if the recipe changed (or ``force``)."""
    box = cached()
    if box.path.exists() and not force:
        return box
    if missing_tools():
        raise RuntimeError(f"building the box needs {', '.join(missing_tools())} "
                           "(apt: debootstrap, extlinux, qemu-utils, util-linux, e2fsprogs)")
    box.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=box.directory, prefix="build-") as work:
        work = Path(work)
        root = work / "root"
        steps = [("debootstrap", lambda: _debootstrap(root)),
                 ("configure", lambda: _configure(root, box)),
                 ("disk", lambda: _disk(root, work / "disk.raw")),
                 ("qcow2", lambda: _run(["qemu-img", "convert", "-O", "qcow2", str(work / "disk.raw"),
                                         str(work / "box.img")])),
                 ("pack", lambda: _pack(work, box.path))]
        for name, step in steps:
            start = time.monotonic()
            step()
            log(f"box: {name} {time.monotonic() - start:.1f} s")
    for old in box.directory.parent.iterdir():  # boxes of earlier recipes
        if old != box.directory:
            shutil.rmtree(old, ignore_errors=True)
    return box


def _run(argv: list[str], **kwargs) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:3])} ... exited {done.returncode}:\n{tail}")


def _debootstrap(root: Path) -> None:
    # A private mount namespace: debootstrap's /proc and /sys mounts in the target
    # cannot outlive it, even if it is interrupted.
    _run(["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase",
          f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror()],
         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _configure(root: Path, box: Box) -> None:
    (root / "etc/hostname").write_text("netconform\n")
    # Empty: each guest makes its own at first boot, and with it its own DHCP client id.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 netconform\n")
    (root / "etc/fstab").write_text("/dev/vda1 / ext4 errors=remount-ro 0 1\n")
    (root / "etc/systemd/network/10-mgmt.network").write_text(MGMT_NETWORK)
    (root / "etc/sudoers.d/vagrant").write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/sudoers.d/vagrant").chmod(0o440)
    chroot = ["chroot", str(root)]
    _run([*chroot, "useradd", "--create-home", "--shell", "/bin/bash", "vagrant"])
    ssh = root / "home/vagrant/.ssh"
    ssh.mkdir(mode=0o700)
    shutil.copy(insecure_key(), ssh / "authorized_keys")
    _run([*chroot, "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh"])
    _run(["systemctl", f"--root={root}", "enable", "systemd-networkd", "ssh"])
    _run(["systemctl", f"--root={root}", "mask", *DISABLED])
    # Modules the schemes load on demand; the lab's own daemons cannot modprobe in time.
    (root / "etc/modules-load.d/netconform.conf").write_text(
        "openvswitch\nvxlan\nip_gre\nip_vs\nbr_netfilter\noverlay\n")
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
    initrd = sorted((root / "boot").glob("initrd.img-*"))[-1]
    (root / "boot/extlinux").mkdir()
    (root / "boot/extlinux/extlinux.conf").write_text(EXTLINUX.format(kernel=kernel.name, initrd=initrd.name))
    shutil.copy(kernel, box.kernel)
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)


def _disk(root: Path, raw: Path) -> None:
    size = DISK_GIB << 30
    with open(raw, "wb") as disk:
        disk.truncate(size)
    _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), "-E", f"offset={OFFSET}",
          str(raw), f"{(size - OFFSET) >> 10}k"])
    _write_mbr(raw, (size - OFFSET) // 512)
    # extlinux installs into a mounted file system: mount it loop in a private namespace.
    _run(["unshare", "--mount", "--propagation", "private", "sh", "-ec",
          f'mnt=$(mktemp -d); mount -o loop,offset={OFFSET} "$1" "$mnt"; '
          f'extlinux --install "$mnt/boot/extlinux" >/dev/null; umount "$mnt"; rmdir "$mnt"',
          "sh", str(raw)])


def _write_mbr(raw: Path, sectors: int) -> None:
    """extlinux's boot code and one bootable Linux partition from 1 MiB to the end."""
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", OFFSET // 512, sectors)
    with open(raw, "r+b") as disk:
        disk.write(MBR.read_bytes()[:440].ljust(440, b"\0"))
        disk.seek(446)
        disk.write(entry + b"\0" * 48 + b"\x55\xaa")


def _pack(work: Path, path: Path) -> None:
    (work / "metadata.json").write_text(json.dumps(
        {"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB}) + "\n")
    (work / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    partial = path.with_suffix(".part")
    with tarfile.open(partial, "w") as tar:
        for name in ("metadata.json", "Vagrantfile", "box.img"):
            tar.add(work / name, arcname=name)
    partial.rename(path)
