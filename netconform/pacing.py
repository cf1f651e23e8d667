"""Pacing probes by the kernel's neighbour table, so a large lab cannot overflow it.

Every probe to an address on a link makes an ARP entry on the source and
one on the target (for the answer).  Linux keeps one neighbour table for
all network namespaces of a kernel: ``gc_thresh3`` (1,024 by default)
entries in all, and an entry that traffic confirmed stays unreclaimable
until it goes stale, 15 to 45 s later.  Past the limit the kernel drops
packets ("neighbor table overflow!") and a healthy network looks broken:
measured here, 40 containers on four hosts probing each other filled the
table within 2 s and stayed at 1,024 entries, with 1,100 false reds.  The
lab's hosts are namespaces of one kernel, so they share that table as
the containers of one real host do.

So sources are admitted while the entries they may make (``cost``) stay
under three quarters of the limit.  When the next source does not fit,
the pacer waits until the running ones are done and then empties the
tables of the lab's own namespaces (``flush``): the entries were the
measurement's own, and the kernel resolves again what the next probes
need.  ``flushes`` and ``waited`` say what that took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

LIMIT = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")


ENTRIES = Path("/proc/net/stat/arp_cache")  # its first column: entries in the (machine-wide) table, hex


def neighbour_entries() -> int:
    """How many entries the kernel's IPv4 neighbour table holds now (every namespace's): what an
    earlier measurement, or another lab, left there counts against the budget too."""
    try:
        return int(ENTRIES.read_text().splitlines()[1].split()[0], 16)
    except (OSError, ValueError, IndexError):
        return 0


def neighbour_budget() -> int | None:
    """How many new neighbour entries probing may make before the lab's tables are emptied,
    or None if the kernel's limit is unknown."""
    try:
        return int(LIMIT.read_text()) * 3 // 4
    except (OSError, ValueError):
        return None


class Pacer:
    """Admits work of a given cost (neighbour entries) while the cost made since the last flush
    fits the budget; one piece larger than the budget runs alone, after a flush."""

    def __init__(self, budget: int | None, flush: Callable[[], None], made: int = 0) -> None:
        self.budget, self.flush = budget, flush
        self.made = made  # entries made since the last flush (at first: what the table already holds)
        self.running = 0
        self.flushes = 0
        self.waited = 0.0  # seconds work spent waiting to be admitted
        self._changed = threading.Condition()

    def admit(self, cost: int) -> None:
        start = time.monotonic()
        with self._changed:
            while self.budget is not None and self.made and self.made + cost > self.budget:
                if self.running:
                    self._changed.wait()
                    continue
                self.flush()
                self.flushes += 1
                self.made = 0
            self.made += cost
            self.running += 1
        self.waited += time.monotonic() - start

    def release(self) -> None:
        with self._changed:
            self.running -= 1
            self._changed.notify_all()
