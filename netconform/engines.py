"""Engine builds: the engine on PATH, or a Debian release's packages fetched into a cache.

Users run Docker 20.10, 26 and 28 and Podman 4.3 to 6.1; what they need
before an upgrade is what changes in their networking.  ``fetch`` gets a
release's engine (a runtime's ``Recipe``: Docker's dockerd, containerd, runc
and tini; Podman's podman, netavark, aardvark-dns, conmon, crun, nft and
the libraries they need) with apt as a download only, through a private
sources list and state directory per release, so the machine's apt
configuration and installed packages are never touched, then unpacks the
packages with ``dpkg-deb -x`` into ``~/.cache/netconform/engines/NAME/KEY``
where KEY is a digest of the package versions.  A ``bin/`` directory there
holds the tools a lab's engine finds first on its PATH.  A tool the release
built against a newer C library than this machine's is, for Docker,
replaced by the system's own (trixie's runc needs GLIBC_2.38 on Debian 12);
for Podman, whose own binaries cannot be swapped, a copy is relinked to the
release's own loader and libraries (``patchelf``: a loader wrapper breaks
Podman, which re-executes /proc/self/exe).  The manifest says which, for
the reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from .image import cache_dir

SYSTEM = "system"


@dataclass(frozen=True)
class Recipe:
    """What a runtime's build is made of, and how it is checked."""

    packages: tuple[str, ...]
    tools: dict[str, tuple[str, ...]]  # the tools its engine runs, and where Debian's packages put them
    version: tuple[str, ...]  # the tool and arguments whose output names the release's version
    relink: bool  # a tool built for a newer C library runs on the release's loader (else: the system's tool)


RECIPES = {
    "docker": Recipe(("docker.io", "containerd", "runc", "tini"),
                     {"dockerd": ("usr/sbin/dockerd",), "docker-proxy": ("usr/sbin/docker-proxy",),
                      "containerd": ("usr/bin/containerd",),
                      "containerd-shim-runc-v2": ("usr/bin/containerd-shim-runc-v2",),
                      "runc": ("usr/sbin/runc",), "docker-init": ("usr/bin/docker-init", "usr/bin/tini-static")},
                     ("dockerd", "--version"), relink=False),
    # With the libraries these depend on, as the release names them (``Apt.libraries``); libc6
    # brings the release's loader.
    "podman": Recipe(("podman", "netavark", "aardvark-dns", "conmon", "crun", "catatonit",
                      "golang-github-containers-common", "nftables"),
                     {"podman": ("usr/bin/podman",), "conmon": ("usr/bin/conmon",), "crun": ("usr/bin/crun",),
                      "netavark": ("usr/lib/podman/netavark", "usr/libexec/podman/netavark"),
                      "aardvark-dns": ("usr/lib/podman/aardvark-dns", "usr/libexec/podman/aardvark-dns"),
                      "rootlessport": ("usr/lib/podman/rootlessport", "usr/libexec/podman/rootlessport"),
                      "catatonit": ("usr/bin/catatonit", "usr/libexec/podman/catatonit"),
                      "nft": ("usr/sbin/nft",)},
                     ("podman", "--version"), relink=True),
}
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """``20.10.24+dfsg1`` or ``Docker version 28.5.2, build ..`` -> 20.10; unreadable -> 0.0."""
        found = re.search(r"(\d+)\.(\d+)", text)
        return cls(int(found.group(1)), int(found.group(2))) if found else cls(0, 0)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Feature:
    """Something an engine release started doing or offering, that schemes and checks depend on."""

    id: str
    since: Version
    summary: str
    reference: str


FEATURES = {f.id: f for f in (
    Feature("direct-routing-guard", Version(28, 0),
            "drops packets from outside the host addressed directly to a container "
            "(raw PREROUTING -d CONTAINER ! -i BRIDGE -j DROP)", "moby#48724, Docker 28.0 release notes"),
    Feature("allow-direct-routing", Version(28, 2),
            "daemon option --allow-direct-routing: no direct-routing guard", "moby#49832, Docker 28.2 release notes"),
)}


def offers(feature: str, version: Version) -> bool:
    return version >= FEATURES[feature].since


@dataclass(frozen=True)
class Release:
    """A Debian release's Docker engine, as ``--engine`` names it."""

    name: str  # docker-26.1
    suite: str  # the Debian suite that ships it
    distro: str  # for people: Debian 13
    version: str  # the engine version the suite ships, MAJOR.MINOR
    runtime: str = "docker"
    pin: str = ""  # a suite above ``suite`` whose version of a package wins where it has one (experimental)
    # A variant: another release's fetched build (``of``) run with netavark's other firewall driver
    # (``firewall``, set in containers.conf), so a report shows whether the driver changes behaviour.
    of: str = ""
    firewall: str = ""

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self.runtime]


