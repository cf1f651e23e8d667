"""Lazy registries: a name on the command line to the class behind it.

Like pytest-testinfra's backends, implementations are imported only when
chosen, so a provider that needs libvirt costs nothing to a netns run.
"""

from __future__ import annotations

import importlib

PROVIDERS = {"netns": "netconform.providers.netns:NetnsProvider",
             "vagrant": "netconform.providers.vagrant:VagrantProvider",
             "ssh": "netconform.providers.ssh:SshProvider"}
RUNTIMES = {"docker": "netconform.runtimes.docker:DockerRuntime",
            "podman": "netconform.runtimes.podman:PodmanRuntime"}


def load(kind: str, name: str, **options):
    return implementation(kind, name)(**options)


def implementation(kind: str, name: str) -> type:
    """The class behind a name, imported now."""
    table = {"provider": PROVIDERS, "runtime": RUNTIMES}[kind]
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; allowed: {', '.join(table)}")
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)
