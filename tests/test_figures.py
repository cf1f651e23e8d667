"""Figures are what was measured: no CI from one sample or one series, failures kept with their error."""

from __future__ import annotations

import time

import pytest

from netconform.perf import bench
from netconform.perf.latency import Percentiles
from netconform.perf import stats
from netconform.perf.stats import ratios, summarise
from netconform.reporting.compare import RUN_TO_RUN, difference_lines, differences, relative
from netconform.result import Result


def test_no_confidence_interval_of_the_median_below_six_samples():
    assert summarise([5.0]).ci95 is None and summarise([4.0, 5.0, 6.0, 5.5, 4.5]).ci95 is None
    assert summarise([4.0, 5.0, 6.0, 5.5, 4.5, 5.2]).ci95 == (4.0, 6.0)
    # n = 20: the 6th and 15th of the ordered samples (the binomial interval), whatever the outliers.
    values = [10.0] * 18 + [0.1, 1000.0]
    assert summarise(values).ci95 == (10.0, 10.0) and summarise(values).half_width == 0.0


def test_a_ratio_is_summarised_from_its_pairs():
    """Drift that moves path and reference together cancels: every pair's ratio is 0.5."""
    pairs = [(5.0 * k, 10.0 * k) for k in (1, 2, 3, 1.5, 0.5, 4)]
    found = ratios(pairs)
    assert found.median == pytest.approx(0.5) and found.ci95 == pytest.approx((0.5, 0.5))
    assert ratios([(1.0, 0.0)]) is None and ratios([(0.0, 1.0)]) is None


@pytest.mark.parametrize("n, outside", [(5, 0), (6, 1), (8, 4), (10, 9), (15, 26), (20, 53), (30, 138)])
def test_the_ratio_interval_is_the_exact_wilcoxon_one(n, outside):
    """The Walsh averages left out at each end: the signed-rank test's critical value plus one,
    as printed in the tables (two-sided 5 %: n=6 T=0, n=8 T=3, n=10 T=8, n=15 T=25, n=20 T=52,
    n=30 T=137); below 6 there is no 95 % interval."""
    assert stats._signed_rank_outside(n) == outside
    centre, interval = stats.hodges_lehmann([float(v) for v in range(n)])
    assert centre == pytest.approx((n - 1) / 2) and (interval is None) == (n < 6)


def test_a_slow_pair_moves_the_ratio_little():
    """Hodges-Lehmann keeps the median's robustness: one pair at a tenth of the rest moves the
    estimate by a few per cent (the mean of the ratios would move by 8 %), and the interval
    still holds the others' centre."""
    steady = [(0.8 + 0.01 * (i % 5), 1.0) for i in range(11)]
    found = ratios(steady + [(0.08, 1.0)])
    assert found.median == pytest.approx(0.82, rel=0.03) and found.ci95[0] < 0.82 < found.ci95[1]


def _series(ratios_of_pairs: list[float]) -> bench._Series:
    sample = lambda bps: bench.iperf.Sample(bps, 0.0, 0.0, 0, None, None, "", 0.2)
    return bench._Series(samples=[sample(r) for r in ratios_of_pairs],
                         references=[(sample(1.0),) for _ in ratios_of_pairs])


@pytest.mark.parametrize("seconds, reference_seconds, taken", [(0.2, 0.2, 1), (1.0, 0.2, 3), (1.0, 1.0, 1),
                                                              (0.5, 0.1, 3), (2.0, 0.2, 5)])
def test_a_longer_path_sample_has_more_reference_samples_beside_it(seconds, reference_seconds, taken):
    """The reference's samples in a pair make up at least half the path sample's time: its noise
    enters once per test, so the mean of three short ones beside a 1 s sample varies less than
    one (10-35 % less here, samples back to back sharing some of a spell)."""
    assert bench.references_per_pair(seconds, reference_seconds) == taken


def test_a_series_stops_when_its_precision_is_met_or_at_the_cap_and_says_which():
    """Pairs are added until the ratio's interval is within 5 % or the cap; a noisy spell does
    not stop a series early (spells pass), and the record says why it stopped."""
    settings = bench.Settings(samples=6, max_samples=24)
    assert _series([1.0, 1.01, 0.99, 1.0, 1.02, 0.98]).stop(settings, paired=True) == "precision met"
    assert _series([1.0, 0.7, 1.3] * 2).stop(settings, paired=True) is None
    noisy = [1.0, 0.6, 1.5, 0.8, 1.3, 0.7] * 2
    assert _series(noisy).stop(settings, paired=True) is None  # ±29 % after 12: goes on all the same
    assert _series(noisy * 2).stop(settings, paired=True) == "at the cap (24 samples)"


