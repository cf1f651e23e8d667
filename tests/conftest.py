"""Helpers for the project's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netconform import engines
from netconform.lab import Lab
from netconform.topology import Topology, load, resolve

REPO = Path(__file__).resolve().parents[1]


def topology(name: str):
    return load(resolve(name)[0])


@pytest.fixture
def live_lab(request):
    """A fresh lab per test, for tests that break it: ``live_lab("bridge")`` (or a Topology),
    ``live_lab("bridge", engine="docker-28.5")`` on a fetched engine, ``runtime="podman"``."""
    labs = []

    def build(name: str | Topology, engine: str | engines.EngineBuild = engines.SYSTEM,
              runtime: str = "docker") -> Lab:
        build = engines.resolve(engine) if isinstance(engine, str) else engine
        lab = Lab(topology(name) if isinstance(name, str) else name, runtime_name=runtime,
                  runtime_options={"build": build})
        reason = lab.missing()
        if reason:
            pytest.skip(reason)
        labs.append(lab)
        return lab.__enter__()

    yield build
    for lab in labs:
        lab.down()


def run_pytest(*args: str, timeout: float = 600, cwd: Path = REPO,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The product as a user runs it: pytest in a child process (``env`` adds to the environment)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})
