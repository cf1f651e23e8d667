"""Finding a lab's sandbox from the pytest process that builds it, and waiting for it to go."""

from __future__ import annotations

import time
from pathlib import Path


def _engine_up(sandbox: int) -> bool:
    return Path(f"/proc/{sandbox}/root/run/lab/docker/h1/docker.sock").exists()


def sandbox_pid(pytest_pid: int, ready=_engine_up, timeout: float = 120) -> int:
    """PID 1 of the lab a pytest process builds, once ``ready(pid)`` (by default: its engine answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for unshare in children(pytest_pid):
            for pid in children(unshare):
                if ready(pid):
                    return pid
        time.sleep(0.05)
    raise AssertionError("no lab came up")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_gone(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"PID {pid} still running"
