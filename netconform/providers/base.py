"""The provider seam: where a lab's hosts come from (netns, vagrant, ssh).

As netlab's providers, each one says what it needs before anything is built
(``missing``, probed where it matters), brings hosts up and down, says where
the underlay can be watched (``wire_tap``) and which NIC carries it, and
describes itself for the dry run and reports, so that the plugin and the
plan switch on nothing.  A provider's own options (an inventory, a box)
are its constructor's keywords (``LabSpec.lab``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..nodes import HostNode
    from ..sandbox import Sandbox
    from ..topology import Topology


class Provider(Protocol):
    name: str
    local_kernel: bool  # hosts run this machine's kernel (its probes and cached engine builds apply)
    workdir: str  # where daemons keep state on a host
    # The hosts are the sandbox's own namespaces: closing it ends every process on them and
    # frees their state (engines, containers, rules), so the lab need not stop them first.
    hosts_end_with_sandbox: bool
    # The hosts start with the kernel's per-namespace defaults, not a booted system's: the lab gives
    # each the host profile and its runtime's prerequisites before any engine (hostprofile.py).
    fresh_hosts: bool
    teardown: str | None  # what leaving does beyond closing the sandbox, for the plan

    def missing(self) -> str | None: ...

    def up(self, topo: Topology, sandbox: Sandbox) -> dict[str, HostNode]: ...

    def down(self) -> None: ...

    def wire_tap(self, lab, host: str) -> tuple[HostNode, str]: ...

    def describe(self, topo: Topology) -> str: ...

    def underlay_nic(self, host: str) -> str: ...
