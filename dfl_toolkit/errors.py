"""Errors the toolkit raises on bad input, each naming what was wrong and what is accepted."""

from __future__ import annotations

from collections.abc import Iterable


class DFLError(Exception):
    """Base class of every error raised on purpose by dfl_toolkit."""


class UnknownNameError(DFLError, ValueError):
    """A name (dataset, photo, option, device, layer, ...) that the toolkit does not know.

    The message lists the accepted names, or, when there are more than ``MAX_LISTED``, only the nearest
    ones and ``see`` (where to find them all); ``accepted`` always holds every name.

    Example:
        >>> str(UnknownNameError("optimizer", "adamm", ["adam", "sgd"]))
        "unknown optimizer 'adamm'; did you mean 'adam'? accepted: adam, sgd"
    """

    MAX_LISTED = 20

    def __init__(self, kind: str, name: object, accepted: Iterable[str], see: str | None = None):
        import difflib

        self.kind, self.name, self.accepted, self.see = kind, name, sorted(accepted), see
        near = difflib.get_close_matches(str(name), self.accepted, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
        if len(self.accepted) <= self.MAX_LISTED:
            listed = f"accepted: {', '.join(self.accepted)}"
        else:
            listed = f"{len(self.accepted):,} names are accepted" + (f": see {see}" if see else "")
        super().__init__(f"unknown {kind} {name!r}; {hint}{listed}")


class UsageError(DFLError, ValueError):
    """An argument outside what a function or command accepts: a bad value or a bad combination."""


class DatasetUnavailableError(DFLError, RuntimeError):
    """A dataset that needs a download could not be fetched (no network, timeout, bad file)."""


class ShapeError(DFLError, ValueError):
    """An input of the wrong shape (or mismatched lengths); the message says which shapes are accepted."""


class CheckpointError(DFLError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the model it is loaded into."""


class ClusterLostError(DFLError, RuntimeError):
    """A Ray cluster that cannot be reached, or that went away during a run; the message says what to resume."""


class WeightsUnavailableError(DFLError, RuntimeError):
    """Pretrained weights that could not be loaded (no network, optional package missing, bad file)."""


class NotInTableError(DFLError, KeyError):
    """An architecture that a (partly built) benchmark table does not hold. A KeyError too, so code that
    treats a missing cell as "train it instead" can catch it as one."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
