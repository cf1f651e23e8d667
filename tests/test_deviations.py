"""Engine deviations match only on exact observations and the engine's version range."""

from __future__ import annotations

import pytest

from netconform import deviations
from netconform.deviations import matching, probe_seen
from netconform.engines import Version
from netconform.expect import Probe
from netconform.measure import ONE_WAY, addresses, measure

pytestmark = pytest.mark.lab

ROUTED = "docker-routed-neighbour-reaches-published-ports"


def observed(matrix) -> frozenset[str]:
    return frozenset(v.observation for v in matrix.wrong(False))


def test_a_routed_neighbour_is_the_engines_verdict(live_lab):
    """ext has routes to the container subnet: what it reaches is Docker's doing.  On Docker 20.10
    that is exactly each published port on the container's own address, and nothing else."""
    lab = live_lab("portmap")
    live = addresses(lab)
    seen = observed(measure(lab))
    assert seen == {f"ext -> web ({live['web']}:80 tcp) reached", f"ext -> api ({live['api']}:9000 tcp) reached"}
    assert Version.parse(lab.runtime.version()) < Version(28, 0)  # this machine's engine
    assert [d.id for d in matching(lab, "isolation", seen)] == [ROUTED]
    # The same observations on an engine outside the range are a failure, not an excuse.
    lab.runtime._version = "28.5.2"
    assert matching(lab, "isolation", seen) == []
    lab.runtime._version = None
    # One wrong probe more than the deviation predicts: no match.
    extra = seen | {probe_seen(Probe("ext", "web", live["web"], "icmp"), True)}
    assert matching(lab, "isolation", extra) == []
    # One fewer (the engine kept one port closed): no match either.
    assert matching(lab, "isolation", frozenset(list(seen)[:1])) == []


def test_link_rule_deviation_needs_the_rules_too(live_lab):
    lab = live_lab("link")
    new, stale = Probe("app", "db", "172.30.1.5", "tcp", 80), Probe("app", "filler-db", "172.30.1.2", "tcp", 80)
    behaviour = {probe_seen(new, False), probe_seen(stale, True)}
    with_rules = frozenset(behaviour | {"filter DOCKER: link rules name 172.30.1.2"})
    context = {"new": new, "stale": stale, "old": "172.30.1.2"}
    assert [d.id for d in matching(lab, "link-rules-after-restart", with_rules, **context)] == \
        ["docker-icc-false-link-rules-stay-on-old-address"]
    # The probes alone (rules gone, say, or elsewhere) do not show this deviation.
    assert matching(lab, "link-rules-after-restart", frozenset(behaviour), **context) == []


def test_ranges():
    table = {d.id: d for d in deviations.DEVIATIONS}
    assert table[ROUTED].applies("docker", Version.parse("20.10.24+dfsg1"))
    assert table[ROUTED].applies("docker", Version.parse("27.5.1"))
    assert not table[ROUTED].applies("docker", Version.parse("28.0.0"))
    assert not table[ROUTED].applies("podman", Version.parse("4.3.1"))
    assert table[ROUTED].range == "docker < 28.0"


def test_strict_isolation_leaks_one_way_exactly(live_lab):
    """Podman 5.8's ``-o isolate=strict``: what the default network sends into a strict one arrives
    and only the answers are dropped, exactly as the deviation predicts; with netavark's isolation
    chain flushed the answers come back too (reached), which no deviation excuses."""
    lab = live_lab("isolated-networks", engine="podman-5.8", runtime="podman")
    seen = observed(measure(lab))
    live = addresses(lab)
    assert f"d1 -> f1 ({live['f1']}:80 udp) {ONE_WAY}" in seen
    assert "podman-strict-isolation-one-way" in [d.id for d in matching(lab, "isolation", seen)]
    lab.hosts["h1"].exec(["nft", "flush", "chain", "inet", "netavark", "NETAVARK-ISOLATION-3"]).check()
    broken = observed(measure(lab))
    assert f"d1 -> f1 ({live['f1']}:80 udp) reached" in broken
    assert matching(lab, "isolation", broken) == []
