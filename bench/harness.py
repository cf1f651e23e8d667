#!/usr/bin/env python3
"""The bench suite's harness overhead: time spent outside the measuring tools.

    python bench/harness.py [TOPOLOGY] [--samples N] [--seconds S]   (default: bridge, the suite's sampling)

For each measurement on each path of the lab: the wall time of the whole
measurement (server start, retries, nsenter or docker exec, JSON parsing)
against the time the tools themselves ran (every iperf3 client's run: the
warm-ups, the raw veth pair's samples TCP is paired with as in the suite, and
samples taken again; the ping train, the prober's rr series), and the difference.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from netconform.lab import Lab
from netconform.perf.baseline import veth_pair
from netconform.perf.bench import Ends, Settings, path_round_trips, path_throughput, udp_ceiling
from netconform.perf.cpu import measurement_core
from netconform.perf.paths import bench_paths
from netconform.topology import load, resolve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("topology", nargs="?", default="bridge")
    parser.add_argument("--samples", type=int, default=Settings.samples)
    parser.add_argument("--seconds", type=float, default=Settings.seconds)
    args = parser.parse_args()
    core = measurement_core()
    settings = Settings(samples=args.samples, seconds=args.seconds, cores=None if core is None else (core, core))
    with Lab(load(resolve(args.topology)[0])) as lab, veth_pair() as (a, b):
        reference = Ends(a, b, b.address)
        settings = replace(settings, udp_ceiling=udp_ceiling(reference, settings))
        print(f"{'path':<18} {'metric':<13} {'wall s':>7} {'tool s':>7} {'overhead s':>11} {'share':>6}")
        for path in bench_paths(lab):
            found = path_throughput(lab, path, settings, reference) + path_round_trips(lab, path)
            for m in found:
                share = m.overhead_seconds / m.wall_seconds if m.wall_seconds else 0.0
                print(f"{m.path:<18} {m.metric:<13} {m.wall_seconds:>7.2f} {m.tool_seconds:>7.2f} "
                      f"{m.overhead_seconds:>11.2f} {share:>6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
