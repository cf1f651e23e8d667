"""Benchmarks: iperf3 throughput and latency on every path a lab offers.

Selected with ``-m bench`` (and part of the default full run).  Figures
are recorded, compared with the baseline measured in the same run, and
written to compare.{json,md} and charts; tests never assert numbers, only
that every path was measured.  A path whose datapath another lab of the run
already measured (``perf.paths.datapath``) is recorded as that lab's, not
measured again, unless ``--bench-every-path``.
"""

import json
import time

import allure
import pytest

from netconform.perf.bench import Measurement, path_round_trips, path_throughput
from netconform.perf.paths import bench_paths, datapath
from netconform import skips
from netconform.plugin import say
from netconform.reporting.compare import Origin, Record

pytestmark = pytest.mark.bench


def _measure(request, lab, comparison, path, measure) -> list[Measurement]:
    """The path's measurements (``measure``), recorded; or, where another lab of the run
    measured the same datapath, records naming that lab and no measurement."""
    mtu = _mtu(lab, path.source, path.address)
    key = (request.function.__name__, *datapath(lab, path, mtu))
    origin = comparison.origins.get(key)
    route = f"{path.source} -> {path.target}"
    if origin and not request.config.option.bench_every_path:
        for metric, unit in origin.metrics:
            comparison.records.append(Record(lab.id, lab.topology.name, lab.topology.scheme, lab.provider_name,
                                             lab.runtime_name, mtu, Measurement(path.kind, route, metric, unit,
                                                                                None, ()),
                                             same_as=origin))
        say(request.config, f"{lab.id} {request.function.__name__}: {path}: the same datapath as "
                            f"{origin.topology} ({origin.route}), measured there")
        allure.attach(f"{path}: the same datapath as {origin.lab} ({origin.route}), measured there: "
                      + ", ".join(key[1:]), name=f"{path.kind}: measured in {origin.topology}",
                      attachment_type=allure.attachment_type.TEXT)
        return []
    start = time.monotonic()
    found = measure(lab, path)
    say(request.config, f"{lab.id} {request.function.__name__}: {path}: {', '.join(m.metric for m in found)} "
                        f"({time.monotonic() - start:.1f} s)")
    if all(m.summary and m.summary.median for m in found):  # only a path that was measured is referred to
        comparison.origins[key] = Origin(lab.id, lab.topology.name, route, tuple((m.metric, m.unit) for m in found))
    for m in found:
        comparison.records.append(Record(lab.id, lab.topology.name, lab.topology.scheme,
                                         lab.provider_name, lab.runtime_name, mtu, m))
        for i, raw in enumerate(m.raw):
            allure.attach(raw, name=f"{m.path} {m.metric} sample {i + 1} (iperf3 -J)",
                          attachment_type=allure.attachment_type.JSON)
        if m.raw:
            comparison.versions.setdefault("iperf3", json.loads(m.raw[0])["start"]["version"])
    return found


def _mtu(lab, node_name, address):
    """MTU of the interface the source routes the path's address through (netlink, not /sys)."""
    node = lab.node(node_name)
    route = node.exec(["busybox", "ip", "route", "get", address]).stdout.split()
    device = route[route.index("dev") + 1] if "dev" in route else "eth0"
    link = node.exec(["busybox", "ip", "link", "show", device]).stdout.split()
    return int(link[link.index("mtu") + 1]) if "mtu" in link else None


def _versions(lab, comparison):
    comparison.versions.setdefault(lab.runtime.label, lab.runtime.version())
    if lab.topology.scheme == "ovs-gre":
        out = lab.hosts[lab.topology.hosts[0].name].exec(["ovs-vswitchd", "--version"]).stdout
        comparison.versions.setdefault("openvswitch", out.split()[-1] if out else "?")


def test_throughput(request, lab, reference, path_settings, bench_reserve, comparison):
    """TCP one stream and parallel streams, each paired with the raw veth pair; UDP at half the
    path's TCP rate or of the UDP ceiling, the lesser (``bench.udp_ceiling``); on each path."""
    _versions(lab, comparison)
    paths = bench_paths(lab)
    if not paths:
        pytest.skip(skips.selection(f"{lab.id} offers no path to measure: no two containers that may "
                                    "talk, none with a way out, no published port, no second host"))
    problems = []
    for path in paths:
        found = _measure(request, lab, comparison, path,
                         lambda lab, path: path_throughput(lab, path, path_settings, reference, bench_reserve))
        problems += [f"{path} {m.metric}: {m.error or 'nothing got through'}" for m in found
                     if m.error or not m.summary.median]
    assert not problems, "\n".join(problems)


def test_latency(request, lab, reference, comparison):
    """ICMP round trips and TCP request/response round trips (p50, p90, p99) on each path."""
    paths = bench_paths(lab)
    if not paths:
        pytest.skip(skips.selection(f"{lab.id} offers no path to measure"))
    problems = []
    for path in paths:
        found = _measure(request, lab, comparison, path, path_round_trips)
        problems += [f"{path} {m.metric}: {m.error}" for m in found if m.error]
    assert not problems, "Failed measurements (recorded as failed in compare.json):\n" + "\n".join(problems)
