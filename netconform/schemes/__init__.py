"""Cross-host schemes by name; see ``base.py`` for what a scheme is."""

from __future__ import annotations

from .base import Promise, Scheme
from .lan import LinuxBridge, Macvlan
from .overlay import Overlay
from .ovs import OvsGre
from .routed import HostGw
from .vxlan import Vxlan
from .weave import EncryptedWeaveNet, WeaveNet, WeavePluginNet

SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in (
    Scheme(), LinuxBridge(), OvsGre(), WeaveNet(), EncryptedWeaveNet(), WeavePluginNet(), Vxlan(), Overlay(), HostGw(), Macvlan())}

__all__ = ["SCHEMES", "Promise", "Scheme"]
