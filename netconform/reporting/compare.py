"""The comparison across topologies and schemes: compare.json, compare.md, SVG charts.

One record per (lab, path, metric).  A TCP figure is also a ratio to the
raw veth pair, measured as pairs (each path sample next to a veth sample,
``perf.bench``), with the ratio's own 95 % interval; other figures have no
ratio (one was not measured as a pair, so none is given).  ``differences``
states, for each two records of the same path kind and metric, whether one
is slower than the other at the precision reached, or that no difference
is detectable.  A record of a path whose datapath another lab of the run
already measured (``perf.paths.datapath``) has no figures of its own: it
names that lab.  The schema of compare.json is in docs/reports.md.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from statistics import NormalDist

from ..perf.bench import Measurement
from ..perf.stats import MIN_FOR_CI

SCHEMA_VERSION = 2
# How much a ratio to the veth pair varies from run to run beyond what its own interval shows (a
# standard deviation on the log scale): a series lasts 10-60 s, within one state of the machine
# and of its lab, which its samples cannot see past.  Nine default runs here (three sessions, 33
# TCP figures): 0.019 pooled, but unevenly (0 for some figures, 0.046 for linux-bridge's
# published port); this is the 90th percentile of the figures', so a difference is called only
# where another run would not rank the two the other way, for all but the most varying tenth.
# ``bench/variation.py`` measures it again.
RUN_TO_RUN = 0.033


@dataclass(frozen=True)
class Origin:
    """The lab of this run that measured a datapath, on which route, and the metrics (with
    their units) it measured there."""

    lab: str
    topology: str
    route: str
    metrics: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Record:
    lab: str
    topology: str
    scheme: str
    provider: str
    runtime: str
    mtu: int | None
    measurement: Measurement
    same_as: Origin | None = None  # the figures are that lab's: the same datapath, measured once


@dataclass(frozen=True)
class Baseline:
    """One measurement of the raw veth pair, ``at`` seconds into the run, with the UDP goodput
    iperf3 got through it offered as fast as it sends (``bench.udp_ceiling``; None if it failed)."""

    at: float
    measurements: tuple[Measurement, ...]
    udp_ceiling: float | None = None


@dataclass
class Comparison:
    baselines: list[Baseline] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    # The first lab of the run to measure each datapath (perf.paths.datapath), per suite test.
    origins: dict[tuple, Origin] = field(default_factory=dict)

    def as_json(self) -> dict:
        def entry(m: Measurement, **where) -> dict:
            s = m.summary
            figures = ({"median": s.median, "min": s.min, "max": s.max, "n": s.n,
                        "ci95": list(s.ci95) if s.ci95 else None, "spread": round(s.spread, 4)}
                       if s else dict.fromkeys(("median", "min", "max", "n", "ci95", "spread")))
            ratio = m.ratio
            return {**where, "path": m.path, "route": m.route, "metric": m.metric, "unit": m.unit,
                    **figures, "error": m.error,
                    "ratio_to_baseline": ratio.median if ratio else None,
                    "ratio_ci95": list(ratio.ci95) if ratio and ratio.ci95 else None,
                    "precision": None if m.precision is None or s is None else
                    {"target": m.precision, "half_width": m.precise, "met": m.met},
                    "cpu_bound": m.cpu_bound, "samples": list(m.samples), "extra": m.extra,
                    "versions": self.versions,
                    "wall_seconds": round(m.wall_seconds, 3),
                    "harness_overhead_seconds": round(m.overhead_seconds, 3)}

        def origin(r: Record) -> dict | None:
            return r.same_as and {"lab": r.same_as.lab, "topology": r.same_as.topology, "route": r.same_as.route}
        records = [entry(r.measurement, lab=r.lab, topology=r.topology, scheme=r.scheme,
                         provider=r.provider, runtime=r.runtime, mtu=r.mtu, same_path_as=origin(r))
                   for r in self.records]
        return {
            "schema": SCHEMA_VERSION,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": self.versions,
            "baseline": [entry(m, lab="baseline", topology="baseline", scheme="veth-pair", provider="netns",
                               runtime="none", mtu=1500, at_seconds=round(b.at, 1))
                         for b in self.baselines for m in b.measurements],
            "records": records,
            "differences": differences(records),
        }

    def write(self, directory: Path) -> list[Path]:
        return write(self.as_json(), directory)


def merge(documents: list[dict]) -> dict:
    """Several runs' compare.json in one (the nightly matrix's jobs, say).

    Ratios stay as each run measured them, paired with its own veth pair.
    """
    versions: dict[str, str] = {}
    for doc in documents:
        versions.update(doc.get("versions", {}))
    return {"schema": SCHEMA_VERSION, "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": versions,
            "baseline": [b for doc in documents for b in doc.get("baseline", [])],
            "records": (records := [r for doc in documents for r in doc.get("records", [])]),
            "differences": differences(records)}


def write(data: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {"compare.json": json.dumps(data, indent=2) + "\n", "compare.md": markdown(data),
             "throughput.svg": throughput_chart(data), "latency.svg": latency_chart(data)}
    for name, text in files.items():
        (directory / name).write_text(text)
    return [directory / name for name in files]


def _rows(data: dict) -> list[dict]:
    # The first baseline stands for the machine in the tables; merged runs keep their own ratios.
    return [*data["baseline"][: len({b["metric"] for b in data["baseline"]})], *data["records"]]


def differences(records: list[dict]) -> list[dict]:
    """For each two measured records of the same path kind and metric, both with a ratio to
    the veth pair measured as pairs: how much slower the slower one is, with an interval that
    holds for all the comparisons of that path kind and metric together at 95 % (the two
    ratios' intervals combined on a log scale, so the veth pair cancels, with how much each
    ratio varies from run to run beyond its interval (``RUN_TO_RUN``), and widened for the
    number of comparisons: Bonferroni), or that no difference is detectable at the precision
    reached (the interval includes none).  Without the widening, one run of seven cross-host
    schemes (21 comparisons) called overlay and vxlan, both kernel VXLAN, different; two
    others ranked them the other way.  Without the run-to-run part, 18 of the 485 differences
    nine runs called were ranked the other way by another run; with the pooled 0.019, 1 of 419
    (vxlan 16 % slower than overlay, in a run where a spell slowed vxlan's whole series); with
    ``RUN_TO_RUN``, none of 375."""
    measured = [r for r in records if r.get("ratio_ci95") and not r.get("same_path_as")]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in measured:
        groups.setdefault((r["path"], r["metric"]), []).append(r)
    found = []
    for (path, metric), group in groups.items():
        comparisons = len(group) * (len(group) - 1) // 2
        for i, x in enumerate(group):
            for y in group[i + 1:]:
                slow, fast = (x, y) if x["ratio_to_baseline"] <= y["ratio_to_baseline"] else (y, x)
                q, low, high = relative(slow, fast, comparisons)
                found.append({"path": path, "metric": metric, "slower": _label(slow), "than": _label(fast),
                              "percent": round(100 * (1 - q), 1),
                              "ci95_percent": [round(100 * (1 - high), 1), round(100 * (1 - low), 1)],
                              "comparisons": comparisons, "run_to_run": RUN_TO_RUN, "detectable": high < 1})
    return found


def relative(x: dict, y: dict, comparisons: int = 1, run_to_run: float = RUN_TO_RUN
             ) -> tuple[float, float, float] | None:
    """Record ``x``'s figure over ``y``'s, from their ratios to the veth pair (each measured as
    pairs, so the machine's drift between the two cancels), with a 95 % interval (the two
    ratios' intervals combined on a log scale, each read as 1.96 standard errors, with
    ``run_to_run`` as a further standard deviation of each), widened to hold for
    ``comparisons`` made together (the joint one at the Bonferroni quantile); None unless both
    have such a ratio."""
    if not (x.get("ratio_to_baseline") and x.get("ratio_ci95") and y.get("ratio_to_baseline")
            and y.get("ratio_ci95")):
        return None
    q = x["ratio_to_baseline"] / y["ratio_to_baseline"]
    z = NormalDist().inv_cdf(0.975)
    widen = NormalDist().inv_cdf(1 - 0.025 / max(comparisons, 1)) / z
    h = math.hypot(_log_half(x), _log_half(y), math.sqrt(2) * z * run_to_run) * widen
    return q, q * math.exp(-h), min(q * math.exp(h), 1e9)


def _log_half(r: dict) -> float:
    low, high = r["ratio_ci95"]
    m = r["ratio_to_baseline"]
    return max(math.log(m / low) if low > 0 else math.inf, math.log(high / m))


def _engine(r: dict) -> str:
    """The engine a record's lab ran: its id after the provider ("vxlan@netns-podman-5.8" ->
    "podman-5.8"), so that two releases of one runtime are told apart; the runtime where the id
    has no such part (a baseline, an older document)."""
    lab, provider = r.get("lab", ""), r.get("provider", "")
    engine = lab.split("@", 1)[1] if "@" in lab else ""
    return engine.removeprefix(f"{provider}-") if engine else r["runtime"]


def _label(r: dict) -> str:
    return f"{r['topology']} ({_engine(r)}, {r['route']})"


def _topology(data: dict):
    """How a table names a record's lab: its topology, with its engine where the document holds
    more than one (the engines matrix's benchmarks: "bridge (docker-26.1)")."""
    several = len({_engine(r) for r in data["records"]}) > 1
    return lambda r: f"{r['topology']} ({_engine(r)})" if several and r["topology"] != "baseline" else r["topology"]


def difference_lines(data: dict) -> list[str]:
    rows = data.get("differences", [])
    if not rows:
        return []
    allowance = rows[0]["run_to_run"]
    lines = ["", "Differences (same path kind and metric; from the ratios to the veth pair, each measured "
                 "as pairs, so the machine's drift cancels; intervals that allow for a ratio's variation "
                 f"from run to run beyond its own interval, ±{100 * allowance:.1f} % (standard deviation), and "
                 "hold at 95 % for all the comparisons of a path kind and metric together):", ""]
    for d in sorted(rows, key=lambda d: (d["path"], d["metric"], not d["detectable"], -d["percent"])):
        low, high = d["ci95_percent"]
        if d["detectable"]:
            lines.append(f"- {d['path']} {d['metric']}: {d['slower']} is {d['percent']:.0f} % "
                         f"({low:.0f}–{high:.0f} %) slower than {d['than']}")
        else:
            lines.append(f"- {d['path']} {d['metric']}: {d['slower']} and {d['than']}: no difference "
                         f"detectable at this precision ({d['percent']:.0f} %, interval {low:.0f}–{high:.0f} %)")
    return lines


def markdown(data: dict) -> str:
    named = _topology(data)
    rows = ["# Comparison across schemes", "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(data["versions"].items())), "",
            "Throughput: median of n samples (each one short iperf3 test, client and server pinned "
            "as `extra.cores` says) with min–max and the median's 95% interval (none below 6 "
            "samples); precision: the interval's half-width against the target (met or not); "
            "× veth pair: the per-pair ratios to the raw veth pair sampled alternately with the path "
            "(TCP only), their Hodges-Lehmann estimate with its 95% Wilcoxon interval.  A measurement that failed shows its "
            "error and no figure; a path whose datapath (engine, scheme realisation, both ends, MTU) "
            "another lab of the run measured names that lab instead of figures of its own.", "",
            "| topology | scheme | path | route | metric | n | median | min–max | ci95 | precision | "
            "× veth pair (ci95) | CPU-bound | MTU |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows(data):
        if r["unit"] != "bit/s":
            continue
        where = f"| {named(r)} | {r['scheme']} | {r['path']} | {r['route']} | {r['metric']} |"
        if r.get("error") or r.get("same_path_as"):
            rows.append(f"{where} {_absent(r)} ||||||||")
            continue
        ci = f"{_gbit(r['ci95'][0])}–{_gbit(r['ci95'][1])}" if r["ci95"] else "—"
        rows.append(f"{where} {r['n']} | {_gbit(r['median'])} | {_gbit(r['min'])}–{_gbit(r['max'])} | "
                    f"{ci} | {_precision(r)} | {_ratio(r)} | {'yes' if r['cpu_bound'] else 'no'} | {r['mtu'] or ''} |")
    rows += udp_lines(data)
    rows += ["", "Latency (microseconds, round trip): percentiles of one series of n round trips "
                 "(no confidence interval and no ratio: one series, not repeated samples or pairs).", "",
             "| topology | scheme | path | route | metric | n | min | p50 | p90 | p99 | max |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows(data):
        if r["unit"] == "bit/s":
            continue
        where = f"| {named(r)} | {r['scheme']} | {r['path']} | {r['route']} | {r['metric']} |"
        if r.get("error") or r.get("same_path_as"):
            rows.append(f"{where} {_absent(r)} ||||||")
            continue
        e = r["extra"]
        rows.append(f"{where} {r['n']} | {r['min']:.1f} | {e['p50']:.1f} | {e['p90']:.1f} | "
                    f"{e['p99']:.1f} | {r['max']:.1f} |")
    return "\n".join(rows + precision_line(data) + repeated(data) + difference_lines(data) + drift(data)) + "\n"


def udp_lines(data: dict) -> list[str]:
    """UDP's own figures, loss and jitter as the receiver measured them (median of the samples,
    and the most), with the rate each path was offered: the goodput alone, in the throughput
    table, cannot say whether a path drops datagrams."""
    measured = [r for r in _rows(data) if r["metric"] == "udp" and not r.get("error") and not r.get("same_path_as")]
    if not measured:
        return []
    named = _topology(data)
    ceilings = {r["extra"].get("udp_ceiling") for r in measured} - {None}
    offered = (f"half the path's TCP median or of the run's UDP ceiling, the lesser ("
               f"{', '.join(_gbit(c) for c in sorted(ceilings))}: what iperf3's UDP got through the raw veth pair "
               "offered as fast as it sends), so that what is lost is the path's, not the tool's" if ceilings else
               "half the path's TCP median (no UDP ceiling was measured: where that is more than iperf3's UDP "
               "carries, the loss is the tool's)")
    rows = ["", f"UDP: offered at {offered}; loss and jitter as the receiver measured them, the median "
                "of the samples (the most).", "",
            "| topology | scheme | path | route | n | offered | goodput | loss % | jitter ms |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in measured:
        e = r["extra"]
        rows.append(f"| {named(r)} | {r['scheme']} | {r['path']} | {r['route']} | {r['n']} | {_gbit(e['rate'])} | "
                    f"{_gbit(r['median'])} | {statistics.median(e['lost_percent']):.2f} ({max(e['lost_percent']):.2f}) | "
                    f"{statistics.median(e['jitter_ms']):.3f} ({max(e['jitter_ms']):.3f}) |")
    return rows


def precision_line(data: dict) -> list[str]:
    """How many measured TCP figures reached the precision they were sampled for, so a user sees
    at once how far the run's figures can be told apart."""
    measured = [r for r in data["records"] if r["metric"].startswith("tcp") and r["unit"] == "bit/s"
                and r.get("precision") and r["precision"]["half_width"] is not None]
    if not measured:
        return []
    met = [r for r in measured if r["precision"]["met"]]
    widths = sorted(r["precision"]["half_width"] for r in measured)
    return ["", f"Precision: {len(met)} of {len(measured)} TCP figures met their target "
                f"(95 % half-width within ±{100 * measured[0]['precision']['target']:.0f} %); "
                f"half-widths ±{100 * widths[0]:.1f} % to ±{100 * widths[-1]:.1f} %, "
                f"median ±{100 * statistics.median(widths):.1f} %."]


def repeated(data: dict) -> list[str]:
    """How many samples were taken again (another process used a core meanwhile, or iperf3
    reported what it cannot have meant), and why, so that a user sees how clean the run was."""
    reasons = [why for r in data["records"] + data["baseline"] for why in r["extra"].get("repeated", [])]
    if not reasons:
        return ["", "No sample was taken again: no process outside the measurements used a core "
                    "during one, and iperf3 reported nothing impossible."]
    counted: dict[str, int] = {}
    for why in reasons:
        counted[why] = counted.get(why, 0) + 1
    top = "; ".join(f"{why} ({n}x)" for why, n in sorted(counted.items(), key=lambda kv: -kv[1])[:5])
    return ["", f"Samples taken again: {len(reasons)} ({top})."]


def drift(data: dict) -> list[str]:
    """How the reference (the veth pair) moved over the run: the median of its samples next to
    each record's, smallest and largest (ratios are per pair, so this drift does not enter them);
    and how much its samples varied next to each path's, least and most: the machine's own noise
    at the time, which says whether a figure that missed its precision was limited by its path
    or by the machine (a veth pair varying as much as the path's ratio does)."""
    lines = []
    for metric in ("tcp", "tcp-parallel"):
        paired = [r for r in data["records"] if r["metric"] == metric and r["extra"].get("reference_samples")]
        if paired:
            medians = [statistics.median(r["extra"]["reference_samples"]) for r in paired]
            noise = reference_noise(paired)
            ends = ([f"±{100 * v:.0f} % ({where})" for v, where in (noise[0], noise[-1])] if noise
                    else [f"fewer than {MIN_FOR_CI} samples"] * 2)
            lines.append(f"| {metric} | {len(medians)} | {_gbit(min(medians))} | {_gbit(max(medians))} | "
                         f"{max(medians) / min(medians):.2f} | {ends[0]} | {ends[1]} |")
    return (["", "The veth pair over the run (its samples next to each path's; ratios are per pair, so "
                 "this drift does not enter them; how much one of its samples varied, robustly: the machine's "
                 "own noise meanwhile):", "",
             "| metric | paths | smallest median | largest median | largest / smallest | "
             "variation, least (next to) | variation, most (next to) |",
             "|---|---|---|---|---|---|---|", *lines] if lines else [])


def reference_noise(records: list[dict]) -> list[tuple[float, str]]:
    """How much the veth pair's samples varied next to each paired record's (``variation``), with
    where, least first; records with too few samples for it are left out."""
    return sorted((found, f"{r['topology']} {r['path']}") for r in records
                  if (found := variation(r["extra"].get("reference_samples", []))) is not None)


def conditions(data: dict) -> str:
    """A run's benchmarks in one line: how many TCP figures met their precision, how much the veth
    pair varied next to a path, least and most (the machine's noise: here ±2-10 % in a quiet hour,
    up to ±14-27 % in a noisy spell of the host's other guests), and the pairs taken, with how
    many series went past the cap and what they took of the run's reserve (``bench.Reserve``);
    so that a slow or imprecise run says whether the machine was the cause."""
    paired = [r for r in data["records"] if r["metric"] == "tcp" and r["extra"].get("reference_samples")
              and not r.get("same_path_as")]
    met = sum(1 for r in paired if r.get("precision") and r["precision"]["met"])
    noise = reference_noise(paired)
    varied = (f"the veth pair varied ±{100 * noise[0][0]:.0f}-{100 * noise[-1][0]:.0f} % next to a path"
              if noise else "the veth pair's variation not known (too few samples)")
    past = sum(1 for r in paired if r["n"] > r["extra"].get("cap", r["n"]))
    drew = [r["extra"]["reserve_seconds"] for r in paired if r["extra"].get("reserve_seconds")]
    reserve = f" ({sum(drew):.0f} s of the run's reserve, by {len(drew)})" if drew else ""
    return (f"{met} of {len(paired)} TCP figures within their precision target; {varied}; "
            f"{sum(r['n'] for r in paired)} pairs taken, {past} series past the cap{reserve}")


def time_spent(data: dict) -> str:
    """Where a run's benchmark time went, in one line: its measurements' wall seconds by metric,
    throughput by seconds a sample (the 1 s samples of lossy paths apart from the short ones),
    most first, with the paths each took; so that a run over its target says what took the time.
    Records referring to another lab's measurement took none; a document from before
    ``wall_seconds`` was recorded says so."""
    spent: dict[str, list[float]] = {}
    for r in data["records"]:
        if r.get("same_path_as") or r.get("wall_seconds") is None:
            continue
        seconds = r["extra"].get("seconds_per_sample")
        kind = f"{r['metric']} ({seconds:g} s samples)" if seconds and r["metric"].startswith("tcp") else r["metric"]
        spent.setdefault(kind, []).append(r["wall_seconds"])
    if not spent:
        return "the time each measurement took is not recorded"
    ordered = sorted(spent.items(), key=lambda item: -sum(item[1]))
    return (f"{sum(map(sum, spent.values())):.0f} s measuring: "
            + ", ".join(f"{kind} {sum(walls):.0f} s ({len(walls)} path{'s' * (len(walls) > 1)})"
                        for kind, walls in ordered))


def variation(values: list[float]) -> float | None:
    """How much one sample varies, robustly (a slow sample in ten does not swell it): the median
    absolute deviation of the samples' logarithms, scaled to a standard deviation (x 1.4826,
    exact for normal noise), as a fraction of the median; None below the samples a 95 %
    interval needs (a spread of fewer says little)."""
    logs = [math.log(v) for v in values if v > 0]
    if len(logs) < MIN_FOR_CI:
        return None
    centre = statistics.median(logs)
    return 1.4826 * statistics.median(abs(x - centre) for x in logs)


def _precision(r: dict) -> str:
    p = r.get("precision")
    if not p or p["half_width"] is None:
        return "no interval"
    if p["met"]:
        return f"±{100 * p['half_width']:.0f} % (met: {100 * p['target']:.0f} %)"
    why = [f"not met: {100 * p['target']:.0f} %"] + ([r["extra"]["stopped"]] if r["extra"].get("stopped") else [])
    if (noise := variation(r["extra"].get("reference_samples", []))) is not None:
        why.append(f"the veth pair ±{100 * noise:.0f} % meanwhile")
    return f"±{100 * p['half_width']:.0f} % ({'; '.join(why)})"


def _absent(r: dict) -> str:
    """The cell of a record without figures: why."""
    if r.get("error"):
        return f"failed: {_cell(r['error'])}"
    o = r["same_path_as"]
    return f"same datapath as {o['topology']} ({o['route']}), measured there"


def _ratio(r: dict) -> str:
    if r["ratio_to_baseline"] is None:
        return ""
    ci = r.get("ratio_ci95")
    return f"{r['ratio_to_baseline']:.2f}" + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci else "")


def _cell(text: str) -> str:
    return text.splitlines()[0][:160].replace("|", "/")


def throughput_chart(data: dict) -> str:
    bars = [r for r in _rows(data) if r["metric"] == "tcp" and r["median"]]
    return bar_chart("TCP throughput, one stream (Gbit/s; bar: median, whisker: its 95% interval)",
                      [(f"{r['topology']} {r['path']}", r["median"] / 1e9, *(v / 1e9 for v in r["ci95"] or
                                                                             (r["median"], r["median"])))
                       for r in bars])


def latency_chart(data: dict) -> str:
    bars = [r for r in _rows(data) if r["metric"] == "tcp-rr" and r["median"]]
    return bar_chart("TCP request/response round trip (µs; bar: p50, whisker: p50–p99)",
                      [(f"{r['topology']} {r['path']}", r["extra"]["p50"], r["extra"]["p50"],
                        r["extra"]["p99"]) for r in bars])


def _gbit(bps: float) -> str:
    return f"{bps / 1e9:.2f} Gbit/s"


def bar_chart(title: str, bars: list[tuple[str, float, float, float]]) -> str:
    """A horizontal bar chart with whiskers, as self-contained SVG."""
    row, left, width = 22, 260, 460
    top = max((b[3] for b in bars), default=1.0) or 1.0
    height = 50 + row * len(bars)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, low, high) in enumerate(bars):
        y = 40 + i * row
        scale = width / top
        out += [f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>',
                f'<rect x="{left}" y="{y + 2}" width="{value * scale:.1f}" height="14" fill="#4a7ab7"/>',
                f'<line x1="{left + low * scale:.1f}" x2="{left + high * scale:.1f}" y1="{y + 9}" '
                f'y2="{y + 9}" stroke="#222" stroke-width="1.5"/>',
                f'<text x="{left + value * scale + 6:.1f}" y="{y + 13}">{value:.2f}</text>']
    out.append("</svg>")
    return "\n".join(out) + "\n"


def machine_versions() -> dict[str, str]:
    """What ran the measurements, beyond the per-lab tools."""
    return {"kernel": platform.release(), "python": platform.python_version(),
            "cpus": str(os.cpu_count())}
