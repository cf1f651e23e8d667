"""A site: the hosts a provider built for a topology, as runtimes and schemes see them.

The runtime's engines and the scheme's hooks act on hosts, not on a lab:
giving them this instead of the ``Lab`` keeps them from reaching into its
containers, its sandbox or each other, and makes what each hook may touch
visible in its signature (a dry run passes a site of recording hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .nodes import ContainerNode, HostNode
    from .result import Result
    from .topology import Topology


@dataclass(frozen=True)
class Site:
    topology: Topology
    hosts: Mapping[str, HostNode] = field(repr=False)  # every host by name, and ext
    local_kernel: bool  # the hosts run this machine's kernel and binaries (the netns provider)
    run_id: str  # names what the run owns (cgroups)
    planned: bool = False  # a dry run (plan.py): commands are written down, none answers

    @property
    def ext(self) -> HostNode:
        return self.hosts["ext"]

    @property
    def first(self) -> HostNode:
        """The topology's first host: where cluster-wide things are made and probed."""
        return self.hosts[self.topology.hosts[0].name]

    def netns_exec(self, node: ContainerNode, argv: list[str], timeout: float = 30) -> Result:
        """Run a tool of the host's (ping -M, ethtool, ip) in a container's network namespace."""
        return self.hosts[node.host].exec(["nsenter", f"--net=/proc/{node.pid}/ns/net", *argv],
                                          timeout=timeout)
