"""Which accelerator guests get: KVM if it really boots a kernel, else QEMU's TCG.

``/dev/kvm`` existing proves little: on some machines it is a software-only
module that stock kernels hang or die in.  The probe boots the box's own
kernel under KVM with no disk and no NIC (``-nodefaults``, in a network
namespace of its own) and waits for it to give up on its root file system,
which a working KVM reaches in a few seconds.  The answer is cached per boot
of this machine (``/proc/sys/kernel/random/boot_id``).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ..image import cache_dir

PROBE_SECONDS = 30
REACHED = ("VFS: Unable to mount root", "Kernel panic", "No filesystem could mount root")


@dataclass(frozen=True)
class Accel:
    driver: str  # libvirt's domain type: "kvm" or "qemu" (TCG)
    notice: str  # why, for the run's header and the report

    @property
    def software(self) -> bool:
        return self.driver == "qemu"


def choose(kernel: Path) -> Accel:
    """KVM when a probe boot under it gets as far as mounting root, TCG otherwise."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    cached = cache_dir() / f"accel-{boot}.json"
    if cached.exists():
        return Accel(**json.loads(cached.read_text()))
    accel = _probe(kernel)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(asdict(accel)))
    return accel


def _probe(kernel: Path) -> Accel:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("qemu", "no usable /dev/kvm: guests run under QEMU's software emulation (TCG), "
                             "expect minutes per lab")
    if not kernel.exists():
        return Accel("kvm", f"KVM not probed (no kernel at {kernel}; build the box to probe it)")
    reached, last = boots(kernel, "kvm")
    if reached:
        return Accel("kvm", "KVM boots guests here")
    return Accel("qemu", f"/dev/kvm is present but a probe kernel did not boot under it ({last}): "
                         "guests run under QEMU's software emulation (TCG), expect minutes per lab")


def boots(kernel: Path, accel: str, seconds: float = PROBE_SECONDS) -> tuple[bool, str]:
    """Whether ``kernel`` under ``accel`` gets as far as looking for its root, and its last line."""
    argv = ["unshare", "--net", "qemu-system-x86_64", "-accel", accel, "-m", "256",
            *(["-cpu", "host"] if accel == "kvm" else []),
            "-nodefaults", "-nographic", "-serial", "stdio", "-no-reboot", "-kernel", str(kernel),
            "-append", "console=ttyS0 panic=-1"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds)
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
    last = (output.strip().splitlines() or ["no output"])[-1][:160]
    return any(mark in output for mark in REACHED), last
