"""Random search: the baseline every NAS method must beat (Li & Talwalkar 2019)."""

from __future__ import annotations

import random
from typing import Any

from ..spaces.base import Arch, SearchSpace


class RandomSearch:
    """Sample architectures uniformly at random; learn nothing.

    Example:
        >>> search(CellSpace(), RandomSearch(), evaluator, budget=100)
    """

    name = "random"

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None:
        self.space, self.rng = space, rng

    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {}
