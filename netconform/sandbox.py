"""The outer namespace that holds a whole lab, and the way into it.

A lab's hosts, bridges, engines and containers all live inside one
throwaway namespace (net, mount and pid) whose PID 1 is ``sandbox_init``.
The pytest process stays in the root namespace and never changes it: it
enters the sandbox per command with ``nsenter`` (one process per command),
and reaches files and sockets inside through ``/proc/PID/root``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .result import Result


@dataclass
class Sandbox:
    run_id: str
    process: subprocess.Popen
    pid: int  # PID 1 of the sandbox, as the root namespace numbers it

    @classmethod
    def start(cls, run_id: str) -> Sandbox:
        argv = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                "--", sys.executable, "-m", "netconform.sandbox_init", run_id]
        # A session of its own: Ctrl-C reaches pytest, which tears down in order.
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, start_new_session=True,
                                   env={**os.environ, "PYTHONPATH": _package_root()})
        line = process.stdout.readline().strip()
        if line != "ready":
            process.kill()
            raise RuntimeError(f"the lab namespace did not start (unshare exited {process.wait()})")
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        return cls(run_id, process, int(children[0]))

    def path(self, inside: str) -> Path:
        """A path inside the sandbox's mount namespace, usable from outside."""
        return Path(f"/proc/{self.pid}/root{inside}")

    def netns(self, name: str | None) -> str:
        """The sandbox's own namespace (None), one of its /run/netns (a name), or a path as given."""
        if name is None:
            return f"/proc/{self.pid}/ns/net"
        if name.startswith("/"):
            return name
        return str(self.path(f"/run/netns/{name}"))

    def command(self, argv: list[str], netns: str | None = None) -> list[str]:
        """``argv`` wrapped to run inside the sandbox, in host namespace ``netns``."""
        return ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", f"--pid=/proc/{self.pid}/ns/pid",
                f"--net={self.netns(netns)}", "--", *argv]

    def run(self, argv: list[str], netns: str | None = None, input: str | None = None,
            timeout: float = 30) -> Result:
        start = time.monotonic()
        try:
            done = subprocess.run(self.command(argv, netns), input=input, capture_output=True,
                                  text=True, timeout=timeout)
            rc, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            rc, out, err = 124, _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {timeout} s"
        return Result(tuple(argv), rc, out, err, time.monotonic() - start)

    def spawn(self, argv: list[str], netns: str | None, log: Path) -> subprocess.Popen:
        """Start a daemon inside the sandbox; it dies with the sandbox at the latest."""
        with open(log, "ab") as out:
            return subprocess.Popen(self.command(argv, netns), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @contextmanager
    def kept_off(self, cores: set[int]):
        """Every process of the lab off ``cores`` for the block (``perf.pinning``, run inside:
        only the sandbox's /proc knows which processes are the lab's); each as it was after."""
        if not cores:
            yield
            return
        script = str(Path(__file__).with_name("perf") / "pinning.py")
        moved = self.run([sys.executable, script, "off", *map(str, sorted(cores))])
        moved.check("moving the lab's processes off the measurement's core")
        restore = [sys.executable, script, "restore"]
        try:
            yield
        except BaseException:
            self.run(restore, input=moved.stdout)  # the block's error is the one to tell
            raise
        self.run(restore, input=moved.stdout).check("giving the lab's processes their cores back")

    def keep(self) -> None:
        """Leave the lab up after this process exits; ``kill PID`` removes it."""
        self.process.stdin.write("keep\n")
        self.process.stdin.flush()
        self.process.stdin.close()
        self.process.stdout.close()

    def close(self, timeout: float = 20) -> None:
        """Tear the whole lab down: every process, mount, namespace and cgroup of it."""
        if self.process.stdin.closed:
            return
        self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _package_root() -> str:
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
