"""Topology files: the model, loading and validation, and the JSON Schema."""

from .load import BUILTIN_DIR, TopologyError, available, load, resolve
from .model import MODES, Container, Host, Link, Network, Publish, Rule, Topology

__all__ = ["BUILTIN_DIR", "MODES", "Container", "Host", "Link", "Network", "Publish", "Rule",
           "Topology", "TopologyError", "available", "load", "resolve"]
