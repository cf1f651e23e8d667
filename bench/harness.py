#!/usr/bin/env python3
"""The bench suite's harness overhead: time spent outside the measuring tools.

    python bench/harness.py [TOPOLOGY] [--samples N] [--seconds S]   (default: bridge, 3, 2)

For each measurement on each path of the lab: the wall time of the whole
measurement (server start, retries, nsenter or docker exec, JSON parsing)
against the time the tool itself ran (iperf3's -t plus -O per sample, the
ping train, sockperf's -t), and the difference.
"""

from __future__ import annotations

import argparse
import sys

from netconform.lab import Lab
from netconform.perf.bench import Settings, path_round_trips, path_throughput
from netconform.perf.paths import bench_paths
from netconform.topology import load, resolve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("topology", nargs="?", default="bridge")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(samples=args.samples, seconds=args.seconds)
    with Lab(load(resolve(args.topology)[0])) as lab:
        print(f"{'path':<18} {'metric':<13} {'wall s':>7} {'tool s':>7} {'overhead s':>11} {'share':>6}")
        for path in bench_paths(lab):
            found = path_throughput(lab, path, settings) + path_round_trips(lab, path, settings)
            for m in found:
                share = m.overhead_seconds / m.wall_seconds if m.wall_seconds else 0.0
                print(f"{m.path:<18} {m.metric:<13} {m.wall_seconds:>7.2f} {m.tool_seconds:>7.2f} "
                      f"{m.overhead_seconds:>11.2f} {share:>6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
