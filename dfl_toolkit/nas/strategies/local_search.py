"""Local search, White et al. 2020, "Local Search is State of the Art for Neural Architecture Search
Benchmarks" (first-improvement hill climbing with random restarts).

Start from a random cell. Evaluate its neighbours (one choice changed: for a cell, one edge's
operation) in random order and move to the first one that scores better than the current cell; from
there, do the same. When every neighbour has been evaluated and none is better, the cell is a local
optimum: restart from a new random cell. A cell already evaluated (or isomorphic to one) is never
evaluated again, so a restart or a neighbourhood never pays twice for the same network.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from ..search import fitness
from ..spaces.base import Arch, SearchSpace


class LocalSearch:
    """First-improvement local search with random restarts; no settings.

    With ``batch_size > 1`` several neighbours are asked before any is told: the first one told better
    than the current cell wins, and while results are pending a restart cell is asked instead.

    Example:
        >>> strategy = LocalSearch()
        >>> search(CellSpace(), strategy, TabularEvaluator(bench), budget=300)
        >>> strategy.optima  # the local optima it restarted from: [(arch, score), ...]
    """

    name = "local"

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None:
        self.space, self.objective, self.rng = space, objective, rng
        self.seen: set = set()  # canonical forms of every cell asked
        self.current: tuple[Arch, float] | None = None  # the cell whose neighbours are being tried
        self.neighbours: deque[Arch] = deque()  # its untried neighbours, in random order
        self.pending: deque[Arch | None] = deque()  # per asked cell, the current cell it neighbours (None: a start)
        self.optima: list[tuple[Arch, float]] = []

    def _new(self, arch: Arch) -> bool:
        key = self.space.canonical(arch)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def _move(self, arch: Arch, score: float) -> None:
        self.current = (arch, score)
        options = [(i, o) for i, (_, opts) in enumerate(self.space.choices) for o in opts if o != arch[i]]
        self.rng.shuffle(options)
        self.neighbours = deque(arch[:i] + (o,) + arch[i + 1:] for i, o in options)

    def ask(self) -> Arch:
        while self.current is not None and self.neighbours:
            arch = self.neighbours.popleft()
            if self._new(arch):
                self.pending.append(self.current[0])
                return arch
        for _ in range(10_000):  # a (re)start: a random cell not evaluated yet
            arch = self.space.sample(self.rng)
            if self._new(arch):
                break
        self.pending.append(None)
        return arch

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        centre, score = self.pending.popleft(), fitness(result, self.objective)
        exhausted = self.current is None or not self.neighbours
        if centre is None and exhausted:  # a restart, and the old cell had no better neighbour
            if self.current is not None:
                self.optima.append(self.current)
            self._move(arch, score)
        elif centre is not None and self.current is not None and centre == self.current[0] and score > self.current[1]:
            self._move(arch, score)  # the first better neighbour: move there

    def config(self) -> dict[str, Any]:
        return {}
