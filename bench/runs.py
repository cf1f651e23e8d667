#!/usr/bin/env python3
"""Wall time of the two runs people wait for, against their targets, and where it goes.

    python bench/runs.py [--repeat N]          the inner loop: pytest --topology=bridge -m "not bench"
    python bench/runs.py --default [--keep DIR]  also the default run: pytest --topology=all (once)
    python bench/runs.py --conformance         also its conformance half alone: -m "not bench" (once)

Each run is a real pytest process, timed from outside.  Printed per run:
the wall time (median of N for the inner loop), what pytest itself
reported, the start-up before it (interpreter, imports, collection), and
pytest's durations summed by phase (setup holds building labs and
measuring matrices, teardown removing them) and by suite half
(conformance, benchmarks), and for a run of several labs by lab (the
slowest named, each with its two halves: building a lab falls in the setup
of its first test, the benchmarks' in the default run); for the default run also what its benchmarks met
and under what conditions (``compare.conditions``: a run slowed by a noisy
spell of the machine shows as one) and where their time went by metric
(``compare.time_spent``), from the reports it writes (to DIR with
``--keep``, else to a temporary directory, removed).  Targets: inner loop
under 2.5 s, default run under 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from netconform.reporting.compare import conditions, time_spent  # noqa: E402
INNER = (["--topology=bridge", "-m", "not bench"], 2.5)
DEFAULT = (["--topology=all"], 8 * 60.0)
# The default run's conformance half (no target of its own: it shows what confirming verdicts costs).
CONFORMANCE = (["--topology=all", "-m", "not bench"], 8 * 60.0)
DURATION = re.compile(r"^([0-9.]+)s (setup|call|teardown)\s+(\S+)", re.M)
LAB = re.compile(r"\[([^\]@]+@[^\]]+)\]$")  # a test id's lab: suites/test_nat.py::test_nat_rules[vxlan@netns-docker]
SLOWEST = 6  # labs named in the default run's breakdown


def timed(args: list[str]) -> dict:
    """One pytest run: wall seconds, pytest's own seconds, and durations by phase and half."""
    argv = [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", "--durations=0", "-vv"]
    start = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    reported = re.search(r" in ([0-9.]+)s", done.stdout.splitlines()[-1] if done.stdout else "")
    phases = dict.fromkeys(("setup", "call", "teardown"), 0.0)
    halves = {"conformance": 0.0, "benchmarks": 0.0}
    labs: dict[str, dict[str, float]] = {}
    for seconds, phase, test in DURATION.findall(done.stdout):
        half = "benchmarks" if "test_bench.py" in test else "conformance"
        phases[phase] += float(seconds)
        halves[half] += float(seconds)
        lab = LAB.search(test)
        if lab:
            labs.setdefault(lab.group(1), dict.fromkeys(halves, 0.0))[half] += float(seconds)
    return {"wall": wall, "pytest": float(reported.group(1)) if reported else None, "phases": phases,
            "halves": halves, "labs": labs, "rc": done.returncode, "tail": done.stdout.splitlines()[-1:]}


def by_lab(labs: dict[str, dict[str, float]], shown: int = SLOWEST) -> str:
    """The labs that took longest (conformance + benchmarks), each with its halves, and the rest summed."""
    ordered = sorted(labs.items(), key=lambda item: -sum(item[1].values()))
    named = [f"{lab} {sum(h.values()):.0f} s ({h['conformance']:.0f} + {h['benchmarks']:.0f})"
             for lab, h in ordered[:shown]]
    rest = ordered[shown:]
    if rest:
        named.append(f"{len(rest)} other{'s' * (len(rest) > 1)} {sum(sum(h.values()) for _, h in rest):.0f} s")
    return "; ".join(named)


def report(name: str, args: list[str], target: float, runs: list[dict]) -> bool:
    wall = statistics.median(r["wall"] for r in runs)
    last = runs[-1]
    ok = wall < target and all(r["rc"] == 0 for r in runs)
    print(f"{name}: pytest {' '.join(args)}")
    each = ", ".join(f"{r['wall']:.2f}" for r in runs)
    print(f"  wall {wall:.2f} s (median of {len(runs)}: {each}); "
          f"target under {target:.1f} s: {'met' if wall < target else 'MISSED'}")
    if last["pytest"] is not None:
        print(f"  start-up before pytest's clock {last['wall'] - last['pytest']:.2f} s, pytest {last['pytest']:.2f} s")
    print("  durations: " + ", ".join(f"{k} {v:.2f} s" for k, v in last["phases"].items())
          + "; " + ", ".join(f"{k} {v:.1f} s" for k, v in last["halves"].items()))
    if len(last["labs"]) > 1:
        print(f"  by lab (conformance + benchmarks): {by_lab(last['labs'])}")
    for r in runs:
        if r["rc"]:
            print(f"  a run failed (exit {r['rc']}): {' '.join(r['tail'])}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="inner-loop runs (default 5)")
    parser.add_argument("--default", action="store_true", help="also time the default run (minutes)")
    parser.add_argument("--conformance", action="store_true",
                        help="also time the default run's conformance half alone (-m 'not bench')")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the default run's reports in DIR (default: a temporary directory, removed)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat: {args.repeat} is not allowed; allowed: 1 or more")
    ok = report("inner loop", INNER[0], INNER[1], [timed(INNER[0]) for _ in range(args.repeat)])
    if args.conformance:
        ok = report("conformance half", CONFORMANCE[0], CONFORMANCE[1], [timed(CONFORMANCE[0])]) and ok
    if args.default:
        with tempfile.TemporaryDirectory(prefix="netconform-runs-") as scratch:
            reports = args.keep or Path(scratch)
            run = [*DEFAULT[0], f"--report-dir={reports}"]
            ok = report("default run", run, DEFAULT[1], [timed(run)]) and ok
            found = reports / "compare.json"
            if found.exists():
                data = json.loads(found.read_text())
                print(f"  benchmarks: {conditions(data)}")
                print(f"  benchmarks' time: {time_spent(data)}")
            else:
                print(f"  benchmarks: no {found} was written")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
