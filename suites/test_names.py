"""/etc/hosts and DNS: link aliases, embedded DNS, shared hostnames."""

import pytest

from netconform.checks import names
from netconform.topology import Container


@pytest.mark.requires("link")
def test_link_alias_in_hosts(lab):
    problems = names.link_entries(lab)
    assert not problems, "\n".join(problems)


@pytest.mark.requires("link")
def test_link_follows_source_restart(lab):
    """After the source restarts with a new address, the receiver's entry follows it."""
    topo = lab.topology
    link = next(link for c in topo.containers for link in c.links)
    source = lab.containers[link.source]
    before = source.addresses["bridge"]
    source.container.stop(timeout=0)
    # Another container takes the freed address, so the source must get a new one.
    filler = lab.runtime.run_container(source.host, Container(name="filler", host=source.host),
                                       name=f"filler-{link.source}")
    try:
        source.container.start()
        source.reload()
        assert source.addresses["bridge"] != before, "the source kept its address; test is void"
        problems = names.link_entries(lab)
        assert not problems, "\n".join(problems)
    finally:
        filler.container.remove(force=True)


@pytest.mark.requires("networks")
def test_embedded_dns(lab):
    """Names resolve inside a user-defined network and nowhere else."""
    problems = names.embedded_dns(lab)
    assert not problems, "\n".join(problems)


@pytest.mark.requires("container")
def test_container_mode_shares_hostname(lab):
    problems = names.shared_hostname(lab)
    assert not problems, "\n".join(problems)
