"""Topologies of any size without writing YAML: ``netconform generate``.

A generated lab is ``hosts`` hosts with ``containers`` containers dealt out
round-robin, in mode bridge, each serving the whoami page on port 80, on
the named scheme with an address plan that scheme accepts: private
172.30.0.0/16 slices, Weave Net's 10.32.0.0/12, or slices of a /16 underlay
for the schemes that put containers on the LAN.  The text goes through the
same loader and validation as any file, so a request the plan cannot hold
(too many containers for overlay's /24) gets the same message a file would.
"""

from __future__ import annotations

import ipaddress
import math

import yaml

from ..schemes import SCHEMES
from .load import parse
from .model import Topology

PRIVATE = ipaddress.IPv4Network("172.30.0.0/16")
LAN = ipaddress.IPv4Network("198.18.0.0/16")  # the underlay where containers live on it
SLICES = ipaddress.IPv4Network("198.18.128.0/17")  # their slices: away from the hosts' addresses


def _prefix(per_host: int) -> int:
    """The longest prefix (at most /24) whose network holds ``per_host`` containers and the
    network, broadcast and gateway addresses."""
    return min(24, 32 - math.ceil(math.log2(per_host + 3)))


def plan(hosts: int, containers: int, scheme: str) -> dict:
    """The topology as data, before validation."""
    if scheme not in SCHEMES:
        raise ValueError(f"--scheme: {scheme!r} is not a scheme; allowed: {', '.join(SCHEMES)}")
    if hosts < 1 or containers < 0:
        raise ValueError("--hosts must be at least 1 and --containers at least 0")
    prefix = _prefix(math.ceil(containers / hosts) if containers else 1)
    on_underlay = SCHEMES[scheme].on_underlay
    space = SLICES if on_underlay else PRIVATE
    pools = space.subnets(new_prefix=max(prefix, space.prefixlen))
    if space is PRIVATE:
        next(pools)  # 172.30.0.0: the shipped topologies start at 172.30.1.0
    underlay = LAN if on_underlay else ipaddress.IPv4Network("198.18.0.0/24")
    data = {"name": f"{scheme}-{hosts}x{containers}",
            "description": f"Generated: {containers} containers on {hosts} hosts, scheme {scheme}.",
            "scheme": scheme, "underlay": str(underlay), "hosts": {}, "containers": {}}
    for index in range(hosts):
        pool = next(pools, None)
        if pool is None:
            raise ValueError(f"--hosts: {hosts} hosts of /{prefix} pools do not fit the address plan")
        data["hosts"][f"h{index + 1}"] = {"underlay": f"{underlay[index + 1]}/{underlay.prefixlen}",
                                          "subnet": str(pool)}
    for index in range(containers):
        data["containers"][f"c{index + 1}"] = {"host": f"h{index % hosts + 1}"}
    return data


def generate(hosts: int, containers: int, scheme: str) -> tuple[str, Topology]:
    """The YAML text and the topology it loads as (TopologyError if the plan cannot hold it)."""
    data = plan(hosts, containers, scheme)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200)
    return text, parse(yaml.safe_load(text), f"netconform generate ({data['name']})")
