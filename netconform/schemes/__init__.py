"""Cross-host schemes by name; see ``base.py`` for what a scheme is."""

from __future__ import annotations

from .base import Promise, Scheme
from .routed import HostGw
from .vxlan import Vxlan, Weave

SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in (Scheme(), HostGw(), Vxlan(), Weave())}

__all__ = ["SCHEMES", "Promise", "Scheme"]
