"""Fidelity: the same topology on two providers, check by check and path by path.

A lab of namespaces on one machine is cheap; VMs and real hosts are what
people run.  Given runs' ``conformance.json`` and ``compare.json`` (as
``--report-dir`` writes them), this pairs every lab of a topology on the
reference provider (netns) with the same topology on each other provider
and says where the verdicts agree (every check, every probe of the
reachability matrix) and how throughput and latency differ (the other
provider's median over the reference's, per path and metric).
``netconform report`` writes it as ``fidelity.{json,md,svg}`` when the runs
it merges hold such pairs.
"""

from __future__ import annotations

import json
from pathlib import Path

from .perf.compare import bar_chart

REFERENCE = "netns"


def pairs(labs: dict[str, dict]) -> list[tuple[str, str]]:
    """(reference lab id, other lab id) for each topology run on netns and elsewhere."""
    by_topology: dict[str, dict[str, str]] = {}
    for lab_id, entry in labs.items():
        if "topology" in entry:  # not the entry for tests that had no lab to run on
            by_topology.setdefault(entry["topology"], {})[entry["provider"]] = lab_id
    return [(providers[REFERENCE], lab_id) for providers in by_topology.values() if REFERENCE in providers
            for provider, lab_id in sorted(providers.items()) if provider != REFERENCE]


def compare(labs: dict[str, dict], records: list[dict]) -> dict:
    """The fidelity document: per pair, checks, probes and measurements side by side."""
    out = []
    for ref_id, other_id in pairs(labs):
        ref, other = labs[ref_id], labs[other_id]
        checks = [{"check": name, REFERENCE: ref["checks"].get(name, {}).get("outcome"),
                   "other": other["checks"].get(name, {}).get("outcome")}
                  for name in dict.fromkeys([*ref["checks"], *other["checks"]])]
        for check in checks:
            check["agree"] = check[REFERENCE] == check["other"]
        probes = _probes(ref["matrix"], other["matrix"])
        out.append({"topology": ref["topology"], "reference": ref_id, "other": other_id,
                    "provider": other["provider"], "checks": checks,
                    "checks_agree": sum(c["agree"] for c in checks),
                    "probes": len(probes), "probes_agree": sum(p["agree"] for p in probes),
                    "probes_differing": [p for p in probes if not p["agree"]],
                    "measurements": _measurements(records, ref_id, other_id)})
    return {"reference": REFERENCE, "pairs": out}


def _probes(ref: list[dict], other: list[dict]) -> list[dict]:
    def key(v: dict) -> tuple:
        return v["source"], v["target"], v["proto"], v.get("port")
    theirs = {key(v): v["reached"] for v in other}
    return [{"source": v["source"], "target": v["target"], "proto": v["proto"], "port": v.get("port"),
             REFERENCE: v["reached"], "other": theirs.get(key(v)),
             "agree": theirs.get(key(v)) == v["reached"]} for v in ref]


def _measurements(records: list[dict], ref_id: str, other_id: str) -> list[dict]:
    def by_lab(lab_id: str) -> dict[tuple, dict]:
        return {(r["path"], r["metric"]): r for r in records if r["lab"] == lab_id}
    ref, other = by_lab(ref_id), by_lab(other_id)
    rows = []
    for key in [k for k in ref if k in other]:
        a, b = ref[key], other[key]
        rows.append({"path": key[0], "metric": key[1], "unit": a["unit"],
                     REFERENCE: _figure(a), "other": _figure(b),
                     "ratio": _figure(b) / _figure(a) if _figure(a) and _figure(b) else None})
    return rows


def _figure(record: dict) -> float | None:
    """Throughput's median, latency's p50 (the median of its round trips); None where the
    measurement failed."""
    return record["median"]


def markdown(doc: dict) -> str:
    out = ["# Fidelity across providers", "",
           f"Each topology on the reference provider ({REFERENCE}) against the same topology elsewhere: "
           "where the verdicts agree, and the other provider's figure over the reference's "
           "(throughput: median; latency: p50 round trip).", ""]
    for pair in doc["pairs"]:
        out += [f"## {pair['topology']}: {pair['reference']} vs {pair['other']}", "",
                f"Checks agreeing: {pair['checks_agree']} of {len(pair['checks'])}; "
                f"reachability probes agreeing: {pair['probes_agree']} of {pair['probes']}.", "",
                f"| check | {REFERENCE} | {pair['provider']} | agree |", "|---|---|---|---|"]
        out += [f"| {c['check']} | {c[REFERENCE]} | {c['other']} | {'yes' if c['agree'] else '**no**'} |"
                for c in pair["checks"]]
        if pair["probes_differing"]:
            out += ["", "Probes that differ:", "", f"| source | target | probe | {REFERENCE} | "
                    f"{pair['provider']} |", "|---|---|---|---|---|"]
            out += [f"| {p['source']} | {p['target']} | {p['proto']}/{p['port'] or ''} | {p[REFERENCE]} | "
                    f"{p['other']} |" for p in pair["probes_differing"]]
        out += ["", f"| path | metric | {REFERENCE} | {pair['provider']} | × {REFERENCE} |",
                "|---|---|---|---|---|"]
        for m in pair["measurements"]:
            ratio = "" if m["ratio"] is None else f"{m['ratio']:.2f}"
            out.append(f"| {m['path']} | {m['metric']} | {_show(m[REFERENCE], m['unit'])} | "
                       f"{_show(m['other'], m['unit'])} | {ratio} |")
        out.append("")
    return "\n".join(out)


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    return f"{value / 1e9:.2f} Gbit/s" if unit == "bit/s" else f"{value:.1f} µs"


def chart(doc: dict) -> str:
    bars = [(f"{p['topology']}@{p['provider']} {m['path']} {m['metric']}", m["ratio"], m["ratio"], m["ratio"])
            for p in doc["pairs"] for m in p["measurements"] if m["ratio"] is not None]
    return bar_chart(f"Other provider over {REFERENCE} (throughput: below 1 is slower; latency: "
                      "above 1 is slower)", bars)


def write(doc: dict, directory: Path) -> list[Path]:
    files = {"fidelity.json": json.dumps(doc, indent=2) + "\n", "fidelity.md": markdown(doc),
             "fidelity.svg": chart(doc)}
    for name, text in files.items():
        (directory / name).write_text(text)
    return [directory / name for name in files]
