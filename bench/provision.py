#!/usr/bin/env python3
"""Time to bring each topology's lab up and down, and where the time goes.

    python bench/provision.py [--repeat N] [--engine NAME[,NAME...]|all] [TOPOLOGY ...]
                                                    (default: all topologies, N=3, the system engine)

Prints, per topology and engine, the median over N builds of: total up, the share of
it spent starting dockerd, importing the image, starting containers and in
the cross-host scheme's own set-up, and the time to tear down.  Figures are for comparing topologies (and
commits) measured in the same run on the same machine; the target is a
2-host lab with 4 containers (xhost-portmap) up in under 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from netconform import engines
from netconform.lab import Lab
from netconform.topology import available, load, resolve

TARGET_TOPOLOGY, TARGET_SECONDS = "xhost-portmap", 3.0


def build_once(name: str, engine: str) -> dict[str, float]:
    lab = Lab(load(resolve(name)[0]), runtime_options={"build": engines.resolve(engine)})
    reason = lab.missing()
    if reason:
        raise SystemExit(f"{name} on {engine}: {reason}")
    start = time.monotonic()
    with lab:
        up = time.monotonic() - start
    runtime = lab.runtime.timings
    return {"up": up, "dockerd": runtime.engines, "image": runtime.image,
            "containers": runtime.containers, "scheme": lab.phases.scheme, "down": lab.phases.down}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("topologies", nargs="*", default=available())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", default=engines.SYSTEM, help="engine builds, as pytest --engine takes them")
    args = parser.parse_args()
    try:
        chosen = engines.parse(args.engine)
    except ValueError as err:
        parser.error(str(err))
    header = f"{'topology':<14} {'engine':<12} {'hosts':>5} {'ctrs':>4} {'up s':>6} {'dockerd':>8} {'image':>6} " \
             f"{'ctrs':>6} {'scheme':>7} {'down s':>7}"
    print(header)
    print("-" * len(header))
    verdict = 0
    for name, engine in ((n, e) for n in args.topologies for e in chosen):
        topo = load(resolve(name)[0])
        runs = [build_once(name, engine) for _ in range(args.repeat)]
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        share = {key: 100 * med[key] / med["up"] for key in ("dockerd", "image", "containers", "scheme")}
        print(f"{name:<14} {engine:<12} {len(topo.hosts):>5} {len(topo.containers):>4} {med['up']:>6.2f} "
              f"{share['dockerd']:>7.0f}% {share['image']:>5.0f}% {share['containers']:>5.0f}% "
              f"{share['scheme']:>6.0f}% {med['down']:>7.2f}")
        if name == TARGET_TOPOLOGY:
            ok = med["up"] < TARGET_SECONDS
            verdict = verdict or (0 if ok else 1)
            print(f"  target: {TARGET_TOPOLOGY} up in under {TARGET_SECONDS:.0f} s: "
                  f"{'met' if ok else 'MISSED'} ({med['up']:.2f} s, median of {args.repeat})")
    print(f"\nmedian of {args.repeat} builds each; dockerd/image/ctrs/scheme are shares of 'up' "
          "(image and ctrs overlap across hosts, which are populated in parallel)")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
