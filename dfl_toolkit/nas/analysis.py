"""Numbers for comparing searches: expected best-of-n of random search, regret, Spearman correlation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def expected_best_of_n(scores: Sequence[float], n: int, judged_by: Sequence[float] | None = None) -> float:
    """Expected maximum of ``n`` draws with replacement, uniformly from ``scores`` (one entry per
    architecture of the space, duplicates included): what random search finds on average.

    With the scores sorted, s_(1) <= ... <= s_(N), P(max = s_(i)) = (i/N)**n - ((i-1)/N)**n.

    ``judged_by`` (one value per score): the expected *judged* value of the draw with the best score
    instead, ties broken at random. This is random search that picks by a noisy signal (one run's
    validation accuracy) and is judged by another (test accuracy): the winner's curse in closed form.

    Example:
        >>> expected_best_of_n([0.0, 1.0], 1), expected_best_of_n([0.0, 1.0], 2)
        (0.5, 0.75)
        >>> expected_best_of_n([0.0, 1.0], 2, judged_by=[1.0, 0.0])  # the best score is the worst cell
        0.25
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size == 0 or n < 1:
        raise ValueError(f"need a flat sequence of at least one score and n >= 1, got shape {s.shape}, n={n}")
    v = s if judged_by is None else np.asarray(judged_by, dtype=float)
    if v.shape != s.shape:
        raise ValueError(f"judged_by needs one value per score: {v.size} values for {s.size} scores")
    if np.isnan(s).any() or np.isnan(v).any():
        raise ValueError("scores and judged_by must not contain NaN (a failed evaluation scores -inf)")
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    ends = np.r_[starts[1:], s.size]
    p = (ends / s.size) ** n - (starts / s.size) ** n  # P(the best draw falls in the group)
    group_mean = np.add.reduceat(v, starts) / (ends - starts)
    return float((p * group_mean).sum())


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (normal approximation; nan for one value)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"need a flat sequence of at least one value, got shape {v.shape}")
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return float(v.mean()), float(half)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    if len(a) != len(b):
        raise ValueError(f"need two sequences of the same length, got {len(a)} and {len(b)}")
    return float(spearmanr(a, b).statistic)