def test_a_series_within_reach_of_its_target_at_the_cap_goes_on_to_half_the_cap_again():
    """At the cap, ±5.5 % would be ±5 % by about 29 pairs: it goes on (and meets it at 25 here);
    ±8 % would need 63 and stops; one that goes on stops when it is out of reach again, or at
    36 pairs, and says which.  Without room beyond the cap (UDP's), it stops at the cap."""
    settings = bench.Settings(samples=6, max_samples=24)
    pattern = lambda spread: [1.0, 1 - spread, 1 + spread, 1 - spread / 2, 1 + spread / 2, 1.0] * 6
    assert _series(pattern(0.18)[:24]).stop(settings, paired=True) is None
    assert _series(pattern(0.18)[:25]).stop(settings, paired=True) == "precision met"
    assert _series(pattern(0.25)[:24]).stop(settings, paired=True) == "at the cap (24 samples)"
    assert (_series(pattern(0.18)[:24] + [2.0, 0.5, 0.5]).stop(settings, paired=True)
            == "at 27 samples, past the cap (24): out of reach again")
    assert (_series(pattern(0.2)[:36]).stop(settings, paired=True)
            == "at 36 samples, the most past the cap (24) for a figure within reach")
    no_further = bench.Settings(samples=6, max_samples=24, beyond_cap=1.0)
    assert _series(pattern(0.18)[:24]).stop(no_further, paired=True) == "at the cap (24 samples)"


def test_past_half_the_cap_again_a_series_goes_on_only_as_far_as_the_runs_reserve_affords():
    """±7 % at the cap (23 more pairs at 0.4 s: 9 s) goes on where the run's reserve has 30 s, and
    the pair is charged to it; with 5 s left, or at ±10 % (more than four times the cap), it
    stops, and says why; a series within half the cap again goes on free, as before."""
    settings = bench.Settings(samples=6, max_samples=24)
    pattern = lambda spread: [1.0, 1 - spread, 1 + spread, 1 - spread / 2, 1 + spread / 2, 1.0] * 6

    def at_the_cap(spread: float) -> bench._Series:
        found = _series(pattern(spread)[:24])
        found.pairs_seconds = 0.4 * 24
        return found
    found, reserve = at_the_cap(0.22), bench.Reserve(30.0)
    assert found.stop(settings, paired=True) == "at the cap (24 samples)"
    assert (found.stop(settings, True, bench.Reserve(5.0)) == "at the cap (24 samples); the ~23 more it needs "
            "would take ~9 s, the run's reserve has 5 s of 5 left")
    assert found.stop(settings, True, reserve) is None and found.on_reserve
    found.charge(0.5, reserve)
    assert reserve.spent == found.reserve_seconds == 0.5 and reserve.left == 29.5
    assert (at_the_cap(0.3).stop(settings, True, reserve) == "at the cap (24 samples); it would need ~102, "
            "more than the run's reserve takes a series to (96)")
    free = at_the_cap(0.18)
    assert free.stop(settings, True, reserve) is None and not free.on_reserve
    free.charge(0.5, reserve)
    assert reserve.spent == 0.5 and free.reserve_seconds == 0.0


def test_a_tcp_series_draws_on_the_runs_reserve_and_its_record_says_how_much(monkeypatch):
    """Through ``throughput``: a path at ±8.4 % at its cap of 12 (it would need 34 pairs, past the
    18 the cap allows) takes pairs on the reserve and meets ±5 % at 18; the record keeps the
    seconds it drew, and UDP never draws on it."""
    from contextlib import nullcontext

    spreads = iter([1.0, 0.84, 1.16, 0.92, 1.08, 1.0] * 100)

    def run(source, address, udp_rate=None, **_):
        time.sleep(0.005)  # what a pair costs is wall time
        bps = 10e9 if address == "veth" else 5e9 * (1.0 if udp_rate else next(spreads))
        return bench.iperf.Sample(bps, 0.0, 0.0, None if udp_rate else 0, 0.0 if udp_rate else None,
                                  0.01 if udp_rate else None, "", 0.2)
    monkeypatch.setattr(bench.iperf, "run", run)
    monkeypatch.setattr(bench.iperf, "server", lambda *_: nullcontext())
    node = type("Node", (), {"name": "n"})()
    settings, reserve = bench.Settings(samples=6, max_samples=12, machine_cpu=False), bench.Reserve(30.0)
    tcp, udp = bench.throughput("same-host", bench.Ends(node, node, "path"), settings,
                                reference=bench.Ends(node, node, "veth"), reserve=reserve)
    assert tcp.summary.n == 18 and tcp.extra["stopped"] == "precision met"
    assert tcp.extra["reserve_seconds"] == pytest.approx(reserve.spent, abs=0.01) and reserve.spent >= 0.06
    assert udp.extra["reserve_seconds"] == 0


