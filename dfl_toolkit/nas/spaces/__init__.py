"""Search spaces: a small protocol and the spaces that follow it."""

from .base import Arch, CategoricalSpace, SearchSpace
from .cell import OPS, CellNetwork, CellSpace
from .macro import MacroSpace, compound_scaling

__all__ = ["OPS", "Arch", "CategoricalSpace", "CellNetwork", "CellSpace", "MacroSpace", "SearchSpace",
           "compound_scaling"]
