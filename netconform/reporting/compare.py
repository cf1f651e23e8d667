"""The comparison across topologies and schemes: compare.json, compare.md, SVG charts.

One record per (lab, path, metric).  Every figure is also a ratio to the
baseline measured in the same run (a raw veth pair), the one measured last
before it: >1 is faster for throughput; for latency it is how many times
the baseline's p50 it takes.  The baseline is measured again when it grows
old (``--baseline-every``), and its drift over the run is reported.  A
record of a path whose datapath another lab of the run already measured
(``perf.paths.datapath``) has no figures of its own: it names that lab.
The schema of compare.json is in docs/reports.md.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from ..perf.bench import Measurement

SCHEMA_VERSION = 1


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
    baseline: int = 0  # the index of the baseline it is compared with


@dataclass(frozen=True)
class Baseline:
    """One measurement of the raw veth pair, ``at`` seconds into the run."""

    at: float
    measurements: tuple[Measurement, ...]


@dataclass
class Comparison:
    baselines: list[Baseline] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    # The first lab of the run to measure each datapath (perf.paths.datapath), per suite test.
    origins: dict[tuple, Origin] = field(default_factory=dict)

    def ratio(self, m: Measurement, baseline: int = 0) -> float | None:
        if not self.baselines:
            return None
        base = next((b for b in self.baselines[baseline].measurements if b.metric == m.metric and b.summary), None)
        if base is None or m.summary is None or not base.summary.median or not m.summary.median:
            return None
        # Throughput: fraction of the machine's limit; latency: times the baseline's p50.
        return m.summary.median / base.summary.median

    def as_json(self) -> dict:
        def entry(m: Measurement, baseline: int, **where) -> dict:
            s = m.summary
            figures = ({"median": s.median, "min": s.min, "max": s.max, "n": s.n,
                        "ci95": list(s.ci95) if s.ci95 else None, "spread": round(s.spread, 4)}
                       if s else dict.fromkeys(("median", "min", "max", "n", "ci95", "spread")))
            return {**where, "path": m.path, "route": m.route, "metric": m.metric, "unit": m.unit,
                    **figures, "error": m.error, "ratio_to_baseline": self.ratio(m, baseline),
                    "baseline": baseline,
                    "cpu_bound": m.cpu_bound, "samples": list(m.samples), "extra": m.extra,
                    "versions": self.versions,
                    "harness_overhead_seconds": round(m.overhead_seconds, 3)}

        def origin(r: Record) -> dict | None:
            return r.same_as and {"lab": r.same_as.lab, "topology": r.same_as.topology, "route": r.same_as.route}
        return {
            "schema": SCHEMA_VERSION,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": self.versions,
            "baseline": [entry(m, i, lab="baseline", topology="baseline", scheme="veth-pair", provider="netns",
                               runtime="none", mtu=1500, at_seconds=round(b.at, 1))
                         for i, b in enumerate(self.baselines) for m in b.measurements],
            "records": [entry(r.measurement, r.baseline, lab=r.lab, topology=r.topology, scheme=r.scheme,
                              provider=r.provider, runtime=r.runtime, mtu=r.mtu, same_path_as=origin(r))
                        for r in self.records],
        }

    def write(self, directory: Path) -> list[Path]:
        return write(self.as_json(), directory)


def merge(documents: list[dict]) -> dict:
    """Several runs' compare.json in one (the nightly matrix's jobs, say).

    Ratios stay as each run computed them against its own baseline.
    """
    versions: dict[str, str] = {}
    for doc in documents:
        versions.update(doc.get("versions", {}))
    return {"schema": SCHEMA_VERSION, "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": versions,
            "baseline": [b for doc in documents for b in doc.get("baseline", [])],
            "records": [r for doc in documents for r in doc.get("records", [])]}


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


def markdown(data: dict) -> str:
    rows = ["# Comparison across schemes", "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(data["versions"].items())), "",
            "Throughput: median of n samples with min–max and the 95% confidence interval "
            "of the mean (none for a single sample); ratio to the raw veth pair measured in the "
            "same run, measured last before it.  A measurement that failed shows its error and no "
            "figure; a path whose datapath (engine, scheme realisation, both ends, MTU) another lab "
            "of the run measured names that lab instead of figures of its own.", "",
            "| topology | scheme | path | route | metric | n | median | min–max | ci95 | × baseline | CPU-bound | MTU |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows(data):
        if r["unit"] != "bit/s":
            continue
        where = f"| {r['topology']} | {r['scheme']} | {r['path']} | {r['route']} | {r['metric']} |"
        if r.get("error") or r.get("same_path_as"):
            rows.append(f"{where} {_absent(r)} |||||||")
            continue
        ci = f"{_gbit(r['ci95'][0])}–{_gbit(r['ci95'][1])}" if r["ci95"] else "—"
        rows.append(f"{where} {r['n']} | {_gbit(r['median'])} | {_gbit(r['min'])}–{_gbit(r['max'])} | "
                    f"{ci} | {_ratio(r)} | {'yes' if r['cpu_bound'] else 'no'} | {r['mtu'] or ''} |")
    rows += ["", "Latency (microseconds, round trip): percentiles of one series of n round trips "
                 "(no confidence interval: one series, not repeated samples).", "",
             "| topology | scheme | path | route | metric | n | min | p50 | p90 | p99 | max | × baseline p50 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows(data):
        if r["unit"] == "bit/s":
            continue
        where = f"| {r['topology']} | {r['scheme']} | {r['path']} | {r['route']} | {r['metric']} |"
        if r.get("error") or r.get("same_path_as"):
            rows.append(f"{where} {_absent(r)} |||||||")
            continue
        e = r["extra"]
        rows.append(f"{where} {r['n']} | {r['min']:.1f} | {e['p50']:.1f} | {e['p90']:.1f} | "
                    f"{e['p99']:.1f} | {r['max']:.1f} | {_ratio(r)} |")
    return "\n".join(rows + drift(data)) + "\n"


def drift(data: dict) -> list[str]:
    """How the baseline moved over the run: each measurement's median per metric, and the
    largest over the smallest (1.00: steady; ratios compare with the baseline measured last
    before them, so drift between labs does not enter them)."""
    by_metric: dict[str, list[dict]] = {}
    for b in data["baseline"]:
        by_metric.setdefault(b["metric"], []).append(b)
    lines = ["", "Baseline drift (the raw veth pair, each time it was measured):", "",
             "| metric | measured at | medians | max / min |", "|---|---|---|---|"]
    for metric, found in by_metric.items():
        medians = [b["median"] for b in found if b["median"]]
        show = _gbit if found[0]["unit"] == "bit/s" else (lambda v: f"{v:.1f} us")
        spread = f"{max(medians) / min(medians):.2f}" if len(medians) > 1 else "measured once"
        when = ", ".join(f"{b.get('at_seconds', 0):.0f} s" for b in found)
        lines.append(f"| {metric} | {when} | {', '.join(show(v) for v in medians) or 'failed'} | {spread} |")
    return lines if by_metric else []


def _absent(r: dict) -> str:
    """The cell of a record without figures: why."""
    if r.get("error"):
        return f"failed: {_cell(r['error'])}"
    o = r["same_path_as"]
    return f"same datapath as {o['topology']} ({o['route']}), measured there"


def _ratio(r: dict) -> str:
    return "" if r["ratio_to_baseline"] is None else f"{r['ratio_to_baseline']:.2f}"


def _cell(text: str) -> str:
    return text.splitlines()[0][:160].replace("|", "/")


def throughput_chart(data: dict) -> str:
    bars = [r for r in _rows(data) if r["metric"] == "tcp" and r["median"]]
    return bar_chart("TCP throughput, one stream (Gbit/s; bar: median, whisker: min–max)",
                      [(f"{r['topology']} {r['path']}", r["median"] / 1e9, r["min"] / 1e9, r["max"] / 1e9)
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
