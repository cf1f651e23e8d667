"""/etc/hosts and DNS: link aliases, embedded DNS, weaveDNS, shared hostnames."""

import pytest

from netconform.checks import assert_none, names, weave_dns
from netconform.deviations import assert_excused, excuse, probe_seen
from netconform.expect import Probe
from netconform.measure import run_probes
from netconform.topology import Container


@pytest.mark.requires("link")
def test_link_alias_in_hosts(lab):
    assert_none(names.link_entries(lab))


@pytest.mark.mutates
@pytest.mark.requires("link")
def test_link_follows_source_restart(lab):
    """After the source restarts with a new address, the receiver's entry follows it.

    With --icc=false the link's ACCEPT rules must follow too: the receiver
    reaches the source's new address and not whoever took the old one.  An
    engine known to keep the rules on the old address (``netconform.deviations``)
    is an expected failure only when the probes and its filter rules show
    exactly that; anything else is a failure.
    """
    topo = lab.topology
    link = next(link for c in topo.containers for link in c.links)
    source = lab.containers[link.source]
    before = source.addresses["bridge"]
    lab.runtime.stop(source)
    # Another container takes the freed address, so the source must get a new one.
    filler = lab.runtime.run_container(source.host, Container(name="filler", host=source.host),
                                       name=f"filler-{link.source}")
    try:
        lab.runtime.start(source)
        assert source.addresses["bridge"] != before, "the source kept its address; test is void"
        assert_none(names.link_entries(lab))
        if not topo.host(source.host).icc:
            _check_link_rules_followed(lab, link, source, filler, before)
    finally:
        lab.runtime.remove(filler.host, filler.name)


def _check_link_rules_followed(lab, link, source, filler, old_address):
    receiver = next(c for c in lab.topology.containers if link in c.links)
    port = lab.topology.container(link.source).ports[0]
    new = Probe(receiver.name, link.source, source.addresses["bridge"], "tcp", port)
    stale = Probe(receiver.name, filler.name, old_address, "tcp", port)
    reached = run_probes(lab, [new, stale])
    behaviour = frozenset({probe_seen(new, new in reached), probe_seen(stale, stale in reached)})
    if behaviour == {probe_seen(new, True), probe_seen(stale, False)}:
        return
    receiver_address = lab.containers[receiver.name].addresses["bridge"]
    rules = names.link_rule_addresses(lab, source.host, receiver_address, port)
    observed = behaviour | {f"filter {chain}: link rules name {address}" for chain, address in rules}
    notes = excuse(lab, "link-rules-after-restart", observed, new=new, stale=stale, old=old_address)
    pytest.fail(f"the link's rules did not follow {link.source} to {source.addresses['bridge']}: "
                f"{'; '.join(sorted(observed))}\n{notes}")


@pytest.mark.requires("networks")
def test_embedded_dns(lab):
    """Names resolve inside a user-defined network and nowhere else."""
    assert_none(names.embedded_dns(lab))


@pytest.mark.requires("network-dns")
def test_network_dns(lab):
    """A network's own DNS servers (podman network create --dns) answer its containers' outside names."""
    assert_none(names.network_dns(lab))


@pytest.mark.mutates
@pytest.mark.requires("network-dns")
def test_network_dns_update(lab):
    """podman network update --dns-drop / --dns-add takes effect for running containers; an engine
    known to keep a dropped last server (``netconform.deviations``) is an expected failure on
    exactly that."""
    assert_excused(lab, "network-dns-update", names.network_dns_update(lab))


@pytest.mark.requires("scheme:weave")
def test_weave_dns(lab):
    """weaveDNS answers every Weave-attached container's NAME.weave.local with its Weave address,
    from every container at its own host's DNS server, and answers no name nobody has."""
    assert_none(weave_dns.weave_dns(lab))


@pytest.mark.requires("container")
def test_container_mode_shares_hostname(lab):
    """A container-mode container answers to its target's hostname; an engine known to keep
    one of its own (``netconform.deviations``) is an expected failure on exactly that."""
    differ = names.hostname_mismatches(lab)
    if differ:
        observed = frozenset(m.observation for m in differ)
        notes = excuse(lab, "shared-hostname", observed)
        pytest.fail("\n".join(str(m) for m in differ) + (f"\n{notes}" if notes else ""))
