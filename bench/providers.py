#!/usr/bin/env python3
"""Where a lab's time goes on each provider: box build, up, the suites, destroy.

    python bench/providers.py [--topology NAME] [--rebuild-box] [--providers netns,vagrant]

Prints, for the topology (default: vxlan, two hosts), the box build (cached
unless --rebuild-box), then per provider: bringing the lab up (and, for
vagrant, how much of it was the guests' boot), the suites without
benchmarks on a live lab, and tearing down (vagrant destroy).  The last
lines give each provider's figures as multiples of netns's, measured in
this same run.  Under software emulation (TCG) expect VMs to be tens of
times slower than namespaces.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from netconform.lab import Lab
from netconform.topology import load, resolve
from netconform.vm import accel, box

REPO = Path(__file__).resolve().parents[1]


def timed_suites(topology: str, provider: str) -> tuple[float, str]:
    """The suites without benchmarks, as a user runs them (their lab's up and down included)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not bench",
                           f"--topology={topology}", f"--provider={provider}", "suites"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ})
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    return time.monotonic() - start, summary


def measure(topology: str, provider: str) -> dict[str, float]:
    lab = Lab(load(resolve(topology)[0]), provider)
    reason = lab.missing()
    if reason:
        raise SystemExit(f"{provider}: {reason}")
    start = time.monotonic()
    with lab:
        up = time.monotonic() - start
    suites, summary = timed_suites(topology, provider)
    print(f"{provider:<8} up {up:7.1f} s (hosts {lab.phases.hosts:.1f} s, engines and containers "
          f"{lab.phases.runtime:.1f} s, scheme {lab.phases.scheme:.1f} s)  suites {suites:7.1f} s "
          f"[{summary}]  down {lab.phases.down:5.1f} s")
    return {"up": up, "hosts": lab.phases.hosts, "suites": suites, "down": lab.phases.down}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--topology", default="vxlan")
    parser.add_argument("--providers", default="netns,vagrant")
    parser.add_argument("--rebuild-box", action="store_true")
    args = parser.parse_args()
    start = time.monotonic()
    built = box.build(force=args.rebuild_box, log=lambda line: print(f"  {line}"))
    print(f"box build {time.monotonic() - start:7.1f} s ({'rebuilt' if args.rebuild_box else 'cache or build'}, "
          f"{built.path.stat().st_size / 2**20:.0f} MiB)")
    print(f"accelerator: {accel.choose(built.kernel).notice}")
    figures = {p: measure(args.topology, p) for p in args.providers.split(",")}
    if "netns" in figures:
        base = figures["netns"]
        for provider, got in figures.items():
            if provider != "netns":
                print(f"{provider} / netns: up {got['up'] / base['up']:.0f}×, suites "
                      f"{got['suites'] / base['suites']:.1f}×, down {got['down'] / max(base['down'], 1e-3):.0f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