RELEASES = {r.name: r for r in (
    Release("docker-20.10", "bookworm", "Debian 12", "20.10"),
    Release("docker-26.1", "trixie", "Debian 13", "26.1"),
    Release("docker-28.5", "sid", "Debian unstable", "28.5"),
    Release("podman-5.4", "trixie", "Debian 13", "5.4", "podman"),
    Release("podman-5.8", "sid", "Debian unstable", "5.8", "podman"),
    Release("podman-6.1", "sid", "Debian experimental", "6.1", "podman", pin="experimental"),
    Release("podman-5.8-iptables", "sid", "Debian unstable", "5.8", "podman", of="podman-5.8", firewall="iptables"),
)}
CHOICES = (SYSTEM, *RELEASES)
BUILDS = tuple(name for name, release in RELEASES.items() if not release.of)  # what --engine all runs


@dataclass(frozen=True)
class Substitute:
    """A release's tool that cannot run here, and the system's tool used instead."""

    tool: str
    used: str  # the system tool's path, or the relinked copy's
    reason: str  # why the release's own could not run as it is
    relinked: bool = False  # the release's own tool, on the release's loader and libraries

    def __str__(self) -> str:
        if self.relinked:
            return f"{self.tool} relinked to the release's own loader and libraries ({self.used}): {self.reason}"
        return f"system {self.tool} ({self.used}): the release's {self.reason}"


@dataclass(frozen=True)
class EngineBuild:
    """One engine build a lab's dockerd runs: the system's, or a fetched release."""

    name: str
    bindir: Path | None = None  # put first on dockerd's PATH; None: PATH as it is
    packages: tuple[tuple[str, str], ...] = ()  # (package, version) as fetched
    substitutes: tuple[Substitute, ...] = ()
    firewall: str = ""  # netavark's firewall driver, where a variant sets it; "": the build's default

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run with this build's tools first on PATH (dockerd finds containerd, the
        shim and runc there)."""
        if self.bindir is None:
            return argv
        return ["env", f"PATH={self.bindir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}", *argv]

    def daemon_flags(self) -> list[str]:
        """dockerd flags that pin this build's own helpers rather than whatever PATH holds."""
        if self.bindir is None:
            return []
        return ["--userland-proxy-path", str(self.bindir / "docker-proxy"),
                "--init-path", str(self.bindir / "docker-init")]

    def missing(self) -> str | None:
        release = RELEASES.get(self.name)
        if self.bindir is not None and not (self.bindir / (release.recipe.version[0] if release else "dockerd")).exists():
            return f"engine {self.name} is not fetched: run `netconform engines fetch {self.name}`"
        return None

    def describe(self) -> str:
        if self.bindir is None:
            return "the dockerd on PATH"
        versions = ", ".join(f"{p} {v}" for p, v in self.packages)
        subs = "; ".join(map(str, self.substitutes))
        release = RELEASES.get(self.name)
        origin = f"{release.distro} packages: {versions}" if release else f"the tools in {self.bindir}"
        chosen = f"; netavark's {self.firewall} firewall driver (containers.conf)" if self.firewall else ""
        return origin + chosen + (f"; {subs}" if subs else "")


def label(runtime: str, engine: str) -> str:
    """How lab ids name a runtime with an engine build: ``docker``, or ``docker-28.5``."""
    return runtime if engine == SYSTEM else engine


def root() -> Path:
    return cache_dir() / "engines"


def parse(value: str) -> list[str]:
    """``--engine`` value -> engine names, in the order given; ValueError names what is allowed."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if names == ["all"]:
        return list(BUILDS)
    unknown = [n for n in names if n not in CHOICES]
    if unknown or not names:
        raise ValueError(f"--engine: {', '.join(unknown) or repr(value)} is not an engine; allowed: "
                         f"{', '.join(CHOICES)} or all (every build as packaged: {', '.join(BUILDS)})")
    return list(dict.fromkeys(names))


def resolve(name: str) -> EngineBuild:
    """The engine build ``name`` stands for: the system's, or the last fetched build of a release."""
    if name == SYSTEM:
        return EngineBuild(SYSTEM)
    if RELEASES[name].of:
        return replace(resolve(RELEASES[name].of), name=name, firewall=RELEASES[name].firewall)
    current = root() / name / "current"
    manifest = current / "engine.json"
    if not manifest.exists():
        return EngineBuild(name, root() / name / "not-fetched" / "bin")
    data = json.loads(manifest.read_text())
    return EngineBuild(name, current.resolve() / "bin", tuple(map(tuple, data["packages"])),
                       tuple(Substitute(**s) for s in data["substitutes"]))


