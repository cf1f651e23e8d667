"""The lab's container image, built locally (there is no registry here).

busybox-static (shell, ping, nc, httpd, nslookup, ip), iperf3 and
sockperf (when installed) with the libraries ``ldd`` names, and two scripts: ``/serve`` starts the whoami web
service on the ports a container serves, ``/www/cgi-bin/whoami`` answers
with the server's hostname and the peer address it saw.  The tarball is
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

RECIPE = 2  # bump when the layout below changes
# iperf3 for throughput; sockperf (optional) for TCP request/response latency.
MEASURING_TOOLS = ("iperf3", "sockperf")
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
    return [tool for tool in ("busybox", "iperf3", "ldd") if shutil.which(tool) is None]


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
    for path in binaries + scripts:
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
        for directory in ("bin", "usr", "usr/bin", "etc", "tmp", "www", "www/cgi-bin", "root"):
            _add(tar, directory, kind=tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        _add(tar, "bin/busybox", busybox.read_bytes(), mode=0o755)
        for applet in applets:
            if applet != "busybox":
                _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        for binary in binaries[1:]:
            _add(tar, str(binary).lstrip("/"), binary.read_bytes(), mode=0o755)
        _add(tar, "serve", (HERE / "serve").read_bytes(), mode=0o755)
        _add(tar, "www/cgi-bin/whoami", (HERE / "whoami").read_bytes(), mode=0o755)
        _add(tar, "www/index.html", b"netconform\n")
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", b"root:x:0:\n")


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", *, kind=tarfile.REGTYPE,
         mode: int = 0o644, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
