"""Evaluators: turn an architecture into measured results."""

from .cost import count_flops, count_params, measure_latency
from .proxy import ProxyEvaluator
from .tabular import TabularEvaluator
from .train import TrainBudget, TrainEvaluator

EVALUATORS = {cls.name: cls for cls in (TrainEvaluator, TabularEvaluator, ProxyEvaluator)}  # the registry

__all__ = ["EVALUATORS", "ProxyEvaluator", "TabularEvaluator", "TrainBudget", "TrainEvaluator", "count_flops",
           "count_params", "measure_latency"]
