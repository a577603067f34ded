"""Search strategies: each implements setup / ask / tell / config and plugs into :func:`search`."""

from .evolution import RegularizedEvolution, fitness
from .optuna_tpe import OptunaSampler
from .predictor import PredictorSearch
from .random_search import RandomSearch
from .reinforce import Reinforce

__all__ = ["OptunaSampler", "PredictorSearch", "RandomSearch", "RegularizedEvolution", "Reinforce", "fitness"]
