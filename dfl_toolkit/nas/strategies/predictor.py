"""Predictor-based search: BANANAS, White et al. 2021, "BANANAS: Bayesian Optimization with Neural
Architectures for Neural Architecture Search".

Each step: fit an ensemble of small MLPs to the (encoding, score) pairs evaluated so far; make candidates by
mutating the best cells found so far (plus a few random ones); evaluate the candidate with the highest
*independent Thompson sample*: for each candidate one draw from a normal with the ensemble's mean and standard
deviation, so a candidate is chosen for being predicted good *or* for being uncertain.

The encoding of a cell is BANANAS' *path encoding*: how often each sequence of operations occurs along the
paths from the cell's input to its output (a path through a ``none`` edge carries nothing and is left out),
next to the plain one-hot encoding of each edge's operation. Paths make isomorphic cells look alike; the one-hot
part tells apart the cells whose paths are the same. Spaces without edges use the one-hot encoding alone.

Warm start ("learn from past searches"): ``prior`` takes (arch, score) pairs from another dataset
or an earlier search; they train the surrogate from the first step, so fewer random warm-up
evaluations are needed on the new task.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...errors import UsageError
from ..search import fitness
from ..spaces.base import Arch, SearchSpace


def routes(edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Every path from the first node to the last of a cell's DAG, as the indices of its ``(to, from)`` edges.

    Example:
        >>> routes(((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)))  # NAS-Bench-201's cell
        [[3], [0, 4], [1, 5], [0, 2, 5]]
    """
    last = max(to for to, _ in edges)

    def onwards(node: int) -> list[list[int]]:
        if node == last:
            return [[]]
        return [[k, *rest] for k, (to, src) in enumerate(edges) if src == node for rest in onwards(to)]

    return sorted(onwards(0), key=len)


class PathEncoder:
    """BANANAS' path encoding of a cell space with ``edges`` and ``ops``: one count per sequence of (non-``none``)
    operations along a path from input to output, for every path length.

    Example:
        >>> PathEncoder(CellSpace())(("nor_conv_3x3",) * 6)[:4]  # paths of length 1: skip, conv1x1, conv3x3, pool
        [0.0, 0.0, 1.0, 0.0]
    """

    def __init__(self, space: SearchSpace):
        self.routes = routes(space.edges)
        ops = [op for op in space.ops if op != "none"]
        lengths = sorted({len(r) for r in self.routes})
        self.index = {seq: i for i, seq in enumerate(s for n in lengths for s in itertools.product(ops, repeat=n))}

    def __call__(self, arch: Arch) -> list[float]:
        out = [0.0] * len(self.index)
        for route in self.routes:
            seq = tuple(arch[k] for k in route)
            if "none" not in seq:
                out[self.index[seq]] += 1.0
        return out


