"""The one checkpoint policy for every long run: ``fit``, ``search``, ``darts_search`` and the benchmark build.

1. State is written atomically after every unit of work (an epoch, an evaluation): a kill at any moment
   leaves the previous checkpoint whole, and the temporary files of killed writers are removed on the next
   write.
2. A checkpoint records its format and the settings that made it (``config``). Running the same call again
   resumes from it; a checkpoint of another kind, another version or other settings is refused with one
   :class:`~dfl_toolkit.errors.CheckpointError` naming what differs (``epochs: saved 3, now 5``).
3. ``resume=False`` (or deleting the file) starts over. Tensors are stored with ``torch.save`` and read
   with ``weights_only=True``; everything else is JSON. Nothing is ever unpickled.

Example:
    >>> save_checkpoint({"format": "demo/1", "config": {"lr": 0.1}, "step": 3}, "runs/demo.pt")
    >>> state = load_checkpoint("runs/demo.pt")
    >>> check_resumable(state, "demo/1", {"lr": 0.1}, "runs/demo.pt")  # raises if lr differs
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import CheckpointError

START_OVER = "delete it or use another checkpoint path (or resume=False) to start over"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writers of ``path`` killed mid-write left beside it; returns them."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)\.[^.]+\.tmp" + re.escape(path.suffix) + "$")
    removed = []
    for tmp in path.parent.glob(f"{path.name}.*.tmp*") if path.parent.is_dir() else ():
        m = pattern.match(tmp.name)
        if m and int(m[1]) != os.getpid() and not _alive(int(m[1])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path`` in one step.

    The temporary name holds the writer's process id, so leftovers of a killed writer are recognised and
    removed by the next write.

    Example:
        >>> with atomic_path("runs/state.json") as tmp:
        ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically with ``torch.save``.

    Example:
        >>> save_checkpoint({"model": model.state_dict(), "epoch": 3}, "runs/model.pt")
    """
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with ``weights_only=True`` (no unpickling).

    Example:
        >>> model.load_state_dict(load_checkpoint("runs/model.pt")["model"])
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:200]}); "
                              f"{START_OVER}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict; it was not written by dfl_toolkit")
    return state


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload))


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON checkpoint as a dict, or a :class:`CheckpointError` saying why it cannot be read."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read ({err}); {START_OVER}") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path} cannot be read (not a JSON object); {START_OVER}")
    return data


def config_differences(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> str:
    """The settings that differ between two (nested) configs, e.g. ``budget.epochs: saved 3, now 5``.

    Example:
        >>> config_differences({"seed": 0, "budget": {"epochs": 3}}, {"seed": 0, "budget": {"epochs": 5}})
        'budget.epochs: saved 3, now 5'
    """
    out = []
    for k in sorted(set(saved) | set(now)):
        a, b = saved.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out.append(config_differences(a, b, f"{prefix}{k}."))
        elif a != b:
            out.append(f"{prefix}{k}: saved {a!r}, now {b!r}")
    return "; ".join(x for x in out if x)


def as_json(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from a JSON checkpoint (tuples become lists), or a clear error."""
    try:
        return json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"a checkpoint stores its settings as JSON: plain str / int / float / bool / list / dict "
                        f"values, no NaN; got {config} ({err})") from err


def check_resumable(state: dict[str, Any], fmt: str, config: dict[str, Any], path: str | os.PathLike,
                    what: str = "run") -> None:
    """Raise :class:`CheckpointError` unless ``state`` is a ``fmt`` checkpoint made with ``config``.

    Example:
        >>> check_resumable({"format": "fit/2", "config": {"lr": 0.1}}, "fit/2", {"lr": 0.2}, "a.pt")
        Traceback (most recent call last):
        CheckpointError: checkpoint a.pt belongs to another run (lr: saved 0.1, now 0.2); delete it ...
    """
    if state.get("format") != fmt:
        raise CheckpointError(f"checkpoint {path} is not a {what} checkpoint of this version (format "
                              f"{state.get('format')!r}, expected {fmt!r}); {START_OVER}")
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {path} records no settings, so it cannot be checked; {START_OVER}")
    now = as_json(config)
    if saved != now:
        raise CheckpointError(f"checkpoint {path} belongs to another {what} ({config_differences(saved, now)}); "
                              f"{START_OVER}")
