"""The small protocol every search space follows, so that every strategy works on every space.

An architecture is a tuple with one option per choice (e.g. one operation per edge of a cell),
so it hashes, compares, and goes into JSON checkpoints without pickling. A space knows how to
sample, mutate, encode and print its architectures, and how to build one as a ``torch.nn.Module``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from torch import nn

from ...errors import UnknownNameError, UsageError

Arch = tuple[Any, ...]


@runtime_checkable
class SearchSpace(Protocol):
    """What strategies, evaluators and the search loop may ask of a search space.

    A space *declares* what its ``build`` offers instead of being inspected: ``build_options`` are the skeleton
    options ``build(arch, in_channels=..., num_classes=..., **skeleton)`` accepts, and ``input_ranks`` the
    input ranks it builds networks for (2: images (C, H, W); 1: signals (C, L), given to ``build`` as ``dims``).
    """

    name: str
    choices: list[tuple[str, tuple[Any, ...]]]  # (choice name, its options), in arch order
    build_options: tuple[str, ...]
    input_ranks: tuple[int, ...]

    def sample(self, rng: random.Random) -> Arch: ...
    def mutate(self, arch: Arch, rng: random.Random) -> Arch: ...
    def encode(self, arch: Arch) -> list[float]: ...
    def index(self, arch: Arch) -> list[int]: ...
    def from_index(self, index: Sequence[int]) -> Arch: ...
    def validate(self, arch: Sequence[Any]) -> Arch: ...
    def to_str(self, arch: Arch) -> str: ...
    def from_str(self, text: str) -> Arch: ...
    def canonical(self, arch: Arch) -> Hashable: ...
    def build(self, arch: Arch, *, in_channels: int, num_classes: int, **skeleton: Any) -> nn.Module: ...


class CategoricalSpace:
    """A space that is a product of categorical choices: sampling, mutation, one-hot encoding,
    enumeration and validation come for free; subclasses add a string form, a canonical form and
    ``build``.
    """

    name = "categorical"
    choices: list[tuple[str, tuple[Any, ...]]] = []
    build_options: tuple[str, ...] = ()
    input_ranks: tuple[int, ...] = (2,)

    def __len__(self) -> int:
        return math.prod(len(options) for _, options in self.choices)

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture, in a fixed order."""
        return (tuple(a) for a in itertools.product(*(options for _, options in self.choices)))

    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random architecture."""
        return tuple(rng.choice(options) for _, options in self.choices)

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """A neighbour of ``arch``: one choice changed to another of its options."""
        arch = self.validate(arch)
        mutable = [i for i, (_, options) in enumerate(self.choices) if len(options) > 1]
        i = rng.choice(mutable)
        new = list(arch)
        new[i] = rng.choice([o for o in self.choices[i][1] if o != arch[i]])
        return tuple(new)

    def encode(self, arch: Arch) -> list[float]:
        """One-hot per choice, concatenated (a fixed-length vector for predictors)."""
        arch = self.validate(arch)
        return [float(value == option) for value, (_, options) in zip(arch, self.choices, strict=True)
                for option in options]

    def index(self, arch: Arch) -> list[int]:
        """The option index of each choice (what a policy over choices samples)."""
        arch = self.validate(arch)
        return [options.index(value) for value, (_, options) in zip(arch, self.choices, strict=True)]

    def from_index(self, index: Sequence[int]) -> Arch:
        return tuple(options[i] for i, (_, options) in zip(index, self.choices, strict=True))

    def validate(self, arch: Sequence[Any]) -> Arch:
        """``arch`` as a tuple, or a clear error naming the bad part and what is accepted."""
        if isinstance(arch, str) or not isinstance(arch, Sequence) or len(arch) != len(self.choices):
            raise UsageError(f"an architecture of {self.name!r} is a sequence of {len(self.choices)} choices "
                             f"({', '.join(n for n, _ in self.choices)}), got {arch!r}")
        for value, (name, options) in zip(arch, self.choices, strict=True):
            if value not in options:
                raise UnknownNameError(f"option for {name}:", value, [str(o) for o in options])
        return tuple(arch)

    def canonical(self, arch: Arch) -> Hashable:
        return self.validate(arch)