class Ensemble(nn.Module):
    """``members`` MLPs of two hidden layers trained side by side as one batched model (fast on one thread)."""

    def __init__(self, members: int, inputs: int, hidden: int = 32):
        super().__init__()
        shapes = [(inputs, hidden), (hidden, hidden), (hidden, 1)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(members, a, b) * (2 / a) ** 0.5) for a, b in shapes)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, b)) for _, b in shapes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions of every member for ``x`` (n, inputs): shape (members, n)."""
        h = x.expand(len(self.weights[0]), *x.shape)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            h = h if i == len(self.weights) - 1 else torch.relu(h)
        return h.squeeze(2)


class PredictorSearch:
    """BANANAS: an MLP-ensemble surrogate on path encodings, independent Thompson sampling, candidates by mutation.

    ``initial`` random cells first; then the ensemble is refitted every ``refit_every`` queries (BANANAS chooses 10
    cells per fit; on ``nb201_cifar10`` refitting every 5 queries was no better, and took twice as long) and each
    query picks among ``candidates`` cells: mutations of the best ``parents`` cells found so far (one edge, or two
    for a quarter of them) and a tenth at random. Cells already asked (or isomorphic to one) are not proposed again.
    A 300-query search takes about 6 s on one idle CPU thread, almost all of it fitting.

    Example:
        >>> search(CellSpace(), PredictorSearch(initial=10), evaluator, budget=100)
    """

    name = "predictor"

    def __init__(self, initial: int = 10, ensemble: int = 5, candidates: int = 100, epochs: int = 100,
                 parents: int = 10, prior: Sequence[tuple[Arch, float]] = (), prior_weight: float = 1.0,
                 refit_every: int = 10):
        for what, value in (("initial", initial), ("ensemble", ensemble), ("candidates", candidates),
                            ("epochs", epochs), ("parents", parents), ("refit_every", refit_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"PredictorSearch's {what} must be a positive int, got {value!r}")
        self.initial, self.n_models, self.n_candidates = initial, ensemble, candidates
        self.epochs, self.parents = epochs, parents
        self.prior, self.prior_weight = list(prior), prior_weight
        self.refit_every = refit_every

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None:
        self.space, self.objective, self.rng = space, objective, rng
        self.generator = torch.Generator().manual_seed(rng.randrange(2**31))
        self.paths = PathEncoder(space) if hasattr(space, "edges") and hasattr(space, "ops") else None
        self.data: list[tuple[Arch, float]] = []
        self.seen: set = {space.canonical(a) for a, _ in self.prior}
        self.model: Ensemble | None = None
        self.fitted_on = -1

    def encode(self, archs: Sequence[Arch]) -> torch.Tensor:
        """The surrogate's input: path encoding (where the space has edges) and one-hot, one row per cell."""
        return torch.tensor([(self.paths(a) if self.paths else []) + self.space.encode(a) for a in archs])

    def _fit(self) -> None:
        pairs = [(a, s, self.prior_weight) for a, s in self.prior] + [(a, s, 1.0) for a, s in self.data]
        pairs = [(a, s, w) for a, s, w in pairs if s != float("-inf")]
        self.fitted_on = len(self.data)
        if len(pairs) < 2:  # every result so far failed: nothing to learn from yet
            self.model = None
            return
        x = self.encode([a for a, _, _ in pairs])
        y = torch.tensor([s for _, s, _ in pairs])
        w = torch.tensor([w for _, _, w in pairs])
        self.mu, self.sigma = y.mean(), y.std().clamp_min(1e-6)
        y = (y - self.mu) / self.sigma
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=self.generator)))
        self.model = Ensemble(self.n_models, x.shape[1])
        opt = torch.optim.Adam(self.model.parameters(), lr=1e-2, weight_decay=1e-4)
        for _ in range(self.epochs):
            opt.zero_grad()
            (w * (self.model(x) - y) ** 2).mean().backward()
            opt.step()

    def predict(self, archs: Sequence[Arch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble mean and standard deviation of the predicted objective for ``archs``."""
        with torch.no_grad():
            preds = self.model(self.encode(archs)) * self.sigma + self.mu
        return preds.mean(0), preds.std(0)

    def ask(self) -> Arch:
        if len(self.data) + len(self.prior) < self.initial:
            return self._fresh([self.space.sample(self.rng) for _ in range(100)])
        if self.model is None or len(self.data) - self.fitted_on >= self.refit_every:
            self._fit()
        if self.model is None:  # no successful evaluation yet: keep sampling at random
            return self._fresh([self.space.sample(self.rng) for _ in range(100)])
        ranked = sorted(self.data or self.prior, key=lambda d: d[1], reverse=True)[:self.parents]
        pool = [self.space.sample(self.rng) for _ in range(self.n_candidates // 10)]
        while len(pool) < self.n_candidates:
            child = self.space.mutate(self.rng.choice(ranked)[0], self.rng)
            pool.append(self.space.mutate(child, self.rng) if self.rng.random() < 0.25 else child)
        pool = [a for a in pool if self.space.canonical(a) not in self.seen] or pool
        mean, std = self.predict(pool)
        draw = mean + std * torch.randn(len(pool), generator=self.generator)  # independent Thompson sampling
        return self._fresh([pool[int(torch.argmax(draw))]])

    def _fresh(self, options: Sequence[Arch]) -> Arch:
        """The first of ``options`` not asked before (or the last one), marked as asked."""
        arch = next((a for a in options if self.space.canonical(a) not in self.seen), options[-1])
        self.seen.add(self.space.canonical(arch))
        return arch

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        self.data.append((arch, fitness(result, self.objective)))

    def config(self) -> dict[str, Any]:
        return {"initial": self.initial, "ensemble": self.n_models, "candidates": self.n_candidates,
                "epochs": self.epochs, "parents": self.parents, "prior": len(self.prior),
                "prior_weight": self.prior_weight, "refit_every": self.refit_every}
