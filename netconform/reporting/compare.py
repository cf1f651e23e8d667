"""The comparison across topologies and schemes: compare.json, compare.md, SVG charts.

One record per (lab, path, metric).  Every figure is also a ratio to the
baseline measured in the same run (a raw veth pair): >1 is faster for
throughput; for latency it is how many times the baseline's p50 it takes.
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
class Record:
    lab: str
    topology: str
    scheme: str
    provider: str
    runtime: str
    mtu: int | None
    measurement: Measurement


@dataclass
class Comparison:
    baseline: list[Measurement] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def ratio(self, m: Measurement) -> float | None:
        base = next((b for b in self.baseline if b.metric == m.metric and b.summary), None)
        if base is None or m.summary is None or not base.summary.median or not m.summary.median:
            return None
        # Throughput: fraction of the machine's limit; latency: times the baseline's p50.
        return m.summary.median / base.summary.median

    def as_json(self) -> dict:
        def entry(m: Measurement, **where) -> dict:
            s = m.summary
            figures = ({"median": s.median, "min": s.min, "max": s.max, "n": s.n,
                        "ci95": list(s.ci95) if s.ci95 else None, "spread": round(s.spread, 4)}
                       if s else dict.fromkeys(("median", "min", "max", "n", "ci95", "spread")))
            return {**where, "path": m.path, "route": m.route, "metric": m.metric, "unit": m.unit,
                    **figures, "error": m.error, "ratio_to_baseline": self.ratio(m),
                    "cpu_bound": m.cpu_bound, "samples": list(m.samples), "extra": m.extra,
                    "versions": self.versions,
                    "harness_overhead_seconds": round(m.overhead_seconds, 3)}
        return {
            "schema": SCHEMA_VERSION,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": self.versions,
            "baseline": [entry(m, lab="baseline", topology="baseline", scheme="veth-pair",
                               provider="netns", runtime="none", mtu=1500) for m in self.baseline],
            "records": [entry(r.measurement, lab=r.lab, topology=r.topology, scheme=r.scheme,
                              provider=r.provider, runtime=r.runtime, mtu=r.mtu) for r in self.records],
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
            "same run.  A measurement that failed shows its error and no figure.", "",
            "| topology | scheme | path | route | metric | n | median | min–max | ci95 | × baseline | CPU-bound | MTU |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows(data):
        if r["unit"] != "bit/s":
            continue
        where = f"| {r['topology']} | {r['scheme']} | {r['path']} | {r['route']} | {r['metric']} |"
        if r.get("error"):
            rows.append(f"{where} failed: {_cell(r['error'])} |||||||")
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
        if r.get("error"):
            rows.append(f"{where} failed: {_cell(r['error'])} |||||||")
            continue
        e = r["extra"]
        rows.append(f"{where} {r['n']} | {r['min']:.1f} | {e['p50']:.1f} | {e['p90']:.1f} | "
                    f"{e['p99']:.1f} | {r['max']:.1f} | {_ratio(r)} |")
    return "\n".join(rows) + "\n"


def _ratio(r: dict) -> str:
    return "" if r["ratio_to_baseline"] is None else f"{r['ratio_to_baseline']:.2f}"


def _cell(text: str) -> str:
    return text.splitlines()[0][:160].replace("|", "/")


def throughput_chart(data: dict) -> str:
    bars = [r for r in _rows(data) if r["metric"] == "tcp" and not r.get("error")]
    return bar_chart("TCP throughput, one stream (Gbit/s; bar: median, whisker: min–max)",
                      [(f"{r['topology']} {r['path']}", r["median"] / 1e9, r["min"] / 1e9, r["max"] / 1e9)
                       for r in bars])


def latency_chart(data: dict) -> str:
    bars = [r for r in _rows(data) if r["metric"] == "tcp-rr" and not r.get("error")]
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
