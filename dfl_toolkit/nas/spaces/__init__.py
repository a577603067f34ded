"""Search spaces: a small protocol and the spaces that follow it."""

from .base import Arch, CategoricalSpace, SearchSpace
from .cell import OPS, CellNetwork, CellSpace
from .macro import MacroSpace, compound_scaling

SPACES = {cls.name: cls for cls in (CellSpace, MacroSpace)}  # the registry: what the command line offers

__all__ = ["OPS", "SPACES", "Arch", "CategoricalSpace", "CellNetwork", "CellSpace", "MacroSpace", "SearchSpace",
           "compound_scaling"]