def fetch(name: str, log=print) -> EngineBuild:
    """Download and unpack a release's engine packages (cached by their versions)."""
    release = RELEASES[name]
    if release.of:  # a variant runs the build it is of
        fetch(release.of, log)
        return resolve(name)
    suites = (release.suite, release.pin) if release.pin else (release.suite,)
    apt = Apt(root() / "apt" / "+".join(suites), suites)
    try:
        apt.update()
    except RuntimeError as err:  # offline: a build fetched before still serves
        cached = resolve(name)
        if cached.missing():
            raise
        log(f"{name}: could not refresh the package lists ({err}); using the build fetched before")
        return cached
    versions = tuple(zip(release.recipe.packages, apt.candidates(release.recipe.packages, release.pin)))
    if release.recipe.relink:  # the build runs on its own libraries: fetch them too
        libraries = apt.libraries(versions)
        versions += tuple(zip(libraries, apt.candidates(libraries, release.pin)))
    key = hashlib.sha256(repr(versions).encode()).hexdigest()[:10]
    build = root() / name / f"{versions[0][1]}-{key}"
    if not (build / "engine.json").exists():
        log(f"{name}: fetching {', '.join(f'{p}={v}' for p, v in versions)} from Debian {'+'.join(suites)}")
        shutil.rmtree(build, ignore_errors=True)
        for deb in apt.download(versions, build / "debs"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(build / "root")], check=True)
        substitutes = _link_tools(build, release.recipe)
        (build / "engine.json").write_text(json.dumps(
            {"name": name, "packages": versions, "substitutes": [s.__dict__ for s in substitutes]}, indent=1))
        shutil.rmtree(build / "debs")
    current = root() / name / "current"
    current.unlink(missing_ok=True)
    current.symlink_to(build.name)
    engine = resolve(name)
    tool, *args = release.recipe.version
    said = subprocess.run([str(engine.bindir / tool), *args], capture_output=True, text=True)
    if release.version not in said.stdout:
        raise RuntimeError(f"{name}: {build} runs {(said.stdout + said.stderr).strip()!r}, "
                           f"not {release.runtime} {release.version}")
    return engine


def _link_tools(build: Path, recipe: Recipe) -> list[Substitute]:
    """``bin/`` with the release's tools; where one cannot run here, the system's (Docker) or a
    copy relinked to the release's own loader and libraries (Podman)."""
    bindir = build / "bin"
    bindir.mkdir()
    substitutes = []
    for tool, places in recipe.tools.items():
        own = next((build / "root" / p for p in places if (build / "root" / p).exists()),
                   build / "root" / places[0])
        problem = _cannot_run(own)
        if recipe.relink and own.exists() and _dynamic(own):
            # Every dynamic tool of such a build, not only those that fail: one that loads would
            # otherwise run on this machine's older libraries (nft on Debian 12's libnftables).
            _relink(build / "root", own, bindir / tool)
            substitutes.append(Substitute(tool, str(bindir / tool), problem or "runs on its release's libraries",
                                          relinked=True))
        elif problem is None:
            (bindir / tool).symlink_to(own)
        elif (system := shutil.which(tool)) is not None:
            (bindir / tool).symlink_to(system)
            substitutes.append(Substitute(tool, system, problem))
        else:
            raise RuntimeError(f"{own}: {problem}, and this machine has no {tool} to use instead")
    return substitutes


LOADER = "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"  # where Debian's libc6 puts it (13 and later)
LIBDIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")


def _dynamic(binary: Path) -> bool:
    return subprocess.run(["patchelf", "--print-interpreter", str(binary)], capture_output=True).returncode == 0


