"""Search strategies: each implements setup / ask / tell / config and plugs into :func:`search`; and DARTS
(``darts``), the gradient-based search that trains one supernet instead (imported on first use)."""

from .evolution import RegularizedEvolution
from .local_search import LocalSearch
from .multi_fidelity import Hyperband, SuccessiveHalving
from .optuna_tpe import OptunaSampler
from .predictor import PredictorSearch
from .random_search import RandomSearch
from .reinforce import Reinforce

# the registry (what the command line offers), built from each class's name
STRATEGIES = {cls.name: cls for cls in (RandomSearch, RegularizedEvolution, Reinforce, PredictorSearch, LocalSearch,
                                        OptunaSampler, SuccessiveHalving, Hyperband)}

__all__ = ["STRATEGIES", "Hyperband", "LocalSearch", "OptunaSampler", "PredictorSearch", "RandomSearch",
           "RegularizedEvolution", "Reinforce", "SuccessiveHalving"]
