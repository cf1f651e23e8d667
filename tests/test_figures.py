"""Figures are what was measured: no CI from one sample or one series, failures kept with their error."""

from __future__ import annotations

from netconform.perf import bench
from netconform.perf.latency import Percentiles
from netconform.perf.stats import summarise
from netconform.result import Result


def test_no_confidence_interval_from_one_sample():
    assert summarise([5.0]).ci95 is None
    low, high = summarise([4.0, 5.0, 6.0]).ci95
    assert low < 5.0 < high


def test_latency_is_percentiles_of_its_round_trips_without_a_ci():
    m = bench._latency("same-host", "a -> b", "tcp-rr", Percentiles(50.0, 80.0, 120.0, 4000, 20.0, 900.0),
                       2.1, 2.0)
    assert (m.summary.n, m.summary.median, m.summary.min, m.summary.max, m.summary.ci95) == \
        (4000, 50.0, 20.0, 900.0, None)
    assert m.extra["round_trips"] == 4000


class NoSockperf:
    name = "b"

    def exec(self, argv, timeout=30, input=None):
        if argv[:2] == ["sh", "-c"] and "sockperf" in argv[2]:
            return Result(tuple(argv), 1, "", "", 0.0)
        return Result(tuple(argv), 0, "\n".join(f"64 bytes: time=0.0{i} ms" for i in range(1, 9)), "", 0.0)


def test_a_failed_series_is_recorded_with_its_error_not_dropped():
    found = bench.round_trips("same-host", NoSockperf(), NoSockperf(), "10.0.0.2")
    assert [m.metric for m in found] == ["icmp-rtt", "tcp-rr"]
    icmp, rr = found
    assert icmp.error is None and icmp.summary.n == 8
    assert rr.summary is None and rr.error == "sockperf is not installed on b"
