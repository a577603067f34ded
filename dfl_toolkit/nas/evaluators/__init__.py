"""Evaluators: turn an architecture into measured results."""

from .cost import count_flops, count_params, measure_latency
from .proxy import ProxyEvaluator
from .tabular import TabularEvaluator
from .train import TrainBudget, TrainEvaluator

__all__ = ["ProxyEvaluator", "TabularEvaluator", "TrainBudget", "TrainEvaluator", "count_flops", "count_params",
           "measure_latency"]
