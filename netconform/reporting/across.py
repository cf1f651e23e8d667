"""One topology's verdicts and figures side by side along one axis: providers, or engines
(Docker's builds and other runtimes, Podman, in one comparison).

A lab of namespaces on one machine is cheap; VMs and real hosts are what
people run (the provider axis, ``fidelity.*``).  An engine upgrade is what
people fear (the engine axis, ``engines.*``).  Both questions have the same
shape: hold everything else of a lab fixed, vary one thing, and say where
the verdicts differ (every check, every probe of the reachability matrix,
how the scheme was realised) and how throughput and latency move (each
column's median over the reference column's, per path and metric).  The
input is what ``--report-dir`` writes (``conformance.json`` labs,
``compare.json`` records); differences come first in every table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .. import engines as engine_names
from ..deviations import DEVIATIONS
from ..engines import Version
from .compare import RUN_TO_RUN, bar_chart, relative


@dataclass(frozen=True)
class Axis:
    """What varies between the labs of one comparison, and what stays fixed."""

    name: str  # "provider", "engine"
    title: str  # the document's heading
    stem: str  # its files: STEM.json, STEM.md, STEM.svg
    value: Callable[[dict], str]  # a lab entry -> its column
    fixed: Callable[[dict], str]  # a lab entry -> what the compared labs share besides the topology
    order: Callable[[str], tuple]  # sort key of columns; the first is the reference
    about: Callable[[dict], str]  # a lab entry -> what its column ran, for people

    def groups(self, labs: dict[str, dict]) -> list[dict[str, str]]:
        """{column: lab id} for each topology (and fixed part) that ran in two columns or more."""
        found: dict[tuple[str, str], dict[str, str]] = {}
        for lab_id, entry in labs.items():
            if "topology" in entry:  # not the entry of tests that had no lab to run on
                found.setdefault((entry["topology"], self.fixed(entry)), {}).setdefault(self.value(entry), lab_id)
        return [dict(sorted(columns.items(), key=lambda kv: self.order(kv[0])))
                for columns in found.values() if len(columns) > 1]


def _engine(entry: dict) -> dict:
    return entry.get("engine") or {"name": entry.get("runtime", "?"), "version": "?"}


PROVIDERS = Axis("provider", "Fidelity across providers", "fidelity",
                 value=lambda e: e["provider"], fixed=lambda e: _engine(e)["name"],
                 order=lambda provider: (provider != "netns", provider),
                 about=lambda e: f"provider {e['provider']}, engine {_engine(e)['name']} {_engine(e)['version']}")
DEVIATION_RUNTIME = {d.id: d.runtime for d in DEVIATIONS}


def _runtime(engine: str) -> str:
    """The runtime of an engine column's name: system (Docker's), docker-28.5, podman, podman-6.1."""
    if engine in engine_names.RELEASES:
        return engine_names.RELEASES[engine].runtime
    return "docker" if engine == engine_names.SYSTEM else engine


# Docker's builds by their engine name (system, docker-28.5), Podman's by theirs (podman,
# podman-6.1); Docker's first, then each other runtime's, oldest first within each, so the
# reference is a Docker engine and a runtime's builds are read against it in version order.
ENGINES = Axis("engine", "Engines compared", "engines",
               value=lambda e: f"{_engine(e)['name']} {re.split('[+~]', _engine(e)['version'])[0]}",
               fixed=lambda e: e["provider"],
               order=lambda column: (_runtime(column.split(" ", 1)[0]) != "docker", _runtime(column.split(" ", 1)[0]),
                                     Version.parse(column.split(" ", 1)[-1]), column),
               about=lambda e: f"{_engine(e).get('build', '?')}; options: {_engine(e).get('options') or 'none'}")
AXES = (PROVIDERS, ENGINES)


def compare(axis: Axis, labs: dict[str, dict], records: list[dict]) -> dict:
    """The document: per group, checks, realisation, probes and measurements per column."""
    out = []
    for columns in axis.groups(labs):
        entries = {column: labs[lab_id] for column, lab_id in columns.items()}
        reference = next(iter(columns))
        checks = [_row({"check": name}, {c: _outcome(e["checks"].get(name)) for c, e in entries.items()})
                  for name in dict.fromkeys(n for e in entries.values() for n in e["checks"])]
        probes = _probes(entries)
        out.append({"topology": entries[reference]["topology"], "labs": columns, "reference": reference,
                    "about": {c: axis.about(e) for c, e in entries.items()},
                    "realised": _row({}, {c: e.get("realised") for c, e in entries.items()}),
                    "checks": sorted(checks, key=lambda row: row["agree"]),
                    "checks_agree": sum(c["agree"] for c in checks),
                    "probes": len(probes), "probes_agree": sum(p["agree"] for p in probes),
                    "probes_differing": [p for p in probes if not p["agree"]],
                    "measurements": _measurements(records, columns)})
    # Topologies where something differs first, the most differences first.
    out.sort(key=lambda g: (g["checks_agree"] - len(g["checks"]), g["probes_agree"] - g["probes"]))
    return {"axis": axis.name, "groups": out, "deviations": _deviations(axis, labs, out), "run_to_run": RUN_TO_RUN}


def _deviations(axis: Axis, labs: dict[str, dict], groups: list[dict]) -> list[dict]:
    """Each known deviation that excused an expected failure, with the topologies of each column
    it excused one on.  It ``changes`` where, on a topology, it held on some columns of its own
    runtime and not on others (Podman 6's network isolation): a promise that changed between
    versions, listed first."""
    columns = list(dict.fromkeys(c for g in groups for c in g["labs"]))
    found: dict[str, dict[str, list[str]]] = {}
    changes: set[str] = set()
    for group in groups:
        held: dict[str, set[str]] = {}
        for column, lab_id in group["labs"].items():
            for check in labs[lab_id]["checks"].values():
                if check.get("outcome") == "xfailed":
                    for name in re.findall(r"([\w-]+) excused \d+", check.get("message", "")):
                        held.setdefault(name, set()).add(column)
        for name, where in held.items():
            for column in where:
                found.setdefault(name, {}).setdefault(column, []).append(group["topology"])
            own = DEVIATION_RUNTIME.get(name)
            if where != {c for c in group["labs"] if own is None or _runtime(c.split(" ", 1)[0]) == own}:
                changes.add(name)
    rows = [{"deviation": name, "labs": {c: sorted(set(by.get(c, []))) for c in columns},
             "changes": name in changes} for name, by in found.items()]
    return sorted(rows, key=lambda r: (not r["changes"], r["deviation"]))


def _outcome(check: dict | None) -> str | None:
    """A check's outcome; an expected failure with the deviation that excused it, since two
    engines can fail a check expectedly for different reasons."""
    if check is None:
        return None
    excused = re.search(r"known deviations? ([\w-]+(?:, [\w-]+)*)", check.get("message", ""))
    return f"xfailed ({excused.group(1)})" if check["outcome"] == "xfailed" and excused else check["outcome"]


def _row(fields: dict, values: dict[str, object]) -> dict:
    """Values per column; they agree when every column that has one has the same (a check a
    column did not run, a probe it did not measure, is None and differs from nothing)."""
    present = {json.dumps(v) for v in values.values() if v is not None}
    return {**fields, "values": values, "agree": len(present) <= 1}


def _probes(entries: dict[str, dict]) -> list[dict]:
    def key(v: dict) -> tuple:
        return v["source"], v["target"], v["proto"], v.get("port")
    reached = {column: {key(v): v["reached"] for v in e["matrix"]} for column, e in entries.items()}
    promised = {key(v): v.get("promised") for e in entries.values() for v in e["matrix"]}
    return [_row({"source": k[0], "target": k[1], "proto": k[2], "port": k[3], "promised": promised[k]},
                 {column: seen.get(k) for column, seen in reached.items()})
            for k in promised]


def _measurements(records: list[dict], columns: dict[str, str]) -> list[dict]:
    """Throughput's median, latency's p50 per column, and each over the first column (in order)
    that has a figure for the path: that row's reference.  A failed measurement is None, never
    zero; a column that did not measure the path (or that only refers to another lab's
    figure, measured once for an identical datapath) is left out of ``measured``."""
    by_lab = {column: {(r["path"], r["metric"]): r for r in records
                       if r["lab"] == lab_id and not r.get("same_path_as")}
              for column, lab_id in columns.items()}
    rows = []
    for key in dict.fromkeys(k for found in by_lab.values() for k in found):
        measured = [column for column, found in by_lab.items() if key in found]
        figures = {column: by_lab[column][key]["median"] for column in measured}
        base_column = next((c for c in measured if figures[c]), None)
        base = figures.get(base_column)
        paired = {c: relative(by_lab[c][key], by_lab[base_column][key]) for c in measured
                  if base_column and c != base_column}
        rows.append({"path": key[0], "metric": key[1], "unit": by_lab[measured[0]][key]["unit"],
                     "values": {column: figures.get(column) for column in by_lab}, "measured": measured,
                     "reference": base_column,
                     "ratios": {c: (paired[c][0] if paired.get(c) else v / base if v and base else None)
                                for c, v in figures.items() if c != base_column},
                     "ratio_ci95": {c: [found[1], found[2]] for c, found in paired.items() if found}})
    return [row for row in rows if len(row["measured"]) > 1]


def markdown(axis: Axis, doc: dict) -> str:
    out = [f"# {axis.title}", "",
           f"Each topology with only the {axis.name} varying; the first column is the reference. Rows "
           "that differ come first, marked **differs**; figures are throughput medians and p50 round "
           "trips, with each column over the reference: for TCP from the two labs' ratios to the "
           "veth pair (each measured as pairs), with a 95 % interval (allowing for how much a ratio "
           f"varies from run to run beyond its own, ±{100 * doc['run_to_run']:.1f} %) and whether a difference "
           "is detectable at that precision; otherwise the plain quotient of medians.", ""]
    if doc.get("deviations"):
        columns = list(doc["deviations"][0]["labs"])
        out += [f"Known deviations by {axis.name} (the topologies whose expected failure each excused; "
                f"one that holds on some and not on others, a promise that changed, first):", "",
                f"| deviation | {' | '.join(columns)} | |", "|---" * (len(columns) + 2) + "|"]
        out += [f"| {d['deviation']} | " + " | ".join(", ".join(d["labs"][c]) or "-" for c in columns)
                + f" | {'**changes**' if d['changes'] else ''} |" for d in doc["deviations"]]
        out.append("")
    if doc["groups"]:
        out += [f"| topology | {axis.name}s | checks differing | probes differing |", "|---|---|---|---|"]
        out += [f"| {g['topology']} | {', '.join(g['labs'])} | {len(g['checks']) - g['checks_agree']} | "
                f"{g['probes'] - g['probes_agree']} |" for g in doc["groups"]]
        out.append("")
    for group in doc["groups"]:
        columns = list(group["labs"])
        rule = "|---" * (len(columns) + 2) + "|"
        out += [f"## {group['topology']}: {', '.join(group['labs'].values())}", "",
                f"Checks agreeing: {group['checks_agree']} of {len(group['checks'])}; reachability "
                f"probes agreeing: {group['probes_agree']} of {group['probes']}.", ""]
        out += [f"- {c}: {text}" for c, text in group["about"].items()] + [""]
        if not group["realised"]["agree"]:
            out += ["Realised differently:", ""] + [f"- {c}: {v}" for c, v in group["realised"]["values"].items()]
            out.append("")
        out += [f"| check | {' | '.join(columns)} | |", rule]
        out += [f"| {c['check']} | " + " | ".join(c["values"][k] or "not run" for k in columns)
                + f" | {'' if c['agree'] else '**differs**'} |" for c in group["checks"]]
        if group["probes_differing"]:
            out += ["", "Probes that differ (+ reached, - blocked):", "",
                    f"| probe | promised | {' | '.join(columns)} |", rule]
            out += [f"| {p['source']} -> {p['target']} {p['proto']}{'/' + str(p['port']) if p['port'] else ''} | "
                    f"{_mark(p['promised'])} | " + " | ".join(_mark(p["values"][k]) for k in columns) + " |"
                    for p in group["probes_differing"]]
        if group["measurements"]:
            out += ["", "Figures (× the first column that measured the path):", "",
                    f"| path | metric | {' | '.join(columns)} |", "|---" * (2 + len(columns)) + "|"]
            out += [f"| {m['path']} | {m['metric']} | " + " | ".join(_figure(m, c) for c in columns) + " |"
                    for m in group["measurements"]]
        out.append("")
    return "\n".join(out)


def _mark(reached: bool | None) -> str:
    return {True: "+", False: "-", None: "not measured"}[reached]


def _figure(row: dict, column: str) -> str:
    """The figure, and over the reference's: from the two ratios to the veth pair with its
    interval and what it allows saying, where both were measured as pairs (TCP)."""
    if column not in row["measured"]:
        return "not measured"
    ratio = row["ratios"].get(column)
    ci = row.get("ratio_ci95", {}).get(column)
    if ratio is None:
        return _show(row["values"][column], row["unit"])
    if ci is None:
        return _show(row["values"][column], row["unit"]) + f" (× {ratio:.2f})"
    said = ("no difference detectable" if ci[0] <= 1 <= ci[1]
            else f"{abs(1 - ratio):.0%} {'slower' if ratio < 1 else 'faster'}")
    return _show(row["values"][column], row["unit"]) + f" (× {ratio:.2f}, {ci[0]:.2f}–{ci[1]:.2f}: {said})"


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    return f"{value / 1e9:.2f} Gbit/s" if unit == "bit/s" else f"{value:.1f} µs"


COLOURS = {"passed": "#5a9e5a", "failed": "#c94040", "skipped": "#b0b0b0"}


def chart(axis: Axis, doc: dict) -> str:
    """Every check's outcome per column as a grid (differences first), then each column's figures
    over the reference's as bars, in one SVG."""
    row, left, cell = 18, 330, 150
    rows = [(f"{g['topology']} {c['check']}", c) for g in doc["groups"] for c in g["checks"]]
    rows.sort(key=lambda r: r[1]["agree"])
    columns = list(dict.fromkeys(col for g in doc["groups"] for col in g["labs"]))
    height = 50 + row * (len(rows) + 1)
    out = [f'<text x="10" y="20" font-size="14" font-weight="bold">Check outcomes per {axis.name} '
           '(differences first)</text>']
    out += [f'<text x="{left + i * cell + 4}" y="42">{escape(c)}</text>' for i, c in enumerate(columns)]
    for n, (label, check) in enumerate(rows):
        y = 50 + n * row
        weight = "normal" if check["agree"] else "bold"
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-weight="{weight}">'
                   f'{escape(label)}</text>')
        for i, column in enumerate(columns):
            outcome = check["values"].get(column)
            if outcome is None:
                continue
            colour = COLOURS.get(outcome, "#e0a030")  # expected failures, excused by a deviation
            out.append(f'<rect x="{left + i * cell}" y="{y + 2}" width="{cell - 4}" height="14" fill="{colour}">'
                       f'<title>{escape(outcome)}</title></rect>')
    bars = [(f"{g['topology']} {column} {m['path']} {m['metric']}", ratio,
             *m.get("ratio_ci95", {}).get(column, (ratio, ratio)))
            for g in doc["groups"] for m in g["measurements"] for column, ratio in m["ratios"].items()
            if ratio is not None]
    figures = bar_chart(f"Each {axis.name} over the reference (throughput: below 1 is slower; latency: "
                        "above 1 is slower; whisker: the 95% interval, TCP)", bars) if bars else ""
    figures_height = int(re.search(r'height="(\d+)"', figures).group(1)) if figures else 0
    width = max(left + cell * len(columns) + 20, 800)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + figures_height}" '
            'font-family="sans-serif" font-size="12">\n' + "\n".join(out) + "\n"
            + (f'<svg y="{height}">{figures.split(">", 1)[1].rsplit("</svg>", 1)[0]}</svg>\n' if figures else "")
            + "</svg>\n")


def write(axis: Axis, doc: dict, directory: Path) -> list[Path]:
    files = {f"{axis.stem}.json": json.dumps(doc, indent=2) + "\n", f"{axis.stem}.md": markdown(axis, doc),
             f"{axis.stem}.svg": chart(axis, doc)}
    for name, text in files.items():
        (directory / name).write_text(text)
    return [directory / name for name in files]