def _relink(tree: Path, own: Path, copy: Path) -> None:
    """A copy of ``own`` that runs on the release's loader and finds its libraries in ``tree``
    first (a forced RPATH, so libraries loaded by libraries resolve there too)."""
    loader = next((tree / p for p in (LOADER, "lib64/ld-linux-x86-64.so.2") if (tree / p).exists()), None)
    if loader is None:
        raise RuntimeError(f"{own} needs its release's C library, and the release's libc6 has no loader at {LOADER}")
    shutil.copy2(own, copy)
    done = subprocess.run(["patchelf", "--set-interpreter", str(loader), "--force-rpath", "--set-rpath",
                           ":".join(str(tree / d) for d in LIBDIRS), str(copy)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"patchelf could not relink {own}: {done.stderr.strip()}")


def _cannot_run(binary: Path) -> str | None:
    """Why ``binary`` cannot run on this machine (a missing library or symbol version), or None."""
    if not binary.exists():
        return "package has no such file"
    linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    missing = [line for line in (linked.stdout + linked.stderr).splitlines() if "not found" in line]
    if not missing:
        return None
    symbol = re.search(r"version `([^']+)' not found", missing[0])
    return f"needs {symbol.group(1) if symbol else missing[0].strip()}, which this machine lacks"


def _libraries_of(record: dict[str, str]) -> list[str]:
    """The library packages (lib*, zlib1g) a package record depends on, first alternatives."""
    names = [wanted.split("|")[0].strip().split(" ")[0].split(":")[0]
             for key, field in record.items() if key in ("Pre-Depends", "Depends") for wanted in field.split(",")]
    return [n for n in dict.fromkeys(names) if re.match(r"^(lib|zlib)", n)]


@dataclass(frozen=True)
class Apt:
    """apt-get with a private sources list, lists and cache: Debian suites, download only."""

    dir: Path
    suites: tuple[str, ...]

    @property
    def suite(self) -> str:
        return "+".join(self.suites)

    def _options(self) -> list[str]:
        # The package cache kept beside the lists (images often turn it off), so that each call
        # maps it instead of parsing every list again.
        return ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={self.dir}/parts",
                "-o", f"Dir::State::Lists={self.dir}/lists", "-o", f"Dir::Cache={self.dir}/cache",
                "-o", "Dir::Cache::pkgcache=pkgcache.bin", "-o", "Dir::Cache::srcpkgcache=srcpkgcache.bin",
                "-o", "Debug::NoLocking=1"]

    def update(self) -> None:
        for sub in ("parts", "lists/partial", "cache/archives/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for old in (self.dir / "parts").glob("*.sources"):
            old.unlink()
        (self.dir / "parts" / "debian.sources").write_text(
            f"Types: deb\nURIs: {MIRROR}\nSuites: {' '.join(self.suites)}\nComponents: main\nSigned-By: {KEYRING}\n")
        self._run("apt-get", "-qq", "update")

    def candidates(self, packages, pin: str = "") -> list[str]:
        """The version apt would take of each package, or the ``pin`` suite's where it has the
        package (apt takes experimental's only when asked): one apt-cache call for all (each call
        reads every package list of the suites, a second or two)."""
        chosen: dict[str, str] = {}
        if pin:
            for line in self._run("apt-cache", "madison", *packages).stdout.splitlines():
                fields = [f.strip() for f in line.split("|")]
                if len(fields) == 3 and f" {pin}/" in f" {fields[2]}":
                    chosen.setdefault(fields[0], fields[1])
        rest = [p for p in packages if p not in chosen]
        shown = {r["Package"]: r["Version"] for r in self._records(rest)} if rest else {}
        return [chosen.get(p) or shown[p] for p in packages]

    def libraries(self, versions) -> list[str]:
        """The library packages (lib*, zlib1g) the given (package, version)s depend on, directly
        or through each other, first alternatives, as the release names them."""
        records: dict[str, dict[str, str]] = {}  # a query ("podman=5.4.2", "libc6") -> its record
        pending = [f"{p}={v}" for p, v in versions]
        while pending:  # every record of the closure, one call per level of it
            found = self._records(pending)
            for query in pending:
                name, _, version = query.partition("=")
                records[query] = next(r for r in found if r["Package"] == name and version in ("", r["Version"]))
            pending = [n for q in pending for n in _libraries_of(records[q]) if n not in records]
            pending = list(dict.fromkeys(pending))
        found: list[str] = []  # then in the order a depth-first walk names them (the build's key)
        queue = [f"{p}={v}" for p, v in versions]
        while queue:
            for name in _libraries_of(records[queue.pop()]):
                if name not in found:
                    found.append(name)
                    queue.append(name)
        return found

    def _records(self, queries) -> list[dict[str, str]]:
        """apt-cache show's records of the queries (``name`` or ``name=version``), fields by name."""
        shown = self._run("apt-cache", "show", "--no-all-versions", *queries).stdout
        return [dict(re.findall(r"^([\w-]+): (.*)$", block, re.M)) for block in shown.split("\n\n") if block.strip()]

    def download(self, versions, into: Path) -> list[Path]:
        into.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", *self._options(), "-qq", "download", *(f"{p}={v}" for p, v in versions)],
                       cwd=into, check=True, capture_output=True, text=True)
        return sorted(into.glob("*.deb"))

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        done = subprocess.run([argv[0], *self._options(), *argv[1:]], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"`{' '.join(argv)}` for Debian {self.suite} failed: {done.stderr.strip()}")
        return done
