"""Evaluate an architecture without training it: zero-cost proxies at initialisation (milliseconds).

The network is built exactly as :class:`TrainEvaluator` would build it for the same budget (same
data, same skeleton), initialised from the query's seed, and scored on one fixed training batch, so
scores compare across architectures. Search on a proxy with ``objective=<proxy name>``; judge what
it finds with a table or real training: proxies rank cells only loosely (``benchmarks/proxy_correlation.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...data import DatasetSplits, get_dataset
from ...errors import UnknownNameError
from ...runtime import check_threads, seed_everything, torch_threads
from ..proxies import PROXIES, score
from ..spaces.base import Arch, SearchSpace
from .cost import count_params
from .train import TrainBudget, build_network, check_skeleton


class ProxyEvaluator:
    """``evaluator(arch, seed)`` returns each of ``proxies`` (higher = predicted better) and ``params``.

    Example:
        >>> ev = ProxyEvaluator(CellSpace(), proxies=("naswot", "synflow"))
        >>> result = search(CellSpace(), RegularizedEvolution(), ev, budget=200, objective="naswot")
    """

    def __init__(self, space: SearchSpace, proxies: Sequence[str] = ("naswot",), budget: TrainBudget | None = None,
                 batch_size: int = 64, data: DatasetSplits | None = None, threads: int | None = 1):
        proxies = (proxies,) if isinstance(proxies, str) else tuple(proxies)
        for name in proxies:
            if name not in PROXIES:
                raise UnknownNameError("proxy", name, PROXIES)
        if not proxies:
            raise ValueError(f"name at least one proxy; accepted: {', '.join(sorted(PROXIES))}")
        check_threads(threads)
        self.space, self.proxies, self.budget, self.threads = space, proxies, budget or TrainBudget(), threads
        check_skeleton(space, self.budget.skeleton)
        self.data = data or get_dataset(self.budget.dataset, **self.budget.data_options)
        self.batch = next(iter(self.data.loaders(batch_size, seed=0)[0]))  # one fixed batch for every network

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records: the proxies, the networks' budget and the batch."""
        return {"evaluator": "proxy", "proxies": list(self.proxies), "budget": self.budget.to_dict(),
                "data": self.data.name, "batch_size": len(self.batch[1])}

    def __call__(self, arch: Arch, seed: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = {}
        with torch_threads(self.threads):
            for name in self.proxies:
                seed_everything(seed)  # every proxy scores the same initial weights
                model = build_network(self.space, arch, self.data, self.budget.skeleton)
                result[name] = score(name, model, self.batch)
        result["params"] = count_params(model)
        return result
