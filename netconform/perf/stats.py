"""Summaries of repeated samples: median with min, max and a 95% confidence interval."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# Two-sided 95% Student t quantiles by degrees of freedom (1..30); normal beyond.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    min: float
    max: float
    ci95: tuple[float, float] | None  # of the mean; None without repeated samples

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the samples of one run vary."""
        return (self.max - self.min) / self.median if self.median else 0.0


def summarise(values: list[float]) -> Summary:
    """Median, min, max, and a 95% CI of the mean only where there are repeated samples."""
    n = len(values)
    ci = None
    if n >= 2:
        mean = statistics.fmean(values)
        t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
        half = t * statistics.stdev(values) / math.sqrt(n)
        ci = (mean - half, mean + half)
    return Summary(n, statistics.median(values), min(values), max(values), ci)
