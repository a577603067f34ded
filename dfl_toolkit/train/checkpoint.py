"""Atomic checkpoint files loaded with ``weights_only=True`` (no arbitrary unpickling)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically: a crash mid-write never leaves a half file."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:200]}); "
                              f"delete it or pass resume=False to start over") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict; it was not written by dfl_toolkit")
    return state
