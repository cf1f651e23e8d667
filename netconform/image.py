"""The lab's container image, built locally (there is no registry here).

busybox-static (shell, ping, nc, httpd, nslookup, ip), iperf3 and
with the libraries ``ldd`` names, ``/prober``
(``image/prober.c``, compiled static with this machine's C compiler, also
run as it is by hosts that share this machine's file system), which runs a
node's whole list of probes from one process and serves the whoami answer
(the server's hostname and the peer address it saw), and ``/serve``, which
starts that service on the ports a container serves.  The tarball is
cached under ``~/.cache/netconform`` by a digest of everything in it, so it
is built once per change of its inputs, then imported into each engine.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

RECIPE = 5  # bump when the layout below changes
# iperf3 for throughput (TCP request/response latency is the prober's own rr).
MEASURING_TOOLS = ("iperf3",)
HERE = Path(__file__).parent / "image"
REPOSITORY = "netconform/probe"


@dataclass(frozen=True)
class Image:
    tarball: Path
    digest: str

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.digest[:12]}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "netconform"


def missing_tools() -> list[str]:
    return [tool for tool in ("busybox", "iperf3", "ldd", "cc") if shutil.which(tool) is None]


IN_IMAGE = "/prober"


def prober_on(node) -> str:
    """Where ``node`` runs the prober: the image's in a container, this machine's build copied
    once to a host (``HostNode.install``), so every node runs the same one."""
    return IN_IMAGE if node.kind == "container" else node.install(prober())


def prober() -> Path:
    """The prober, compiled once per change of its source or of the compiler."""
    source = HERE / "prober.c"
    compiler = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(source.read_bytes() + compiler.encode()).hexdigest()[:16]
    binary = cache_dir() / f"prober-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(f".{os.getpid()}.part")
        done = subprocess.run(["cc", "-O2", "-static", "-o", str(partial), str(source)],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"cc could not build {source}: {done.stderr.strip()}")
        partial.rename(binary)  # atomic: parallel workers may race here
    return binary


def _binaries() -> list[Path]:
    """Busybox, the measuring tools and the shared libraries they need, by real path."""
    tools = [Path(shutil.which(t)) for t in MEASURING_TOOLS if shutil.which(t)]
    libs: list[str] = []
    for tool in tools:
        found = re.findall(r"(/\S+) \(0x", subprocess.run(["ldd", str(tool)], capture_output=True,
                                                           text=True, check=True).stdout)
        libs += [lib for lib in found if lib not in libs]
    return [Path(shutil.which("busybox")), *tools, *map(Path, libs)]


def build() -> Image:
    """Return the cached image tarball, building it if its inputs changed."""
    binaries = _binaries()
    scripts = sorted(HERE.iterdir())
    digest = hashlib.sha256(f"recipe {RECIPE}".encode())
    for path in [*binaries, *scripts, prober()]:
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    image = Image(cache_dir() / f"probe-{digest.hexdigest()[:16]}.tar", digest.hexdigest())
    if not image.tarball.exists():
        image.tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = image.tarball.with_suffix(f".{os.getpid()}.part")
        _write(partial, binaries)
        partial.rename(image.tarball)  # atomic: parallel workers may race here
    return image


def _write(path: Path, binaries: list[Path]) -> None:
    busybox = binaries[0]
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        for directory in ("bin", "usr", "usr/bin", "etc", "tmp", "root"):
            _add(tar, directory, kind=tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        _add(tar, "bin/busybox", busybox.read_bytes(), mode=0o755)
        for applet in applets:
            if applet != "busybox":
                _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        for binary in binaries[1:]:
            _add(tar, str(binary).lstrip("/"), binary.read_bytes(), mode=0o755)
        _add(tar, "serve", (HERE / "serve").read_bytes(), mode=0o755)
        _add(tar, IN_IMAGE.lstrip("/"), prober().read_bytes(), mode=0o755)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", b"root:x:0:\n")


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", *, kind=tarfile.REGTYPE,
         mode: int = 0o644, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
