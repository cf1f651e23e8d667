"""The one result type every node's ``exec`` returns."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


class CommandError(RuntimeError):
    """A command that had to succeed did not; carries its Result."""

    def __init__(self, result: Result, where: str = ""):
        self.result = result
        super().__init__(f"{where + ': ' if where else ''}{result}")


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self, where: str = "") -> Result:
        """Return self if the command succeeded, raise CommandError otherwise."""
        if not self.ok:
            raise CommandError(self, where)
        return self

    def __str__(self) -> str:
        detail = (self.stderr or self.stdout).strip().splitlines()[-3:]
        return f"`{shlex.join(self.argv)}` exited {self.rc}" + (f": {' / '.join(detail)}" if detail else "")
