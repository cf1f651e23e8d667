"""Which bench paths count as one datapath, measured once per run (perf.paths.datapath)."""

from __future__ import annotations

from types import SimpleNamespace

from netconform.perf.paths import BenchPath, datapath
from netconform.schemes import SCHEMES
from netconform.shipped import shipped
from netconform.topology.load import load


def _key(topology: str, kind: str, source: str, target: str, mtu: int = 1500, engine: str = "docker"):
    topo = load(shipped("topologies") / f"{topology}.yaml")
    lab = SimpleNamespace(topology=topo, scheme=SCHEMES[topo.scheme], provider_name="netns",
                          runtime=SimpleNamespace(label=engine), containers={c.name: None for c in topo.containers})
    return datapath(lab, BenchPath(kind, source, target, "192.0.2.1"), mtu)


def test_the_default_bridge_is_one_datapath_in_every_local_topology():
    assert _key("bridge", "same-host", "c1", "c2") == _key("container", "same-host", "app", "c1")
    assert _key("bridge", "to-ext", "c1", "ext") == _key("none", "to-ext", "c1", "ext")


def test_a_scheme_that_leaves_the_hosts_bridge_alone_shares_its_paths_on_one_host():
    """host-gw adds routes and rules for the other hosts' subnets only: what a packet between two
    containers of one host, or from one to ext, crosses is the engine's bridge and NAT, as in
    bridge; its cross-host path is its own."""
    assert _key("host-gw", "same-host", "c1", "c2") == _key("bridge", "same-host", "c1", "c2")
    assert _key("host-gw", "to-ext", "c1", "ext") == _key("bridge", "to-ext", "c1", "ext")
    assert _key("host-gw", "cross-host", "c1", "c2") != _key("vxlan", "cross-host", "c1", "c2")


def test_whatever_could_change_the_figures_keeps_paths_apart():
    bridge = _key("bridge", "same-host", "c1", "c2")
    assert bridge != _key("bridge", "same-host", "c1", "c2", engine="docker-28.5")
    assert bridge != _key("bridge", "same-host", "c1", "c2", mtu=1450)
    for own in ("vxlan", "weave", "ovs", "macvlan", "overlay", "linux-bridge"):  # their bridge, MTU, offloads
        first = next(c.name for c in load(shipped("topologies") / f"{own}.yaml").containers)
        assert _key(own, "to-ext", first, "ext") != _key("bridge", "to-ext", "c1", "ext"), own
    assert bridge != _key("user-defined", "same-host", "f1", "f2")  # another network
    link = load(shipped("topologies") / "link.yaml")
    a, b = (c.name for c in link.containers[:2])
    assert bridge != _key("link", "same-host", a, b)  # icc off and a link: rules between the two


def test_rules_that_cannot_apply_to_a_path_do_not_split_it():
    """What the packets cross decides: icc and links act between two containers of one host,
    a published port on traffic to it; a container's way out crosses the same bridge and NAT."""
    assert _key("bridge", "to-ext", "c1", "ext") == _key("link", "to-ext", "db", "ext")  # icc off
    assert _key("bridge", "to-ext", "c1", "ext") == _key("portmap", "to-ext", "web", "ext")  # publishes
    assert _key("bridge", "same-host", "c1", "c2") == _key("portmap", "same-host", "api", "web")


def test_the_underlay_is_shared_unless_the_scheme_rewires_the_nics():
    assert _key("vxlan", "underlay", "h1", "h2") == _key("host-gw", "underlay", "h1", "h2")
    for rewired in ("linux-bridge", "ovs", "macvlan"):
        assert _key("vxlan", "underlay", "h1", "h2") != _key(rewired, "underlay", "h1", "h2"), rewired


def test_schemes_that_differ_only_in_how_containers_join_share_the_cross_host_path():
    """weave-plugin attaches containers through Weave's Docker plugin, weave through its CNI plugin:
    between hosts both cross the same routers, bridge and sleeve (``Scheme.crosses_like``), so
    one run measures that path once; the way out (docker_gwbridge under the plugin, the engine's
    bridge under weave attach) and encrypted sleeve stay apart."""
    assert _key("weave-plugin", "cross-host", "c1", "c2") == _key("weave", "cross-host", "c1", "c2")
    assert _key("weave-plugin", "to-ext", "c1", "ext") != _key("weave", "to-ext", "c1", "ext")
    assert _key("weave-encrypted", "cross-host", "c1", "c2") != _key("weave", "cross-host", "c1", "c2")
