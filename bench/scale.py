#!/usr/bin/env python3
"""How lab up, the matrix and teardown grow with the lab, and whether verdicts hold.

    python bench/scale.py [--scheme vxlan] [--hosts 4] [SIZE ...]   (default sizes: 10 25 50 100 250)

For each size, a generated topology (``netconform generate``) of SIZE
containers on the hosts is built once and its whole reachability matrix
measured as the suites measure it.  Prints, per size: lab up, matrix time,
probes per second, how the matrix was paced (neighbour-table flushes,
probes only a retry reached), teardown, and false reds: probes promised
to reach that did not.  The lab's own network is healthy, so every red is a
false one.  Then a leak is injected (every host accepts forwarded traffic
from ext, the LAN neighbour, into its containers: ``iptables -I
DOCKER-USER -s EXT -j ACCEPT``) and the matrix measured again: every probe
from ext to a container is then a leak, and a false green is one of them
reported blocked.  Targets: 100 containers on 4 hosts, zero false reds and
zero false greens, matrix in under 10 s; 250 containers on 5 hosts, zero
false reds, up in under 60 s.
"""

from __future__ import annotations

import argparse
import time

from netconform.lab import Lab
from netconform.measure import measure, table
from netconform.topology.generate import generate

TARGETS = {100: ("matrix", 10.0), 250: ("up", 60.0)}


def run(size: int, hosts: int, scheme: str) -> dict:
    _, topo = generate(hosts, size, scheme)
    lab = Lab(topo)
    reason = lab.missing()
    if reason:
        raise SystemExit(f"{topo.name}: {reason}")
    start = time.monotonic()
    with lab:
        up = time.monotonic() - start
        start = time.monotonic()
        matrix = measure(lab)
        seconds = time.monotonic() - start
        for host in topo.hosts:
            lab.hosts[host.name].exec(["iptables", "-I", "DOCKER-USER", "-s", lab.ext.address, "-j", "ACCEPT"]).check()
        leaked = measure(lab)
    containers = {c.name for c in topo.containers}
    injected = {v.probe for v in leaked.verdicts if v.probe.source == "ext" and v.probe.target in containers}
    reported = {v.probe for v in leaked.wrong(expected=False)}
    missed = [v for v in leaked.verdicts if v.probe in injected - reported]
    if missed:  # a false green is a finding: say which
        print(f"false greens at {size}: {len(missed)}, e.g.\n" + table(missed[:10]), flush=True)
    return {"size": size, "hosts": hosts, "up": up, "matrix": seconds, "probes": len(matrix.verdicts),
            "false_reds": len(matrix.wrong(expected=True)), "leaks": len(matrix.wrong(expected=False)),
            "injected": len(injected), "false_greens": len(injected - reported),
            "pace": matrix.pace, "down": lab.phases.down}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 25, 50, 100, 250])
    parser.add_argument("--scheme", default="vxlan")
    parser.add_argument("--hosts", type=int, help="default: 4, and 5 from 250 containers")
    args = parser.parse_args()
    print(f"{'containers':>10} {'hosts':>5} {'up s':>6} {'matrix s':>8} {'probes':>7} {'probes/s':>8} "
          f"{'false reds':>10} {'leaks':>5} {'injected':>8} {'false greens':>12} {'down s':>6}  pace")
    for size in args.sizes:
        row = run(size, args.hosts or (5 if size >= 250 else 4), args.scheme)
        pace = row["pace"]
        print(f"{size:>10} {row['hosts']:>5} {row['up']:>6.1f} {row['matrix']:>8.1f} {row['probes']:>7} "
              f"{row['probes'] / row['matrix']:>8.0f} {row['false_reds']:>10} {row['leaks']:>5} "
              f"{row['injected']:>8} {row['false_greens']:>12} "
              f"{row['down']:>6.1f}  {pace.flushes} flushes, {pace.retried} retried alone "
              f"({pace.recovered} reached then), {pace.confirmed} blocked verdicts on {pace.attempts} attempts "
              f"(waits up to {pace.wait_ms} ms)", flush=True)
        if size in TARGETS:
            figure, target = TARGETS[size]
            met = row["false_reds"] == 0 and row["false_greens"] == 0 and row[figure] < target
            print(f"{'':>10} target: zero false reds, zero false greens and {figure} under {target:.0f} s: "
                  f"{'met' if met else 'MISSED'}", flush=True)


if __name__ == "__main__":
    main()
