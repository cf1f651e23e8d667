"""The fault catalogue: ways networks break in the field, as data, and how to inject them.

Each fault names a topology, the commands that break it (run on a host, on
the LAN switch, on ext, or in a container's network namespace), and the
check that must turn red with the words its message must hold.  The
plugin's ``--inject-fault NAME`` applies one to each lab of that topology
right after it is built; ``netconform faults`` (``faults_run.py``) runs the
whole suite once clean and once per fault and says which were caught.

Commands may name live values (``render``): ``{addr:c1}`` (c1's address on its network),
``{pid:c1}`` (its first process on the host), ``{cli:h1}`` (the runtime's CLI
aimed at h1's engine: docker or podman; ``{docker:h1}`` is the same); other
braces are the shell's.  A fault belongs to one runtime (``runtime``, docker
unless said), since what breaks is that engine's own machinery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .engines import RELEASES, SYSTEM, label
from .registry import RUNTIMES
from .shipped import shipped
from .topology import TopologyError, available
from .topology.build import Builder
from .topology.load import read_yaml
from .topology.model import meta

CATALOGUE = Path(__file__).with_name("faults.yaml")
SUITES = shipped("suites")


@dataclass(frozen=True)
class Step:
    """One command of an injection."""

    at: str = field(metadata=meta("Where it runs: a host's name, 'lan' (the underlay switch), 'ext', "
                                  "or 'netns:CONTAINER' (the container's network namespace, with the "
                                  "host's tools)."))
    run: str = field(metadata=meta("A shell command; {addr:NAME}, {pid:NAME} and {cli:HOST} (also "
                                   "{docker:HOST}) are filled in from the live lab."))


@dataclass(frozen=True)
class Fault:
    """One way the lab breaks, and what must notice."""

    name: str
    topology: str = field(metadata=meta("The shipped topology it breaks."))
    cause: str = field(metadata=meta("How this happens in the field, in one line."))
    inject: tuple[Step, ...] = field(metadata=meta("The commands that break the lab, in order."))
    check: str = field(metadata=meta("The suite's test that must turn red (a test function name)."))
    message: str = field(metadata=meta("Words the red check's message must contain."))
    runtime: str = field(default="docker", metadata=meta("The runtime whose labs it breaks (--runtime)."))
    engine: str = field(default=SYSTEM, metadata=meta("The runtime's build (--engine): system, or one "
                                                      "'netconform engines fetch' gets."))

    @property
    def lab(self) -> str:
        """The id of the lab it breaks (netns provider)."""
        return f"{self.topology}@netns-{label(self.runtime, self.engine)}"

    @property
    def on(self) -> str:
        """Its runtime and build, for people: docker, podman-5.8."""
        return label(self.runtime, self.engine)


@dataclass(frozen=True)
class Catalogue:
    faults: tuple[Fault, ...] = field(metadata=meta("Faults by name.", keyed=True))

    def get(self, name: str) -> Fault:
        return next(f for f in self.faults if f.name == name)


def checks() -> set[str]:
    """Names of the suite's tests, which a fault's ``check`` must be one of."""
    return {m for path in SUITES.glob("test_*.py") for m in re.findall(r"^def (test_\w+)", path.read_text(), re.M)}


def load(path: Path = CATALOGUE) -> Catalogue:
    """Read and validate a catalogue; TopologyError naming the file and key otherwise."""
    builder = Builder()
    catalogue = builder.build(Catalogue, read_yaml(path), "")
    if builder.problems:
        raise TopologyError(str(path), tuple(builder.problems))
    problems = []
    known, tests = available(), checks()
    for f in catalogue.faults:
        if f.topology not in known:
            problems.append((f"faults.{f.name}.topology", f"{f.topology!r} is not a shipped topology; "
                                                          f"allowed: {', '.join(known)}"))
        if f.runtime not in RUNTIMES:
            problems.append((f"faults.{f.name}.runtime", f"{f.runtime!r} is not a runtime; "
                                                         f"allowed: {', '.join(RUNTIMES)}"))
        if f.engine != SYSTEM and (f.engine not in RELEASES or RELEASES[f.engine].runtime != f.runtime):
            builds = [SYSTEM, *(r for r, release in RELEASES.items() if release.runtime == f.runtime)]
            problems.append((f"faults.{f.name}.engine", f"{f.engine!r} is not a build of {f.runtime}; "
                                                        f"allowed: {', '.join(builds)}"))
        if f.check not in tests:
            problems.append((f"faults.{f.name}.check", f"{f.check!r} is not a test of the suites; "
                                                       f"allowed: {', '.join(sorted(tests))}"))
        for i, step in enumerate(f.inject):
            if not (step.at in ("lan", "ext") or re.fullmatch(r"(netns:)?[a-z][a-z0-9-]*", step.at)):
                problems.append((f"faults.{f.name}.inject[{i}].at", f"{step.at!r} is not allowed; allowed: "
                                                                    "a host, lan, ext or netns:CONTAINER"))
    if problems:
        raise TopologyError(str(path), tuple(problems))
    return catalogue


def _address(lab, name: str) -> str:
    """The container's address on the network it is addressed on: the scheme's where it has one
    (Weave's), else its first engine network's."""
    node = lab.containers[name]
    node.reload()
    return node.addresses.get(lab.scheme.network) or next(iter(node.addresses.values()))


# The live values a command may name, as {KIND:NAME}.
LIVE = {"addr": _address,
        "pid": lambda lab, name: str(lab.containers[name].pid),
        "cli": lambda lab, name: lab.runtime.cli(name),
        "docker": lambda lab, name: lab.runtime.cli(name)}
_PLACEHOLDER = re.compile(r"\{(" + "|".join(LIVE) + r"):([a-z][a-z0-9-]*)\}")


def render(lab, command: str) -> str:
    """``command`` with each ``{addr:c1}``, ``{pid:c1}``, ``{cli:h1}`` filled in from the lab."""
    return _PLACEHOLDER.sub(lambda m: LIVE[m.group(1)](lab, m.group(2)), command)


def inject(lab, fault: Fault) -> None:
    """Break the lab as the fault says; a command that fails is an error naming it."""
    for step in fault.inject:
        command = render(lab, step.run)
        if step.at.startswith("netns:"):
            result = lab.netns_exec(step.at.removeprefix("netns:"), ["sh", "-c", command])
        elif step.at == "lan":
            result = lab.sandbox.run(["sh", "-c", command], netns="lan")
        else:
            result = lab.node(step.at).exec(["sh", "-c", command])
        result.check(f"fault {fault.name}: {step.at}")