def test_the_machines_noise_is_told_only_from_enough_samples():
    """How much the veth pair varied next to a path is a figure like any other: from fewer
    samples than an interval needs it is absent, never a made-up ±0 %."""
    from netconform.reporting.compare import drift, variation
    assert variation([10.0, 12.0]) is None
    assert variation([10.0, 11.0, 9.0, 10.0, 10.5, 9.5]) == pytest.approx(0.074, abs=0.002)
    record = {"metric": "tcp", "topology": "bridge", "path": "same-host",
              "extra": {"reference_samples": [10e9, 12e9]}}
    assert drift({"records": [record]})[-1].endswith("| fewer than 6 samples | fewer than 6 samples |")


def test_a_runs_conditions_say_what_its_figures_met_how_noisy_the_machine_was_and_how_far_they_went():
    """The line bench/runs.py and bench/variation.py print per run: a slow or imprecise run shows
    whether the machine was noisy (the veth pair's variation next to a path, least-most) and
    how many series went past the cap."""
    from netconform.reporting.compare import conditions

    def record(path: str, n: int, met: bool, references: list[float]) -> dict:
        return {"metric": "tcp", "topology": "ovs", "path": path, "n": n, "same_path_as": None,
                "precision": {"target": 0.05, "half_width": 0.04 if met else 0.06, "met": met},
                "extra": {"reference_samples": references, "cap": 24, "stopped": ""}}
    quiet, noisy = [10.0, 10.2, 9.8, 10.0, 10.1, 9.9], [10.0, 13.0, 7.0, 10.0, 12.0, 8.0]
    data = {"records": [record("same-host", 6, True, quiet), record("cross-host", 30, False, noisy),
                        {"metric": "udp", "topology": "ovs", "path": "same-host", "n": 6, "extra": {}}]}
    assert conditions(data) == ("1 of 2 TCP figures within their precision target; the veth pair varied "
                                "±1-30 % next to a path; 36 pairs taken, 1 series past the cap")
    data["records"][1]["extra"]["reserve_seconds"] = 4.2
    assert conditions(data).endswith("1 series past the cap (4 s of the run's reserve, by 1)")


def test_a_runs_benchmark_time_is_told_by_metric_and_sample_length_most_first():
    """What bench/runs.py --default prints under its wall time: the 1 s samples of lossy paths apart
    from the short ones, a referred record taking no time, an older document saying it has none."""
    from netconform.reporting.compare import time_spent

    def record(metric: str, wall: float, seconds: float | None = None, same: dict | None = None) -> dict:
        return {"metric": metric, "wall_seconds": wall, "same_path_as": same,
                "extra": {"seconds_per_sample": seconds} if seconds else {}}
    data = {"records": [record("tcp", 10.0, 0.2), record("tcp", 30.4, 1.0), record("tcp", 12.0, 0.2),
                        record("udp", 3.0, 0.25), record("icmp-rtt", 1.0), record("tcp", 0.0, None, {"lab": "a"})]}
    assert time_spent(data) == ("56 s measuring: tcp (1 s samples) 30 s (1 path), tcp (0.2 s samples) 22 s "
                                "(2 paths), udp 3 s (1 path), icmp-rtt 1 s (1 path)")
    assert time_spent({"records": [{"metric": "tcp", "extra": {}}]}) == \
        "the time each measurement took is not recorded"


def test_latency_is_percentiles_of_its_round_trips_without_a_ci():
    m = bench._latency("same-host", "a -> b", "tcp-rr", Percentiles(50.0, 80.0, 120.0, 4000, 20.0, 900.0),
                       2.1, 2.0)
    assert (m.summary.n, m.summary.median, m.summary.min, m.summary.max, m.summary.ci95) == \
        (4000, 50.0, 20.0, 900.0, None)
    assert m.extra["round_trips"] == 4000


