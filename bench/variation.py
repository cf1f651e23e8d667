#!/usr/bin/env python3
"""How much repeated runs of the same path vary: each run the median of N samples.

    python bench/variation.py [--runs R] [--samples N] [--seconds S]   (default: 3, 3, 2)

Measures TCP one-stream throughput on the raw veth baseline, bridge
same-host and vxlan cross-host, R runs each, and prints every run's median
and the spread across runs, (max - min) / mean, against the 10% target.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from netconform.lab import Lab
from netconform.perf.baseline import veth_pair
from netconform.perf.bench import Settings, throughput
from netconform.perf.paths import bench_paths
from netconform.topology import load, resolve

TARGET = 0.10


def tcp_medians(source, target, address, settings: Settings, runs: int) -> list[float]:
    medians = []
    for _ in range(runs):
        tcp = throughput("run", source, target, address, settings, udp=False)[0]
        medians.append(tcp.summary.median)
    return medians


def lab_path(name: str, kind: str, settings: Settings, runs: int) -> list[float]:
    with Lab(load(resolve(name)[0])) as lab:
        path = next(p for p in bench_paths(lab) if p.kind == kind)
        return tcp_medians(lab.node(path.source), lab.node(path.target), path.address, settings, runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(samples=args.samples, seconds=args.seconds)
    results = {}
    with veth_pair() as (a, b):
        results["veth baseline"] = tcp_medians(a, b, b.address, settings, args.runs)
    results["bridge same-host"] = lab_path("bridge", "same-host", settings, args.runs)
    results["vxlan cross-host"] = lab_path("vxlan", "cross-host", settings, args.runs)
    verdict = 0
    print(f"TCP one stream, {args.runs} runs, each the median of {args.samples} samples of {args.seconds} s")
    for name, medians in results.items():
        spread = (max(medians) - min(medians)) / statistics.fmean(medians)
        verdict = verdict or int(spread >= TARGET)
        runs = "  ".join(f"{m / 1e9:6.2f}" for m in medians)
        print(f"  {name:<18} Gbit/s: {runs}   spread {spread:5.1%} "
              f"({'under' if spread < TARGET else 'OVER'} {TARGET:.0%})")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
