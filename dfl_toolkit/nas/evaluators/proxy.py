"""Evaluate an architecture without training it: zero-cost proxies at initialisation (milliseconds).

The network is built exactly as :class:`TrainEvaluator` would build it for the same budget (same
data, same skeleton), initialised from ``init_seed`` (the same for every query by default, as
``benchmarks/proxy_correlation.py`` does, so a cell always gets the same score) and scored on one
fixed training batch, so scores compare across architectures. Search on a proxy with
``objective=<proxy name>``; judge what it finds with a table or real training: proxies rank cells only
loosely (``benchmarks/proxy_correlation.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...data import DatasetSplits
from ...errors import UnknownNameError, UsageError
from ...runtime import check_seed, check_threads, seed_everything, torch_threads
from ..proxies import PROXIES, score
from ..spaces.base import Arch, SearchSpace
from .cost import count_params
from .train import TrainBudget, build_network, evaluation_data


class ProxyEvaluator:
    """``evaluator(arch, seed)`` returns each of ``proxies`` (higher = predicted better) and ``params``.

    ``init_seed=None`` initialises each query from its own ``seed`` instead, so the score of a cell varies
    a little from one initialisation to the next (NASWOT's top-10 cells change by about a third).

    Example:
        >>> ev = ProxyEvaluator(CellSpace(), proxies=("naswot", "synflow"))
        >>> result = search(CellSpace(), RegularizedEvolution(), ev, budget=200, objective="naswot")
    """

    name = "proxy"

    def __init__(self, space: SearchSpace, proxies: Sequence[str] = ("naswot",), budget: TrainBudget | None = None,
                 batch_size: int = 64, data: DatasetSplits | None = None, threads: int | None = 1,
                 init_seed: int | None = 0):
        proxies = (proxies,) if isinstance(proxies, str) else tuple(proxies)
        for name in proxies:
            if name not in PROXIES:
                raise UnknownNameError("proxy", name, PROXIES)
        if not proxies:
            raise UsageError(f"name at least one proxy; accepted: {', '.join(sorted(PROXIES))}")
        if init_seed is not None:
            check_seed(init_seed, "init_seed", "a non-negative int below 2**32, or None for each query's own seed")
        check_threads(threads)
        self.space, self.proxies, self.budget, self.threads = space, proxies, budget or TrainBudget(), threads
        self.init_seed = init_seed
        self.metrics = (*proxies, "params")
        self.data = evaluation_data(space, self.budget, data)
        self.batch = next(iter(self.data.loaders(batch_size, seed=0)[0]))  # one fixed batch for every network

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records: the proxies, the networks' budget and the batch."""
        return {"evaluator": self.name, "proxies": list(self.proxies), "budget": self.budget.to_dict(),
                "data": self.data.name, "split_sizes": [len(self.data.train), len(self.data.val), len(self.data.test)],
                "batch_size": len(self.batch[1]), "init_seed": self.init_seed}

    def __call__(self, arch: Arch, seed: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = {}
        with torch_threads(self.threads):
            for name in self.proxies:
                seed_everything(seed if self.init_seed is None else self.init_seed)  # same weights for each proxy
                model = build_network(self.space, arch, self.data, self.budget.skeleton)
                result[name] = score(name, model, self.batch)
        result["params"] = count_params(model)
        return result