class NoRoundTrips:
    """Answers pings; its TCP round trips break as a path that resets the connection would."""
    name = "b"
    kind = "container"

    def exec(self, argv, timeout=30, input=None):
        if argv[1:2] == ["rr"]:
            return Result(tuple(argv), 1, "", "prober rr: the connection broke: Connection reset by peer", 0.0)
        return Result(tuple(argv), 0, "\n".join(f"64 bytes: time=0.0{i} ms" for i in range(1, 9)), "", 0.0)


def test_a_failed_series_is_recorded_with_its_error_not_dropped():
    found = bench.round_trips("same-host", NoRoundTrips(), NoRoundTrips(), "10.0.0.2")
    assert [m.metric for m in found] == ["icmp-rtt", "tcp-rr"]
    icmp, rr = found
    assert icmp.error is None and icmp.summary.n == 8
    assert rr.summary is None and rr.error == ("prober rr b -> 10.0.0.2: prober rr: the connection broke: "
                                               "Connection reset by peer")


def test_the_tools_time_is_every_iperf3_run_so_the_overhead_is_only_the_harness(monkeypatch):
    """A paired series' warm-ups and reference samples are the tool's run too: counted as the
    harness's overhead, they made half of every TCP measurement look like waste."""
    from contextlib import nullcontext

    runs = []

    def run(source, address, **_):
        runs.append(address)
        return bench.iperf.Sample(10e9 if address == "path" else 20e9, 0.0, 0.0, 0, None, None, "", 0.25)
    monkeypatch.setattr(bench.iperf, "run", run)
    monkeypatch.setattr(bench.iperf, "server", lambda *_: nullcontext())
    node = type("Node", (), {"name": "n"})()
    settings = bench.Settings(samples=6, max_samples=6, machine_cpu=False)
    tcp, = bench.throughput("same-host", bench.Ends(node, node, "path"), settings, udp=False,
                            reference=bench.Ends(node, node, "veth"))
    assert len(runs) == 2 + 6 * 2  # two warm-ups, six pairs of one path and one veth sample
    assert tcp.tool_seconds == pytest.approx(0.25 * len(runs)) and tcp.ratio.median == pytest.approx(0.5)


@pytest.mark.parametrize("ceiling, offered", [(None, 5e9), (1e9, 0.5e9), (20e9, 5e9)])
def test_udp_is_offered_at_half_the_paths_tcp_or_of_the_udp_ceiling_the_lesser(monkeypatch, ceiling, offered):
    """Offered half a fast path's TCP rate, iperf3's UDP overran its own receiver on the shared
    core (the raw veth pair lost 22-31 %), and every fast path's loss was the tool's."""
    from contextlib import nullcontext

    rates = []

    def run(source, address, udp_rate=None, **_):
        rates.append(udp_rate)
        return bench.iperf.Sample(10e9, 0.0, 0.0, None if udp_rate else 0, 0.0 if udp_rate else None,
                                  0.01 if udp_rate else None, "", 0.1)
    monkeypatch.setattr(bench.iperf, "run", run)
    monkeypatch.setattr(bench.iperf, "server", lambda *_: nullcontext())
    node = type("Node", (), {"name": "n"})()
    settings = bench.Settings(samples=6, max_samples=6, machine_cpu=False, udp_ceiling=ceiling)
    tcp, udp = bench.throughput("same-host", bench.Ends(node, node, "path"), settings)
    assert udp.extra["rate"] == offered and set(rates[-6:]) == {offered} and udp.extra["udp_ceiling"] == ceiling


def test_compare_md_gives_udps_loss_and_jitter_with_the_rate_offered():
    from netconform.reporting.compare import udp_lines
    record = {"topology": "ovs", "scheme": "ovs-gre", "path": "cross-host", "route": "c1 -> c2", "metric": "udp",
              "runtime": "docker", "n": 3, "median": 0.17e9, "error": None, "same_path_as": None,
              "extra": {"rate": 0.18e9, "udp_ceiling": 0.76e9, "lost_percent": [0.0, 2.5, 0.5],
                        "jitter_ms": [0.01, 0.02, 0.3]}}
    lines = udp_lines({"baseline": [], "records": [record]})
    assert "the run's UDP ceiling, the lesser (0.76 Gbit/s" in lines[1]
    assert lines[-1] == "| ovs | ovs-gre | cross-host | c1 -> c2 | 3 | 0.18 Gbit/s | 0.17 Gbit/s | 0.50 (2.50) | 0.020 (0.300) |"
    record["extra"]["udp_ceiling"] = None
    assert "no UDP ceiling was measured" in udp_lines({"baseline": [], "records": [record]})[1]


