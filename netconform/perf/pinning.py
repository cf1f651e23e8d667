"""Keep a lab's own processes off the measurement's core, run inside the lab's sandbox.

The netns provider's hosts share this machine's cores: dockerd, containerd,
the containers' servers and, above all, a userspace datapath's forwarders
(ovs-vswitchd, weaver) float across them and, whenever the scheduler puts one
on the core a sample's iperf3 holds, take a slice of that sample.  For the
length of a series every task of the lab is moved to the other cores (the
sandbox's own /proc lists each of them, containers' included, which the
root namespace cannot attribute to one lab), and given back its own mask
after.  Run as a script inside the sandbox (``Sandbox.kept_off``): ``off
CORE...`` prints the masks it changed as JSON, ``restore`` reads them back.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def tasks() -> list[int]:
    found = []
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            try:
                found += [int(t.name) for t in (process / "task").iterdir()]
            except OSError:
                continue  # gone meanwhile
    return found


def off(cores: set[int]) -> dict[int, list[int]]:
    """Move every task whose mask includes one of ``cores`` to its other cores (a task pinned
    to ``cores`` alone is left: it asked for them); its previous mask, by task id."""
    moved = {}
    for tid in tasks():
        try:
            mask = os.sched_getaffinity(tid)
            if mask & cores and mask - cores:
                os.sched_setaffinity(tid, mask - cores)
                moved[tid] = sorted(mask)
        except OSError:
            continue  # gone meanwhile, or a task that may not move
    return moved


def restore(masks: dict[str, list[int]]) -> None:
    for tid, mask in masks.items():
        try:
            os.sched_setaffinity(int(tid), set(mask))
        except OSError:
            continue  # gone meanwhile


def main(argv: list[str]) -> int:
    if argv[:1] == ["off"]:
        print(json.dumps(off({int(c) for c in argv[1:]})))
        return 0
    if argv == ["restore"]:
        restore(json.loads(sys.stdin.read() or "{}"))
        return 0
    print("usage: pinning.py off CORE... | restore < masks.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
