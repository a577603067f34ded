"""Predictor-based search: fit a surrogate to the architectures evaluated so far and let it choose
the next ones (in the spirit of BANANAS, White et al. 2021, with a plain MLP ensemble).

Each step: fit an ensemble of small MLPs on (encoding, score) pairs; generate candidates (random
samples plus mutations of the best so far); pick the candidate with the highest upper confidence
bound ``mean + kappa * std`` over the ensemble, i.e. predicted good *or* still uncertain.

Warm start ("learn from past searches"): ``prior`` takes (arch, score) pairs from another dataset
or an earlier search; they train the surrogate from the first step, so fewer random warm-up
evaluations are needed on the new task.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..search import fitness
from ..spaces.base import Arch, SearchSpace


class PredictorSearch:
    """Surrogate-guided search with an MLP ensemble and UCB acquisition.

    Example:
        >>> search(CellSpace(), PredictorSearch(initial=10), evaluator, budget=100)
    """

    name = "predictor"

    def __init__(self, initial: int = 10, ensemble: int = 5, candidates: int = 200, kappa: float = 0.5,
                 epochs: int = 200, prior: Sequence[tuple[Arch, float]] = (), prior_weight: float = 1.0,
                 refit_every: int = 1):
        if initial < 1 or ensemble < 1 or candidates < 1:
            raise ValueError("initial, ensemble and candidates must be positive")
        self.initial, self.n_models, self.n_candidates = initial, ensemble, candidates
        self.kappa, self.epochs = kappa, epochs
        self.prior, self.prior_weight = list(prior), prior_weight
        self.refit_every = refit_every

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None:
        self.space, self.objective, self.rng = space, objective, rng
        self.generator = torch.Generator().manual_seed(rng.randrange(2**31))
        self.data: list[tuple[Arch, float]] = []
        self.seen: set = {space.canonical(a) for a, _ in self.prior}
        self.models: list[nn.Module] = []
        self.fitted_on = -1

    def _fit(self) -> None:
        pairs = [(a, s, self.prior_weight) for a, s in self.prior] + [(a, s, 1.0) for a, s in self.data]
        pairs = [(a, s, w) for a, s, w in pairs if s != float("-inf")]
        self.fitted_on = len(self.data)
        if len(pairs) < 2:  # every result so far failed: nothing to learn from yet
            self.models = []
            return
        x = torch.tensor([self.space.encode(a) for a, _, _ in pairs])
        y = torch.tensor([s for _, s, _ in pairs])
        w = torch.tensor([w for _, _, w in pairs])
        self.mu, self.sigma = y.mean(), y.std().clamp_min(1e-6)
        y = (y - self.mu) / self.sigma
        self.models = []
        for _ in range(self.n_models):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=self.generator)))
            model = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
            opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
            for _ in range(self.epochs):
                opt.zero_grad()
                (w * (model(x).squeeze(1) - y) ** 2).mean().backward()
                opt.step()
            self.models.append(model)

    def predict(self, archs: Sequence[Arch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble mean and standard deviation of the predicted objective for ``archs``."""
        x = torch.tensor([self.space.encode(a) for a in archs])
        with torch.no_grad():
            preds = torch.stack([m(x).squeeze(1) for m in self.models]) * self.sigma + self.mu
        return preds.mean(0), preds.std(0)

    def ask(self) -> Arch:
        if len(self.data) + len(self.prior) < self.initial:
            return self._fresh(lambda: self.space.sample(self.rng))
        if not self.models or len(self.data) - self.fitted_on >= self.refit_every:
            self._fit()
        if not self.models:  # no successful evaluation yet: keep sampling at random
            return self._fresh(lambda: self.space.sample(self.rng))
        best = sorted(self.data, key=lambda d: d[1], reverse=True)[:5] or sorted(self.prior, key=lambda d: d[1])[-5:]
        pool = [self.space.sample(self.rng) for _ in range(self.n_candidates // 2)]
        pool += [self.space.mutate(self.rng.choice(best)[0], self.rng) for _ in range(self.n_candidates // 2)]
        pool = [a for a in pool if self.space.canonical(a) not in self.seen] or pool
        mean, std = self.predict(pool)
        choice = pool[int(torch.argmax(mean + self.kappa * std))]
        self.seen.add(self.space.canonical(choice))
        return choice

    def _fresh(self, draw) -> Arch:
        for _ in range(100):
            arch = draw()
            if self.space.canonical(arch) not in self.seen:
                break
        self.seen.add(self.space.canonical(arch))
        return arch

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        self.data.append((arch, fitness(result, self.objective)))

    def config(self) -> dict[str, Any]:
        return {"initial": self.initial, "ensemble": self.n_models, "candidates": self.n_candidates,
                "kappa": self.kappa, "epochs": self.epochs, "prior": len(self.prior),
                "prior_weight": self.prior_weight, "refit_every": self.refit_every}
