"""The dry run is the real build against recording stand-ins: one plan per shipped topology,
made without root and without touching anything."""

from __future__ import annotations

import re

import pytest

from netconform import engines
from netconform.lab import Lab
from netconform.plan import plan
from netconform.schemes.ovs import OvsGre, Tuning
from netconform.topology import available

from .conftest import topology


@pytest.mark.parametrize("name", available())
def test_every_topology_has_a_plan_with_an_engine_per_host(name):
    topo = topology(name)
    steps = plan(Lab(topo))
    assert steps[0].startswith("provider netns: ")
    for host in topo.hosts:
        assert any(re.match(rf"{host.name}\$ dockerd .*--data-root /run/lab/docker/{host.name}/data", s)
                   for s in steps), f"no dockerd for {host.name}"
    created = [s for s in steps if ".api.create_container(" in s]
    assert len(created) == len(topo.containers)
    assert steps.index("(the suites run here)") < len(steps)


def test_plans_follow_the_engine_and_the_scheme():
    routed = plan(Lab(topology("host-gw"), runtime_options={"build": engines.resolve("docker-28.5")}))
    if engines.resolve("docker-28.5").missing() is None:  # its version is known once fetched
        assert any("--allow-direct-routing" in s for s in routed if "dockerd --config-file" in s)
    overlay = plan(Lab(topology("overlay")))
    assert any(s.startswith("h1 engine.swarm.init(") for s in overlay)
    assert any(s.startswith("h2 engine.swarm.join(") for s in overlay)
    macvlan = plan(Lab(topology("macvlan")))
    assert any("networks.create('macvlan', driver='macvlan', options={'parent': 'eth0'}" in s for s in macvlan)


def test_ovs_levers_reach_the_switch_before_it_starts():
    """TSO is read once when ovs-vswitchd starts, so it is set before; the NIC port's type and
    the learning flows are what the plan says."""
    lab = Lab(topology("ovs"))
    lab.scheme = OvsGre(Tuning(userspace_tso=True, nic_type="afxdp", xdp_mode="native"))
    steps = "\n".join(plan(lab))
    assert steps.index("other_config:userspace-tso-enable=true") < steps.index("ovs-vswitchd unix:")
    assert "set interface eth0 type=afxdp options:xdp-mode=native" in steps
    assert "ethtool -K br-phy tx off" not in steps  # checksums stay offloaded with TSO
    assert "learn(table=1" in steps and "table=1,priority=0,actions=output:gre-h2,output:gre-h3" in steps
    flooding = Lab(topology("ovs"))
    flooding.scheme = OvsGre(Tuning(learn_macs=False))
    assert "in_port=LOCAL,actions=output:gre-h2,output:gre-h3" in "\n".join(plan(flooding))
