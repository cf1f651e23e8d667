"""A pytest-testinfra backend for lab nodes.

testinfra's modules (iptables, file, interface, ...) need only a backend
with ``run``; this one is that ``run`` over ``Node.exec``, so suites can say
``infra(c1).file("/etc/hosts").content_string`` on any provider.
"""

from __future__ import annotations

from typing import Any

import testinfra.host
from testinfra.backend.base import BaseBackend, CommandResult

from .nodes import Node


class LabBackend(BaseBackend):
    NAME = "netconform"

    def __init__(self, node: Node, **kwargs: Any):
        self.node = node
        super().__init__(node.name, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        command = self.get_command(command, *args)
        result = self.node.exec(["sh", "-c", command])
        return self.result(result.rc, self.encode(command), result.stdout, result.stderr)


def infra(node: Node) -> testinfra.host.Host:
    """testinfra's Host for a lab node."""
    return testinfra.host.Host(LabBackend(node))
