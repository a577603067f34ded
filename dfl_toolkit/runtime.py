"""The one place for device choice, seeding, quick mode and the data folder.

Every notebook, the training loop and the NAS code ask this module, so a run on a
laptop CPU, a local GPU or Colab behaves the same way and repeats given a seed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from .errors import UnknownNameError, UsageError

T = TypeVar("T")

QUICK_ENV = "DFL_QUICK"
DEVICE_ENV = "DFL_DEVICE"
DATA_ENV = "DFL_DATA_DIR"
_TRUE = {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``DFL_QUICK`` is set (the test command sets it): shrink epochs, data, budgets.

    Example:
        >>> epochs = 2 if quick_mode() else 15
    """
    return os.environ.get(QUICK_ENV, "").strip().lower() in _TRUE


def by_mode(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode and ``full`` otherwise.

    Example:
        >>> epochs = by_mode(full=15, quick=2)
    """
    return quick if quick_mode() else full


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Pick the device to train on: the argument, else ``DFL_DEVICE``, else cuda > mps > cpu.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    choice = device if device is not None else os.environ.get(DEVICE_ENV, "auto")
    if isinstance(choice, torch.device):
        return choice
    choice = str(choice).strip().lower()
    if choice in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    accepted = ["auto", "cpu", "cuda", "cuda:N", "mps"]
    kind = choice.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise UnknownNameError("device", choice, accepted)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} asked for, but CUDA is not available here; use 'cpu' or 'auto'")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {choice!r} asked for, but MPS is not available here; use 'cpu' or 'auto'")
    try:
        return torch.device(choice)
    except RuntimeError as err:
        raise UnknownNameError("device", choice, accepted) from err


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that CPU runs repeat bit for bit
    (at the same torch thread count: see :func:`torch_threads`).

    Example:
        >>> seed_everything(0); a = torch.rand(1); seed_everything(0); bool(a == torch.rand(1))
        True
    """
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def check_seed(seed: object, name: str = "seed", accepted: str = "a non-negative int below 2**32") -> None:
    """Raise a clear error unless ``seed`` is a non-negative int below 2**32 (what :func:`seed_everything`
    takes, and small enough for a search to derive one seed per evaluation from it)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise UsageError(f"{name} must be {accepted}, got {seed!r}")


SEED_MULTIPLIER = 100_003  # a prime: seeds s and t share a derived seed only if keys differ by (s - t) * 100,003


def derive_seed(seed: int, *keys: int) -> int:
    """The seed of one part of a run (an epoch of ``fit``, a trial of ``search``, ...), from the run's ``seed``.

    The one place seeds are derived, so any seed a user may pass (a non-negative int below 2**32) gives
    seeds that every part accepts: folded key by key as ``seed * 100_003 + key`` modulo 2**32, always below
    2**32. For seed 0 and small keys this is the plain ``seed * 100_003 + key`` the toolkit's benchmark table
    was trained with, so its runs repeat exactly; seeds that differ (or keys below 100,003 that differ)
    give different seeds.

    Example:
        >>> derive_seed(0, 3), derive_seed(2**32 - 1, 3) < 2**32
        (3, True)
    """
    check_seed(seed)
    out = seed
    for key in keys:
        if not isinstance(key, int) or isinstance(key, bool) or key < 0:
            raise UsageError(f"derive_seed keys are non-negative ints (an epoch, a trial number), got {key!r}")
        out = (out * SEED_MULTIPLIER + key) % 2**32
    return out


def check_threads(n: int | None) -> None:
    """Raise a clear error unless ``n`` is a positive int or None (a torch thread count, or "leave it")."""
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"threads must be a positive int or None (the current setting), got {n!r}")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads (``None``: leave it), then restore the previous count.

    Why: a CPU run repeats bit for bit only at the same thread count (threads split sums in a different
    order), so code that must give the same numbers on any laptop fixes it.

    Example:
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
    """
    if n is None:
        yield
        return
    check_threads(n)
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Run a block with ``model`` in eval mode (dropout off, batch-norm statistics frozen), then give every
    submodule its own mode back, so measuring or explaining a model never changes how it trains.

    Example:
        >>> with eval_mode(model):
        ...     logits = model(x)
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def data_dir() -> Path:
    """Folder where datasets are cached: ``DFL_DATA_DIR``, else the repository's ``data/`` in a clone,
    else ``~/.cache/dfl_toolkit`` (e.g. when installed from a wheel or from git, as on Colab)."""
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
    else:
        repo = Path(__file__).resolve().parent.parent  # site-packages when installed: never its data/ folder
        repo_data = repo / "data"
        in_repo = (repo / "pyproject.toml").is_file() and repo_data.is_dir() and os.access(repo_data, os.W_OK)
        path = repo_data if in_repo else Path.home() / ".cache" / "dfl_toolkit"
    path.mkdir(parents=True, exist_ok=True)
    return path
