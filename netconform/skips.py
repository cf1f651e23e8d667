"""What a skip means, so that a strict run can tell an allowed one from a hidden failure.

A skip reason starts with its kind in brackets:

- ``[selection]``: the user's own choice left nothing for the test (no chosen
  topology has the feature, benchmarks under ``-n``, a check with nothing to
  check on this lab's shape);
- ``[limit:ID]``: an environment limit, a kernel feature this machine lacks
  (``LIMITS``), allowed by ``--allow-skip ID`` or by ``DEFAULT_ALLOWED``;
- ``[unsupported:RUNTIME:FEATURE]``: the runtime has no equivalent of a feature
  the lab needs (``--link`` on Podman); allowed only when the text is exactly
  what the runtime declares (``Runtime.lacks``), so a skip cannot excuse itself;
- anything else (a tool ``setup.sh`` should have installed, a provider that
  cannot run): with ``--strict-skips`` it is a failure.
"""

from __future__ import annotations

import re

SELECTION = "selection"

# Kernel features a lab may need and a machine may lack, by the id --allow-skip takes.
LIMITS: dict[str, str] = {
    "no-ipvs": "the kernel has no IPVS (swarm's ingress routing mesh and service VIPs)",
    "no-vxlan": "the kernel cannot create VXLAN links (vxlan, overlay)",
    "no-macvlan": "the kernel cannot create macvlan links (macvlan)",
}
# Allowed without asking: limits of machines like the one the suite is developed on
# (Linux without IPVS), documented in the README.
DEFAULT_ALLOWED: tuple[str, ...] = ("no-ipvs",)

_KIND = re.compile(r"^\[(selection|limit:[a-z0-9-]+|unsupported:[a-z0-9-]+:[a-z0-9:-]+)\]")


def selection(text: str) -> str:
    return f"[{SELECTION}] {text}"


def limit(limit_id: str, text: str) -> str:
    if limit_id not in LIMITS:
        raise KeyError(f"unknown limit {limit_id!r}; known: {', '.join(LIMITS)}")
    return f"[limit:{limit_id}] {text}"


def unsupported(runtime: str, feature: str, text: str) -> str:
    return f"[unsupported:{runtime}:{feature}] {text}"


def declared(reason: str) -> bool:
    """Whether an ``unsupported`` skip says exactly what its runtime declares it lacks."""
    from . import registry

    _, runtime, feature = kind(reason).split(":", 2)
    try:
        lacks = registry.implementation("runtime", runtime).lacks
    except KeyError:
        return False
    return feature in lacks and reason.strip() == unsupported(runtime, feature, lacks[feature])


def kind(reason: str) -> str | None:
    """``selection``, ``limit:ID``, ``unsupported:RUNTIME:FEATURE``, or None for any other reason."""
    found = _KIND.match(reason.strip())
    return found.group(1) if found else None


def allowed(reason: str, limits: set[str]) -> bool:
    """Whether a strict run accepts this skip."""
    found = kind(reason)
    if found is not None and found.startswith("unsupported:"):
        return declared(reason)
    return found == SELECTION or (found is not None and found.removeprefix("limit:") in limits)
