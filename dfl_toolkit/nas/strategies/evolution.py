"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search" (AmoebaNet), Algorithm 1.

Keep a queue (the population). To make a child: sample ``sample_size`` members at random, take the
best of them as the parent, mutate one of its choices. Add the child on the right and remove the
*oldest* member on the left, not the worst: every architecture dies young, so one lucky evaluation
cannot rule forever (the "regularization").
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from ..search import fitness
from ..spaces.base import Arch, SearchSpace


class RegularizedEvolution:
    """Aging evolution with NAS-Bench-201's settings by default: population 10, sample size 3,
    mutate one edge. (NNI's defaults differ: population 100, sample 25.)

    Example:
        >>> search(CellSpace(), RegularizedEvolution(population_size=10, sample_size=3), evaluator, budget=300)
    """

    name = "evolution"

    def __init__(self, population_size: int = 10, sample_size: int = 3):
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size} and {population_size}")
        self.population_size, self.sample_size = population_size, sample_size

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None:
        self.space, self.objective, self.rng = space, objective, rng
        self.population: deque[tuple[Arch, float]] = deque()
        self.asked = 0

    def ask(self) -> Arch:
        self.asked += 1
        if self.asked <= self.population_size or not self.population:  # first fill the population at random
            return self.space.sample(self.rng)
        candidates = self.rng.sample(list(self.population), min(self.sample_size, len(self.population)))
        parent = max(candidates, key=lambda member: member[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        self.population.append((arch, fitness(result, self.objective)))
        if len(self.population) > self.population_size:
            self.population.popleft()  # the oldest dies, whatever its fitness

    def config(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size}
