"""Multi-fidelity search: spend little on many cells, more on the few that look best.

Successive halving (Jamieson & Talwalkar 2016, "Non-stochastic Best Arm Identification and Hyperparameter
Optimization"): a *bracket* evaluates ``n`` random cells at the cheapest fidelity (on NAS-Bench-201: 12 epochs of
training), keeps the best ``1/eta`` of them, evaluates those at the next fidelity, and so on up to the full one
(200 epochs). Then the next bracket starts.

Hyperband (Li et al. 2018, "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization",
Algorithm 1) hedges against a cheap fidelity that ranks badly: it cycles through brackets that start at each
fidelity, from the most aggressive one (many cells, starting at the cheapest fidelity) to plain random search at
the full fidelity. With ``s_max`` fidelities above the cheapest, bracket ``s = s_max, ..., 0`` starts
``ceil((s_max + 1) / (s + 1) * eta**s)`` cells at fidelity ``s_max - s``.

The fidelities are the evaluator's (``fidelities``, cheapest first; see :func:`~dfl_toolkit.nas.search`). Only
full-fidelity results count for the search's best; with an evaluator of one fidelity both strategies are random
search.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ...errors import UsageError
from ..search import fitness
from ..spaces.base import Arch, SearchSpace


@dataclass
class Bracket:
    """Cells of one bracket at its current rung (an index into the fidelities): to ask, and told so far."""

    rung: int
    todo: deque[Arch]
    size: int  # cells at this rung
    told: list[tuple[float, Arch]] = field(default_factory=list)


class SuccessiveHalving:
    """Successive halving over the evaluator's fidelities: brackets of ``n`` random cells (default
    ``eta ** (fidelities - 1)``) at the cheapest fidelity; the best ``1/eta`` go up one fidelity at a time.

    Example:
        >>> bench = Benchmark.load("nb201_cifar10")  # fidelities: 12 and 200 epochs
        >>> search(CellSpace(), SuccessiveHalving(eta=3), TabularEvaluator(bench), max_cost=12000.0)
    """

    name = "successive-halving"
    multi_fidelity = True  # the loop passes the evaluator's fidelities; ask() returns (arch, fidelity)

    def __init__(self, eta: int = 3, n: int | None = None):
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise UsageError(f"eta is the fraction kept at each fidelity, 1/eta: an int >= 2, got {eta!r}")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise UsageError(f"n is the number of cells a bracket starts with: a positive int or None, got {n!r}")
        self.eta, self.n = eta, n

    def setup(self, space: SearchSpace, objective: str, rng: random.Random,
              fidelities: tuple[str | None, ...] = (None,)) -> None:
        self.space, self.objective, self.rng = space, objective, rng
        self.fidelities = tuple(fidelities)
        self.brackets: list[Bracket] = []  # open brackets, oldest first
        self.pending: deque[Bracket] = deque()  # the bracket of each asked cell, in ask order
        self.opened = 0

    def _next_bracket(self) -> tuple[int, int]:
        """(first rung, number of cells) of the next bracket."""
        return 0, self.n or self.eta ** (len(self.fidelities) - 1)

    def ask(self) -> tuple[Arch, str | None]:
        bracket = next((b for b in self.brackets if b.todo), None)
        if bracket is None:  # every open bracket waits for results (or none is open): start one
            rung, n = self._next_bracket()
            self.opened += 1
            bracket = Bracket(rung, deque(self.space.sample(self.rng) for _ in range(n)), n)
            self.brackets.append(bracket)
        self.pending.append(bracket)
        return bracket.todo.popleft(), self.fidelities[bracket.rung]

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        bracket = self.pending.popleft()
        bracket.told.append((fitness(result, self.objective), arch))
        if len(bracket.told) < bracket.size:
            return
        if bracket.rung == len(self.fidelities) - 1:  # its full-fidelity rung is done
            self.brackets.remove(bracket)
            return
        keep = max(1, len(bracket.told) // self.eta)  # the best 1/eta, ties to the earliest told
        best = sorted(bracket.told, key=lambda t: t[0], reverse=True)[:keep]
        bracket.rung, bracket.size, bracket.told = bracket.rung + 1, keep, []
        bracket.todo = deque(a for _, a in best)

    def config(self) -> dict[str, Any]:
        return {"eta": self.eta, "n": self.n}


class Hyperband(SuccessiveHalving):
    """Hyperband: successive-halving brackets that start at each fidelity in turn, most aggressive first.

    Example:
        >>> search(CellSpace(), Hyperband(eta=3), TabularEvaluator(Benchmark.load("nb201_cifar10")), max_cost=12000.0)
    """

    name = "hyperband"

    def __init__(self, eta: int = 3):
        super().__init__(eta)

    def _next_bracket(self) -> tuple[int, int]:
        s_max = len(self.fidelities) - 1
        s = s_max - self.opened % (s_max + 1)  # s_max, ..., 1, 0, s_max, ...
        return s_max - s, math.ceil((s_max + 1) / (s + 1) * self.eta ** s)

    def config(self) -> dict[str, Any]:
        return {"eta": self.eta}
