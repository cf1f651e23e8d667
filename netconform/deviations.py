"""Known engine deviations: measured behaviours that break a promise, as data.

A deviation names the runtime and version range it was seen on, the check
it affects, and how to predict, from the live lab, the exact observations
that show it.  ``excuse`` turns a check's observations into a strict
expected failure only when they equal a matching deviation's prediction on
an engine inside its range; anything else (another version, one more or
one fewer wrong probe, rules that differ) stays a failure.  An engine that
keeps the promise passes whatever the table says.

Observations are short sentences (``"ext -> web (172.30.1.2:80 tcp) reached"``,
``"filter DOCKER: link rules name 172.30.1.2"``) so that a prediction and a
measurement compare as sets and a mismatch can be printed as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .engines import Version
from .expect import Probe, own_stacks


@dataclass(frozen=True)
class Deviation:
    """One engine behaviour the promise does not hold for."""

    id: str
    runtime: str
    since: Version  # first version it applies to
    until: Version | None  # first version it no longer applies to (None: still open)
    check: str  # the check it excuses: "isolation", "link-rules-after-restart", ...
    summary: str
    seen: str  # where and on which versions it was measured
    reference: str  # upstream record of the behaviour
    predict: Callable[..., frozenset[str]]  # (lab, **context) -> the exact observations
    flag: str | None = None  # a daemon option the engine must run with for it to apply

    def applies(self, runtime: str, version: Version, flags: frozenset[str] = frozenset()) -> bool:
        return (runtime == self.runtime and self.since <= version
                and (self.until is None or version < self.until)
                and (self.flag is None or self.flag in flags))

    @property
    def range(self) -> str:
        bounds = [f">= {self.since}" if self.since > Version(0, 0) else "",
                  f"< {self.until}" if self.until else ""]
        where = f" with {self.flag}" if self.flag else ""
        return f"{self.runtime} {', '.join(b for b in bounds if b) or 'any version'}{where}"


def probe_seen(probe: Probe, reached: bool) -> str:
    return f"{probe} {'reached' if reached else 'blocked'}"


def _routed_neighbour_reaches_published(lab, **_) -> frozenset[str]:
    """ext, routed to the container subnets, reaches each published container port on the
    container's own address (no direct-routing guard), and nothing else it must not."""
    routed = [net for net, _ in lab.scheme.neighbour_routes(lab.topology)]
    seen = set()
    for c in own_stacks(lab.topology):
        address = next(iter(lab.containers[c.name].addresses.values()), None)
        if address is None or not any(ipaddress.IPv4Address(address) in net for net in routed):
            continue
        seen |= {probe_seen(Probe("ext", c.name, address, "tcp", p.container_port), True)
                 for p in c.publish}
    return frozenset(seen)


def _link_rules_stay_on_old_address(lab, *, new: Probe, stale: Probe, old: str, **_) -> frozenset[str]:
    """After the link source restarts elsewhere, the receiver loses it and reaches whoever holds
    the old address, because the ACCEPT rules of the link still name the old address only."""
    return frozenset({probe_seen(new, False), probe_seen(stale, True),
                      f"filter DOCKER: link rules name {old}"})


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        id="docker-routed-neighbour-reaches-published-ports",
        runtime="docker", since=Version(0, 0), until=Version(28, 0), check="isolation",
        summary="a LAN neighbour with a route to the container subnet via the host reaches "
                "published container ports directly on the container's address (Docker adds "
                "the direct-routing guard, raw PREROUTING DROP, only from 28.0)",
        seen="Docker 20.10.24 and 26.1.5 on this machine (netns provider), every topology with -p",
        reference="moby#48724, moby#49325 (Docker 28.0 release notes)",
        predict=_routed_neighbour_reaches_published),
    Deviation(
        id="docker-allow-direct-routing-reaches-published-ports",
        runtime="docker", since=Version(28, 2), until=None, check="isolation",
        flag="--allow-direct-routing",
        summary="with --allow-direct-routing (which a scheme that routes to containers, host-gw, must "
                "set from Docker 28) the direct-routing guard is off, so a routed LAN neighbour again "
                "reaches published container ports directly, as the option documents",
        seen="Docker 28.5.2 on this machine, host-gw",
        reference="moby#49832 (Docker 28.2 release notes: allow-direct-routing)",
        predict=_routed_neighbour_reaches_published),
    Deviation(
        id="docker-icc-false-link-rules-stay-on-old-address",
        runtime="docker", since=Version(20, 10), until=None,
        check="link-rules-after-restart",
        summary="with --icc=false, when a link's source restarts with a new address the "
                "receiver's /etc/hosts follows it but the link's ACCEPT rules stay on the old "
                "address: the receiver loses the source and reaches whoever takes the old address",
        seen="Docker 20.10.24, 26.1.5 and 28.5.2 on this machine (issue 10: not fixed by 28)",
        reference="moby links: rules are written once at container start (daemon/links)",
        predict=_link_rules_stay_on_old_address),
)


def matching(lab, check: str, observed: frozenset[str], **context) -> Deviation | None:
    """The deviation of this lab's engine whose predicted observations are exactly ``observed``."""
    version = Version.parse(lab.runtime.version())
    for deviation in DEVIATIONS:
        if (deviation.check == check and deviation.applies(lab.runtime_name, version, lab.runtime.flags)
                and deviation.predict(lab, **context) == observed):
            return deviation
    return None


def excuse(lab, check: str, observed: frozenset[str], **context) -> str:
    """Strict xfail when ``observed`` is exactly a known deviation of this engine; otherwise
    return what the deviations of this check would have needed, for the failure message."""
    __tracebackhide__ = True
    found = matching(lab, check, observed, **context)
    if found is not None:
        pytest.xfail(f"known deviation {found.id} ({found.range}; engine {lab.runtime.version()}): "
                     f"{found.summary}. Observed exactly: {'; '.join(sorted(observed))}")
    version = Version.parse(lab.runtime.version())
    notes = []
    for d in DEVIATIONS:
        if d.check != check:
            continue
        if not d.applies(lab.runtime_name, version, lab.runtime.flags):
            notes.append(f"known deviation {d.id} is for {d.range}, not {lab.runtime_name} "
                         f"{lab.runtime.version()}")
        else:
            predicted = d.predict(lab, **context)
            notes.append(f"known deviation {d.id} predicts {'; '.join(sorted(predicted)) or 'nothing'}"
                         f"; unexplained: {'; '.join(sorted(observed - predicted)) or 'none'}"
                         f"; missing: {'; '.join(sorted(predicted - observed)) or 'none'}")
    return "\n".join(notes)
