"""NAT: the rules in each host's ruleset, and what ext actually sees."""

import pytest

from netconform.checks import assert_none, nat


def test_nat_rules(lab):
    """MASQUERADE for each container subnet, DNAT for each published port."""
    assert_none(nat.missing_rules(lab))


def test_ext_sees_host_address(lab, matrix):
    """Container traffic reaches ext from the host's address (MASQUERADE at work)."""
    assert_none(nat.masquerade_behaviour(lab, matrix))


@pytest.mark.requires("publish")
def test_published_port_answered_by_container(lab, matrix):
    """ext on HOST:PORT is answered by the container that published it (DNAT at work)."""
    assert_none(nat.dnat_behaviour(lab, matrix))
