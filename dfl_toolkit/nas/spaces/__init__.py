"""Search spaces: a small protocol and the spaces that follow it."""

from .base import Arch, CategoricalSpace, SearchSpace
from .cell import OPS, CellNetwork, CellSpace

__all__ = ["OPS", "Arch", "CategoricalSpace", "CellNetwork", "CellSpace", "SearchSpace"]