def test_the_report_says_how_many_samples_were_taken_again_and_why():
    from netconform.reporting.compare import repeated
    record = {"extra": {"repeated": ["stress (pid 9) used a core meanwhile"] * 2}}
    clean = {"extra": {}}
    assert repeated({"records": [record, clean], "baseline": [clean]}) == \
        ["", "Samples taken again: 2 (stress (pid 9) used a core meanwhile (2x))."]
    assert "No sample was taken again" in repeated({"records": [clean], "baseline": []})[1]


def test_two_releases_of_one_engine_are_told_apart_in_tables_and_differences():
    """The engines matrix's benchmarks put Docker 26.1 and 28.5 (and Podman's) in one compare.md:
    named by topology and runtime alone, its rows and differences ("vxlan (podman, c1 -> c3) and
    vxlan (podman, c1 -> c3)") could not say which engine was which."""
    from netconform.reporting.compare import markdown
    records = [{**_cross("vxlan", ratio, ratio * 0.98, ratio * 1.02), "lab": f"vxlan@netns-{engine}",
                "provider": "netns", "runtime": engine.split("-")[0], "scheme": "vxlan", "unit": "bit/s", "n": 6, "median": ratio * 16e9,
                "min": ratio * 15e9, "max": ratio * 17e9, "ci95": None, "precision": None, "cpu_bound": False,
                "mtu": 1450, "error": None, "extra": {}}
               for engine, ratio in (("docker-26.1", 0.70), ("docker-28.5", 0.50))]
    text = markdown({"versions": {}, "baseline": [], "records": records, "differences": differences(records)})
    assert "| vxlan (docker-26.1) | vxlan | cross-host |" in text
    assert "| vxlan (docker-28.5) | vxlan | cross-host |" in text
    assert "vxlan (docker-28.5, c1 -> c3) is 29 % " in text and "slower than vxlan (docker-26.1, c1 -> c3)" in text


def _cross(topology: str, ratio: float, low: float, high: float) -> dict:
    return {"path": "cross-host", "metric": "tcp", "topology": topology, "runtime": "docker", "route": "c1 -> c3",
            "ratio_to_baseline": ratio, "ratio_ci95": [low, high], "same_path_as": None}


def test_a_difference_holds_for_all_comparisons_of_its_path_together():
    """Two schemes 13 % apart with ±4 % ratios differ when they are the only two; among seven
    (21 comparisons at once) the interval widens (Bonferroni) and the same two are no longer
    called different, while a scheme at a third of the others still is."""
    a, b = _cross("vxlan", 0.70, 0.672, 0.728), _cross("overlay", 0.609, 0.585, 0.633)
    [alone] = differences([a, b])
    assert alone["detectable"] and alone["comparisons"] == 1 and alone["percent"] == 13.0
    others = [_cross(f"s{i}", 0.9 + 0.1 * i, 0.86 + 0.1 * i, 0.94 + 0.1 * i) for i in range(4)]
    slow = _cross("weave", 0.015, 0.0144, 0.0156)
    among = {(d["slower"].split(" ")[0], d["than"].split(" ")[0]): d for d in differences([a, b, *others, slow])}
    assert among["overlay", "vxlan"]["comparisons"] == 21 and not among["overlay", "vxlan"]["detectable"]
    assert among["weave", "overlay"]["detectable"]


def test_a_difference_within_how_much_ratios_vary_from_run_to_run_is_not_called():
    """Two ratios 4 % apart, each measured to ±2 %: their own intervals alone would call them
    different, but a ratio varies from run to run by more than its interval shows (RUN_TO_RUN),
    so another run could rank them the other way; 15 % apart they differ."""
    a = _cross("vxlan", 0.70, 0.686, 0.714)
    near, far = _cross("overlay", 0.67, 0.657, 0.683), _cross("overlay", 0.595, 0.583, 0.607)
    assert relative(near, a, run_to_run=0)[2] < 1 and RUN_TO_RUN > 0.01
    [close] = differences([a, near])
    assert not close["detectable"] and close["percent"] == 4.3
    [apart] = differences([a, far])
    assert apart["detectable"] and apart["percent"] == 15.0
    # What a difference was computed with travels with it, and compare.md states that, not today's constant.
    assert apart["run_to_run"] == RUN_TO_RUN
    assert "±5.0 % (standard deviation)" in " ".join(difference_lines({"differences": [{**apart, "run_to_run": 0.05}]}))
