"""Summaries of repeated samples: the median with a distribution-free 95% confidence interval.

Throughput samples here are not normal (one slow sample in ten is common on
a busy 2-core machine), so the interval is the median's, from order
statistics (the binomial interval: no assumption about the distribution),
and a ratio of two paths is summarised from the per-pair ratios of samples
taken alternately, so that drift between them cancels.  Below 6 samples no
95% interval of the median exists: it is absent, never made up.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

CONFIDENCE = 0.95
MIN_FOR_CI = 6  # the smallest n whose widest order-statistic interval (min..max) covers the median at 95%


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    min: float
    max: float
    ci95: tuple[float, float] | None  # of the median; None below MIN_FOR_CI samples

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the samples of one run vary."""
        return (self.max - self.min) / self.median if self.median else 0.0

    @property
    def half_width(self) -> float | None:
        """The CI's larger distance from the median, as a fraction of the median."""
        if self.ci95 is None or not self.median:
            return None
        return max(self.median - self.ci95[0], self.ci95[1] - self.median) / abs(self.median)


def median_ci(values: list[float]) -> tuple[float, float] | None:
    """The 95% interval of the median between two order statistics: the widest k for which
    P(Binomial(n, 1/2) < k) <= 2.5%, so that (x_k, x_(n+1-k)) covers the median with >= 95%."""
    n = len(values)
    if n < MIN_FOR_CI:
        return None
    ordered = sorted(values)
    below, k = 0.0, 0
    while True:
        p = math.comb(n, k) / 2 ** n
        if below + p > (1 - CONFIDENCE) / 2:
            break
        below += p
        k += 1
    k = max(k, 1)  # x_k with k counted from 1
    return ordered[k - 1], ordered[n - k]


def summarise(values: list[float]) -> Summary:
    """Median, min, max, and the median's 95% CI where there are enough samples for one."""
    return Summary(len(values), statistics.median(values), min(values), max(values), median_ci(values))


def ratios(pairs: list[tuple[float, float]]) -> Summary | None:
    """The per-pair ratios a / b of samples taken alternately (a path and its reference),
    summarised; None without a pair whose reference is positive."""
    found = [a / b for a, b in pairs if b > 0]
    return summarise(found) if found else None
