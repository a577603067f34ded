"""Several objectives at once: Pareto fronts and MnasNet's latency-aware reward.

Accuracy is not the only thing a deployed network is judged by: parameters, FLOPs and latency
matter too. Either keep every non-dominated trade-off (the Pareto front), or fold the cost into one
reward (MnasNet, Tan et al. 2019) and let any single-objective strategy maximise it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import UnknownNameError, UsageError
from .spaces.base import Arch


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points. ``maximize[k]`` says whether objective k is to be maximised.

    A point is dominated when another is at least as good on every objective and better on one. With two
    objectives, only the best point of each value of the first can be on the front, so a table's 15,625 cells
    (28 parameter counts) take milliseconds.

    Example:
        >>> pareto_front([(0.9, 100), (0.8, 50), (0.7, 80)], maximize=(True, False))
        [0, 1]
    """
    if len(points) == 0:
        return []
    signed = np.asarray(points, dtype=float)
    if signed.ndim != 2 or signed.shape[1] != len(maximize):
        raise ValueError(f"points must each have one value per objective ({len(maximize)}), got shape "
                         f"{signed.shape}")
    signed = signed * np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    candidates = np.arange(len(signed))
    if signed.shape[1] == 2 and np.isfinite(signed).all():  # the rest is dominated by its group's best
        _, group = np.unique(signed[:, 0], return_inverse=True)
        best = np.full(group.max() + 1, -np.inf)
        np.maximum.at(best, group, signed[:, 1])
        candidates = np.flatnonzero(signed[:, 1] == best[group])
    rest = signed[candidates]
    return [int(i) for i in candidates
            if not np.any(np.all(rest >= signed[i], axis=1) & np.any(rest > signed[i], axis=1))]


def mnas_reward(accuracy: float, cost: float, target: float, alpha: float = -0.07, beta: float = -0.07) -> float:
    """MnasNet's reward ``ACC * (cost / target) ** w`` with ``w = alpha`` if cost <= target else ``beta``.

    With alpha = beta = -0.07 (the paper's soft constraint), doubling the cost costs about 5% of reward;
    alpha = 0, beta = -1 makes the target a hard wall.

    Example:
        >>> round(mnas_reward(0.9, cost=2.0, target=1.0), 4)
        0.8575
    """
    if target <= 0 or cost <= 0:
        raise ValueError(f"cost and target must be positive, got cost={cost}, target={target}")
    return accuracy * (cost / target) ** (alpha if cost <= target else beta)


class MnasReward:
    """Wrap an evaluator so its results also hold ``reward`` = :func:`mnas_reward` of ``accuracy_key``
    and ``cost_key`` (e.g. ``"latency"``, ``"params"``, ``"flops"``); search with ``objective="reward"``.

    Example:
        >>> ev = MnasReward(TabularEvaluator(bench), cost_key="params", target=30_000)
        >>> search(space, RegularizedEvolution(), ev, budget=100, objective="reward")
    """

    def __init__(self, evaluator: Callable[[Arch, int], dict[str, Any]], cost_key: str, target: float,
                 accuracy_key: str = "val_acc", alpha: float = -0.07, beta: float = -0.07):
        if not isinstance(target, (int, float)) or isinstance(target, bool) or not target > 0:
            raise UsageError(f"the reward's target cost must be a positive number, got {target!r}")
        inner = getattr(evaluator, "metrics", None)
        for key in (cost_key, accuracy_key):
            if inner is not None and key not in inner:
                raise UnknownNameError("metric of the wrapped evaluator:", key, inner)
        self.evaluator, self.cost_key, self.target = evaluator, cost_key, target
        self.accuracy_key, self.alpha, self.beta = accuracy_key, alpha, beta
        self.metrics = None if inner is None else (*inner, "reward")

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records: the reward's settings and the wrapped evaluator's config."""
        inner = getattr(self.evaluator, "config", None)
        return {"evaluator": "mnas_reward", "cost_key": self.cost_key, "target": self.target,
                "accuracy_key": self.accuracy_key, "alpha": self.alpha, "beta": self.beta,
                "inner": inner() if callable(inner) else None}

    def __call__(self, arch: Arch, seed: int = 0) -> dict[str, Any]:
        result = dict(self.evaluator(arch, seed))
        if not result.get("failed"):
            result["reward"] = mnas_reward(result[self.accuracy_key], result[self.cost_key], self.target,
                                           self.alpha, self.beta)
        return result
