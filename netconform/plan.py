"""A dry run: what building a lab would do on its hosts, without touching them.

The provider, scheme and runtime code that builds a lab runs as it would,
against stand-ins: hosts whose ``exec`` writes the command down and
succeeds, and engines whose every API call is written down.  So the plan is
what the real run does, not a description that could drift from it.
Commands whose output a step reads (probes) get an empty success.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .lab import Lab
from .providers.netns import ext_routes
from .result import Result
from .runtimes.docker import Engine, _creation_order


@dataclass
class PlanNode:
    """A host that writes down what it is asked to do."""

    name: str
    kind: str
    address: str
    nic: str
    steps: list[str] = field(repr=False)
    workdir: str

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        self.steps.append(f"{self.name}$ {shlex.join(argv)}")
        return Result(tuple(argv), 0, "", "", 0.0)

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        self.steps.append(f"{self.name}$ {shlex.join(argv)} >>{log} 2>&1 &")

    def socket(self, path: str, timeout: float = 30) -> Path:
        return Path(path)

    def read(self, path: str) -> str:
        return ""

    def write(self, path: str, text: str) -> None:
        self.steps.append(f"{self.name}$ write {path}: {text.strip()}")


@dataclass
class Recorder:
    """An engine client (or any part of one) that writes down every call."""

    label: str
    steps: list[str] = field(repr=False)

    def __getattr__(self, name: str) -> Recorder:
        return Recorder(f"{self.label}.{name}", self.steps)

    def __call__(self, *args, **kwargs) -> Recorder:
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        self.steps.append(f"{self.label}({', '.join(shown)})")
        return Recorder(f"{self.label}(...)", self.steps)

    def __getitem__(self, key) -> Recorder:
        return Recorder(f"{self.label}[{key!r}]", self.steps)

    def __repr__(self) -> str:  # a value read from the engine, as the plan shows it
        return f"<{self.label}>"


def plan(lab: Lab) -> list[str]:
    """The steps building ``lab`` takes on its hosts, in order."""
    topo, steps = lab.topology, []
    steps.append(f"provider {lab.provider_name}: {lab.provider.describe(topo)}")
    steps += [f"ext$ ip route add {' '.join(route)}" for route in ext_routes(topo)]
    for host in topo.hosts:
        lab.hosts[host.name] = PlanNode(host.name, "host", str(topo.underlay_address(host.name).ip),
                                        lab.provider.underlay_nic(host.name), steps, lab.provider.workdir)
    lab.hosts["ext"] = PlanNode("ext", "ext", str(topo.ext_address().ip), "eth0", steps, "/run/lab")
    lab.scheme.before_engines(lab)
    runtime = lab.runtime
    runtime.lab = lab
    for host in topo.hosts:
        root = f"{lab.hosts[host.name].workdir}/docker/{host.name}"
        lab.hosts[host.name].spawn(runtime.build.command(runtime.engine_argv(host.name, root)),
                                   f"{root}/dockerd.log")
        runtime.engines[host.name] = Engine(host.name, root, None, Recorder(f"{host.name} engine", steps))
    lab.scheme.after_engines(lab)
    for host in topo.hosts:
        for net in (n for n in topo.networks if n.host == host.name):
            steps.append(f"{host.name} engine: network create {net.name} --subnet {net.subnet}")
        for spec in _creation_order(topo.containers_on(host.name)):
            published = " ".join(f"-p {p.host_port}:{p.container_port}" for p in spec.publish)
            steps.append(f"{host.name} engine: run {spec.name} (mode {spec.mode}) {published}".rstrip())
    if lab.provider.teardown:
        steps.append(f"teardown: {lab.provider.teardown}")
    return steps
