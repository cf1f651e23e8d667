"""The path between hosts: the scheme's encapsulation on the wire, and its MTU."""

import pytest

from netconform.checks import assert_none, path
from netconform.deviations import assert_excused
from netconform.schemes.overlay import ipvs_missing


@pytest.mark.requires("multihost")
def test_underlay_carries_the_scheme(lab):
    """A capture on the underlay sees the scheme's encapsulation (or none, as promised)."""
    assert_none(path.wire(lab))


@pytest.mark.requires("multihost")
def test_path_mtu(lab):
    """The largest unfragmented packet the scheme promises passes; one byte more is refused.  Where
    a known deviation predicts exactly what differs (``netconform.deviations``, with the host
    settings it depends on), an expected failure naming it."""
    assert_excused(lab, "path-mtu", path.mtu(lab))


@pytest.mark.requires("scheme:overlay")
def test_overlay_ingress_routing_mesh(lab):
    """Swarm's ingress publishes a service's port on every host; it needs IPVS."""
    reason = ipvs_missing(lab.site)
    if reason:
        pytest.skip(reason)
    assert_none(path.ingress(lab))
