"""Search strategies: each implements setup / ask / tell / config and plugs into :func:`search`."""

from .evolution import RegularizedEvolution
from .random_search import RandomSearch
from .reinforce import Reinforce

__all__ = ["RandomSearch", "RegularizedEvolution", "Reinforce"]
