"""Numbers for comparing searches: expected best-of-n of random search, regret, Spearman correlation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def expected_best_of_n(scores: Sequence[float], n: int) -> float:
    """Expected maximum of ``n`` draws with replacement, uniformly from ``scores`` (one entry per
    architecture of the space, duplicates included): what random search finds on average.

    With the scores sorted, s_(1) <= ... <= s_(N), P(max = s_(i)) = (i/N)**n - ((i-1)/N)**n.

    Example:
        >>> expected_best_of_n([0.0, 1.0], 1), expected_best_of_n([0.0, 1.0], 2)
        (0.5, 0.75)
    """
    s = np.sort(np.asarray(scores, dtype=float))
    if s.size == 0 or n < 1:
        raise ValueError("need at least one score and n >= 1")
    cdf = np.arange(1, s.size + 1) / s.size
    p = cdf ** n - np.concatenate([[0.0], cdf[:-1]]) ** n
    return float((p * s).sum())


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (normal approximation)."""
    v = np.asarray(values, dtype=float)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return float(v.mean()), float(half)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
