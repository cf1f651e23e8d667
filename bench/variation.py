#!/usr/bin/env python3
"""Whether the default benchmarks can rank schemes: the same run repeated, its figures compared.

    python bench/variation.py [--runs R] [--topology LIST] [--keep DIR] [-- PYTEST_ARGS]   (default: 3 runs, all)

Runs ``pytest -m bench --topology=...`` R times (each a real pytest process
writing its own compare.json) and prints:

- every TCP figure's 95 % interval half-width against the 5 % target (the
  ratio's where paired with the veth pair, else the median's), per run;
- the cross-host schemes ranked by single-stream TCP (ratio to the veth
  pair) in each run, and whether the order is the same in all runs wherever
  a run's report calls two schemes different (``differences``);
- each run's wall time against the 8-minute target of the default run, with
  what its figures met and under what conditions (``compare.conditions``)
  and where its time went (``compare.time_spent``);
- how much the ratios vary from run to run beyond their own intervals
  (pooled, and the 90th percentile of the figures'), against the figure the
  reports' differences allow for (``compare.RUN_TO_RUN``; two runs or more).

Exit 0 when every target was met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from netconform.reporting.compare import RUN_TO_RUN, conditions, time_spent  # noqa: E402
PRECISION, WALL = 0.05, 8 * 60.0


def run_once(directory: Path, topology: str, extra: list[str]) -> tuple[dict, float]:
    argv = [sys.executable, "-m", "pytest", "suites", f"--topology={topology}", "-m", "bench", "-q",
            "-p", "no:cacheprovider", f"--report-dir={directory}", *extra]
    directory.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    report = directory / "compare.json"
    if not report.exists():
        tail = " / ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise SystemExit(f"pytest exited {done.returncode} without a compare.json: {tail}")
    return json.loads(report.read_text()), wall


def ranking(data: dict) -> list[str]:
    cross = [r for r in data["records"] if r["path"] == "cross-host" and r["metric"] == "tcp"
             and r["ratio_to_baseline"] and not r["same_path_as"]]
    return [r["topology"] for r in sorted(cross, key=lambda r: -r["ratio_to_baseline"])]


def different(data: dict) -> set[tuple[str, str]]:
    """(faster, slower) topologies the run's report calls different on cross-host TCP."""
    found = set()
    for d in data.get("differences", []):
        if d["path"] == "cross-host" and d["metric"] == "tcp" and d["detectable"]:
            found.add((d["than"].split(" (")[0], d["slower"].split(" (")[0]))
    return found


def run_to_run(runs: list[dict]) -> tuple[float, float, int] | None:
    """How much the TCP ratios to the veth pair vary across ``runs`` beyond their intervals (read
    as 1.96 standard errors), as standard deviations on the log scale: pooled over the figures
    every run has, and the 90th percentile of the figures' own; and how many figures.  None with
    fewer than two runs (with few runs, a figure's own is a rough estimate)."""
    found: dict[str, list[tuple[float, float]]] = {}
    for data in runs:
        for r in data["records"]:
            if r["metric"].startswith("tcp") and r.get("ratio_ci95") and not r["same_path_as"]:
                low, high = r["ratio_ci95"]
                found.setdefault(f"{r['topology']} {r['path']} {r['metric']}", []).append(
                    (math.log(r["ratio_to_baseline"]), (math.log(high) - math.log(low)) / (2 * 1.96)))
    every = [v for v in found.values() if len(v) == len(runs)]
    if len(runs) < 2 or not every:
        return None
    beyond = [(statistics.variance([m for m, _ in v]), statistics.fmean(se * se for _, se in v)) for v in every]
    pooled = math.sqrt(max(0.0, statistics.fmean(a - w for a, w in beyond)))
    each = [math.sqrt(max(0.0, a - w)) for a, w in beyond]
    return pooled, statistics.quantiles(each, n=10)[8] if len(each) > 1 else each[0], len(every)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--topology", default="all")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each run's reports in DIR/run-N (default: a temporary directory, removed)")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="netconform-variation-") as scratch:
        for i in range(args.runs):
            data, wall = run_once((args.keep or Path(scratch)) / f"run-{i + 1}", args.topology, args.pytest_args)
            runs.append((data, wall))
            print(f"run {i + 1}: {wall:.0f} s ({'under' if wall < WALL else 'OVER'} {WALL / 60:.0f} min); "
                  f"{conditions(data)}\n       {time_spent(data)}", flush=True)
    ok = all(wall < WALL for _, wall in runs)
    print(f"\nTCP figures: 95 % interval half-width (target {PRECISION:.0%}), per run")
    rows: dict[str, list[str]] = {}
    for data, _ in runs:
        for r in data["records"]:
            if r["unit"] != "bit/s" or not r["metric"].startswith("tcp") or r["same_path_as"]:
                continue
            key = f"{r['topology']} {r['path']} {r['metric']}"
            half = r["precision"]["half_width"] if r["precision"] else None
            rows.setdefault(key, []).append("failed" if r["error"] else "—" if half is None else f"{half:.1%}")
            ok = ok and half is not None and half <= PRECISION
            if r["error"]:
                print(f"  {key}: not measured in run {len(rows[key])}: {r['error']}")
    for key, cells in rows.items():
        print(f"  {key:<44} {'  '.join(f'{c:>6}' for c in cells)}")
    orders = [ranking(data) for data, _ in runs]
    print("\nCross-host schemes by single-stream TCP (fastest first), per run:")
    for i, order in enumerate(orders):
        print(f"  run {i + 1}: {' > '.join(order) or 'none measured'}")
    claimed = set().union(*(different(data) for data, _ in runs)) if runs else set()
    broken = [(a, b) for a, b in sorted(claimed)
              if any(a in o and b in o and o.index(a) > o.index(b) for o in orders)]
    for a, b in broken:
        print(f"  a run called {a} faster than {b}, another ranked them the other way")
    if not broken:
        print(f"  order stable wherever a run called two schemes different ({len(claimed)} such pairs)")
    beyond = run_to_run([data for data, _ in runs])
    if beyond:
        print(f"\nTCP ratios varied from run to run beyond their intervals by {beyond[0]:.1%} pooled, "
              f"{beyond[1]:.1%} for the 90th percentile of the {beyond[2]} figures (standard deviations); "
              f"the reports' differences allow for {RUN_TO_RUN:.1%}")
    return 0 if ok and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
