"""Neural architecture search: search spaces, one search loop, strategies, evaluators, a benchmark."""

from .analysis import expected_best_of_n, mean_interval, spearman
from .benchmark.table import Benchmark
from .evaluators import (
    ProxyEvaluator,
    TabularEvaluator,
    TrainBudget,
    TrainEvaluator,
    count_flops,
    count_params,
    measure_latency,
)
from .executors import ProcessExecutor, RayExecutor, SequentialExecutor
from .search import SearchResult, Strategy, Trial, fitness, search
from .spaces import CategoricalSpace, CellSpace, MacroSpace, SearchSpace, compound_scaling
from .strategies import (
    Hyperband,
    LocalSearch,
    OptunaSampler,
    PredictorSearch,
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    SuccessiveHalving,
)

__all__ = [
    "Benchmark", "CategoricalSpace", "CellSpace", "Hyperband", "LocalSearch", "MacroSpace", "OptunaSampler",
    "PredictorSearch", "SuccessiveHalving",
    "ProcessExecutor", "ProxyEvaluator", "RandomSearch", "RayExecutor", "RegularizedEvolution", "Reinforce",
    "SearchResult", "SearchSpace",
    "SequentialExecutor", "Strategy", "TabularEvaluator", "TrainBudget", "TrainEvaluator", "Trial", "compound_scaling",
    "count_flops", "count_params", "expected_best_of_n", "fitness", "mean_interval", "measure_latency", "plots",
    "search", "spearman",
]


LAZY = ("plots", "objectives", "proxies")  # submodules imported on first use (plots: matplotlib is slow)


def __getattr__(name: str):
    """``nas.plots``, ``nas.objectives`` and ``nas.proxies`` are imported on first use."""
    if name in LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dfl_toolkit.nas' has no attribute {name!r}")
