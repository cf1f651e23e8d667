"""A dry run: what building a lab would do on its hosts, without touching them.

The same ``Lab.up`` runs, with a recording provider and runtime passed in:
the provider's hosts are stand-ins whose ``exec`` writes the command down
and succeeds, the runtime's engines are clients that write every change
down (``RecordingClient``), and the sandbox is one that starts nothing.
So the plan is what the real run does (the schemes' hooks, the engines'
command lines, every API call that creates something), not a description
that could drift from it.  Commands whose output a step reads (probes) get
an empty success.  Needs no root: nothing is created.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .lab import Lab
from .providers.netns import ext_routes
from .result import Result
from .topology import Topology


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

    def spawn(self, argv: list[str], log: str) -> PlannedProcess:
        self.steps.append(f"{self.name}$ {shlex.join(argv)} >>{log} 2>&1 &")
        return PlannedProcess()

    def socket(self, path: str, timeout: float = 30) -> Path:
        return Path(path)

    def install(self, local: Path) -> str:
        return str(local)  # as the netns provider runs it: in place

    def read(self, path: str) -> str:
        return ""

    def write(self, path: str, text: str) -> None:
        self.steps.append(f"{self.name}$ write {path}: {text.strip()}")


class PlannedProcess:
    """A daemon that was only written down."""

    def poll(self) -> int | None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def kill(self) -> None:
        pass


@dataclass
class PlanSandbox:
    """A sandbox that starts nothing (the dry run's hosts run nothing)."""

    run_id: str
    pid: int = 0

    def close(self) -> None:
        pass


@dataclass
class PlanProvider:
    """The chosen provider's description, with hosts that write down what they are asked."""

    real: object  # the provider the run would use: it describes the hosts
    steps: list[str] = field(repr=False)

    def __getattr__(self, name: str):  # name, local_kernel, workdir, describe, underlay_nic, ...
        return getattr(self.real, name)

    def up(self, topo: Topology, sandbox: PlanSandbox) -> dict[str, PlanNode]:
        self.steps.append(f"provider {self.real.name}: {self.real.describe(topo)}")
        self.steps += [f"ext$ ip route add {' '.join(route)}" for route in ext_routes(topo)]
        hosts = {h.name: PlanNode(h.name, "host", str(topo.underlay_address(h.name).ip),
                                  self.real.underlay_nic(h.name), self.steps, self.real.workdir)
                 for h in topo.hosts}
        return {**hosts, "ext": PlanNode("ext", "ext", str(topo.ext_address().ip), "eth0", self.steps, "/run/lab")}

    def down(self) -> None:
        if self.real.teardown:
            self.steps.append(f"teardown: {self.real.teardown}")


def plan(lab: Lab) -> list[str]:
    """The steps building ``lab`` takes on its hosts, in order (then tearing it down)."""
    steps: list[str] = []
    lab.provider = PlanProvider(lab.provider, steps)
    lab.runtime.record(steps)
    lab.start_sandbox = PlanSandbox
    with lab:
        steps.append("(the suites run here)")
    return steps
