"""Summaries of repeated samples: a centre with a distribution-free 95% confidence interval.

Throughput samples here are not normal (one slow sample in ten is common on
a busy 2-core machine), so a figure's interval is its median's, from order
statistics (the binomial interval: no assumption about the distribution).
A ratio of two paths comes from samples taken alternately, one ratio per
pair, so that drift between them cancels; it is summarised on a log scale
by the Hodges-Lehmann estimate (the median of the pairwise averages of the
log ratios) with the exact Wilcoxon signed-rank interval.  That assumes
only that a log ratio is as likely to fall a given distance above its centre
as below (a ratio's noise is a product of the two samples', so its log is the
symmetric one), keeps the median's robustness to a slow sample, and needs
about two thirds of the pairs the median's interval needs for the same
width (its efficiency is 0.95 of the mean's on normal noise, the median's
0.64), which on this machine is the difference between a ratio known to
5 % and one that is not.  Below 6 samples no 95% interval exists either way:
it is absent, never made up.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache

CONFIDENCE = 0.95
MIN_FOR_CI = 6  # the smallest n with a 95 % interval: below it even min..max covers less


@dataclass(frozen=True)
class Summary:
    n: int
    median: float  # the centre: the samples' median; for a ratio, the Hodges-Lehmann estimate
    min: float
    max: float
    ci95: tuple[float, float] | None  # of the centre; None below MIN_FOR_CI samples

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the samples of one run vary."""
        return (self.max - self.min) / self.median if self.median else 0.0

    @property
    def half_width(self) -> float | None:
        """The CI's larger distance from the centre, as a fraction of it."""
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


@lru_cache(maxsize=None)
def _signed_rank_outside(n: int) -> int:
    """How many of the n(n+1)/2 pairwise averages the 95 % interval leaves out at each end:
    the largest k with P(T <= k - 1) <= 2.5 % for the signed-rank statistic T of n samples,
    from its exact distribution (every subset of the ranks 1..n equally likely); 0 when
    even the extremes are not a 95 % interval."""
    top = n * (n + 1) // 2
    ways = [1] + [0] * top  # ways[t]: subsets of 1..r whose ranks sum to t
    for r in range(1, n + 1):
        for t in range(top, r - 1, -1):
            ways[t] += ways[t - r]
    below, k = 0, 0
    while (below + ways[k]) / 2 ** n <= (1 - CONFIDENCE) / 2:
        below += ways[k]
        k += 1
    return k


def hodges_lehmann(values: list[float]) -> tuple[float, tuple[float, float] | None]:
    """The Hodges-Lehmann estimate of the centre of ``values`` (the median of the averages of
    every pair, each value with itself included) and its exact 95 % Wilcoxon interval: the
    averages left after ``_signed_rank_outside`` are cut from each end."""
    n = len(values)
    walsh = sorted((values[i] + values[j]) / 2 for i in range(n) for j in range(i, n))
    k = _signed_rank_outside(n) if n >= MIN_FOR_CI else 0
    return statistics.median(walsh), ((walsh[k - 1], walsh[-k]) if k else None)


def ratios(pairs: list[tuple[float, float]]) -> Summary | None:
    """The per-pair ratios a / b of samples taken alternately (a path and its reference),
    summarised on a log scale (``hodges_lehmann``); None without a pair whose figures are both
    positive."""
    found = [a / b for a, b in pairs if a > 0 and b > 0]
    if not found:
        return None
    centre, interval = hodges_lehmann([math.log(r) for r in found])
    return Summary(len(found), math.exp(centre), min(found), max(found),
                   (math.exp(interval[0]), math.exp(interval[1])) if interval else None)
