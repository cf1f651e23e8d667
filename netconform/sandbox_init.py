"""PID 1 of a lab's outer namespace: sets it up, holds it, and tears it down.

Started by ``Sandbox.start`` under ``unshare --net --mount --pid --fork``.
It reads one line from stdin, the pipe from the pytest process that owns the
lab.  End of file (the owner exited or was killed with -9) or ``close``
tears the lab down; ``keep`` leaves it up until SIGTERM.  Tearing down kills
every process of the namespace, waits for them to leave their cgroups and
removes the cgroup directories the run's engines made (``CGROUP_PREFIX`` +
run id), the one thing a pid, mount and network namespace do not take with
them when they die.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CGROUP_PREFIX = "netconform-"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def setup() -> None:
    # Private mounts and a fresh /run: namespaces, sockets, engine state and
    # the host's /run/containerd (which dockerd would otherwise attach to)
    # are all private to the lab and vanish with it.
    for argv in (["mount", "--make-rprivate", "/"],
                 ["mount", "-t", "tmpfs", "-o", "mode=755", "netconform", "/run"],
                 ["mkdir", "-p", "/run/netns"],
                 ["ip", "link", "set", "lo", "up"]):
        subprocess.run(argv, check=True)


def reap(*_args) -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def others_alive() -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != "1":
            try:
                if (entry / "stat").read_text().split(") ")[1][0] != "Z":
                    return True
            except (OSError, IndexError):
                continue
    return False


def remove_cgroups(run_id: str) -> None:
    """Remove the run's cgroup directories, deepest first, in every hierarchy."""
    for top in CGROUP_ROOT.glob(f"*/{CGROUP_PREFIX}{run_id}"):
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()),
                                key=lambda p: len(p.parts), reverse=True) + [top]:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def teardown(run_id: str) -> None:
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass  # nothing but PID 1 left
    deadline = time.monotonic() + 10
    while others_alive() and time.monotonic() < deadline:
        reap()
        time.sleep(0.01)
    remove_cgroups(run_id)
    sys.exit(0)


def main() -> None:
    run_id = sys.argv[1]
    signal.signal(signal.SIGTERM, lambda *_: teardown(run_id))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup()
    # Orphans of the namespace land here; reap them (after setup's own waits).
    signal.signal(signal.SIGCHLD, reap)
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "keep":
        sys.stdin.close()
        while True:
            signal.pause()
    teardown(run_id)


if __name__ == "__main__":
    main()
