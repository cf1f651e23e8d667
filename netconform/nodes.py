"""Lab nodes: hosts, the external client and containers, behind one exec().

As in pytest-testinfra, a backend is a few lines behind one ``run``
contract: ``exec(argv, timeout, input) -> Result``, one process per command
and no long-lived shells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .result import Result
from .sandbox import Sandbox

Kind = Literal["host", "ext", "container"]


class Node(Protocol):
    name: str
    kind: Kind

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result: ...


@dataclass
class NamespaceNode:
    """A host or ext: a network namespace inside the lab's sandbox."""

    name: str
    kind: Kind
    sandbox: Sandbox = field(repr=False)
    address: str  # its underlay address

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        return self.sandbox.run(argv, netns=self.name, input=input, timeout=timeout)


@dataclass
class ContainerNode:
    """A container, driven through the Docker API of its host's engine."""

    name: str
    host: str
    container: object = field(repr=False)  # docker.models.containers.Container
    kind: Kind = "container"

    def exec(self, argv: list[str], timeout: float = 30, input: str | None = None) -> Result:
        if input is not None:
            raise NotImplementedError("container exec takes no input; pass data in argv")
        start = time.monotonic()
        # The Docker API has no exec timeout; busybox's timeout enforces it inside.
        wrapped = ["timeout", "-s", "KILL", str(int(timeout)), *argv]
        rc, (out, err) = self.container.exec_run(wrapped, demux=True)
        return Result(tuple(argv), rc, _text(out), _text(err), time.monotonic() - start)

    def reload(self) -> None:
        self.container.reload()

    @property
    def addresses(self) -> dict[str, str]:
        """Network name to IPv4 address, as the engine reports them now."""
        nets = self.container.attrs["NetworkSettings"]["Networks"] or {}
        return {name: net["IPAddress"] for name, net in nets.items() if net.get("IPAddress")}


def _text(data: bytes | None) -> str:
    return data.decode(errors="replace") if data else ""
