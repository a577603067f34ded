"""Self-checks for assignments: a clear pass line, or a failure that says what was expected and how to fix it.

Students call these in the check cells of an assignment notebook; the grader counts a check cell as
passed when it runs without an error. A passing check prints one fixed line (no numbers), so the
line can be compared by nbval.

Example:
    >>> from dfl_toolkit import checks
    >>> checks.check_close(0.5 + 0.25, 0.75, "q1: sum of attributions")
    PASS q1: sum of attributions
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class CheckFailed(AssertionError):
    """A self-check that did not pass; the message names the check, what was wrong and a hint."""


def _fail(name: str, problem: str, hint: str) -> None:
    raise CheckFailed(f"FAIL {name}: {problem}" + (f"\nHint: {hint}" if hint else ""))


def _passed(name: str) -> None:
    print(f"PASS {name}")


def check(condition: Any, name: str, hint: str = "", problem: str = "the condition is false") -> None:
    """Pass when ``condition`` is true.

    Example:
        >>> check(acc > 0.9, "q2: probe accuracy above 90%", hint="probe the last block, not the input")
    """
    if not bool(condition):
        _fail(name, problem, hint)
    _passed(name)


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=float)


def check_close(actual: Any, expected: Any, name: str, *, rtol: float = 1e-2, atol: float = 1e-6,
                hint: str = "") -> None:
    """Pass when ``actual`` equals ``expected`` within ``atol + rtol * |expected|`` elementwise
    (numbers, arrays or tensors of the same shape).

    Example:
        >>> check_close(attr.sum(), logit_gap, "q3: IG completeness", rtol=0.01)
    """
    if actual is None:
        _fail(name, "got None (did the function return its result?)", hint)
    try:
        a, e = _as_array(actual), _as_array(expected)
    except (TypeError, ValueError) as err:
        _fail(name, f"expected a number, an array or a tensor, got {type(actual).__name__} ({err})", hint)
    if a.shape != e.shape:
        _fail(name, f"shape {tuple(a.shape)}, expected {tuple(e.shape)}", hint)
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=False)
    if bad.any():
        worst = int(np.argmax(np.abs(a - e).ravel()))
        _fail(name, f"{int(bad.sum())} of {a.size} values differ; e.g. got {a.ravel()[worst]:.6g}, "
                    f"expected {e.ravel()[worst]:.6g} (tolerance rtol={rtol}, atol={atol})", hint)
    _passed(name)


def check_shape(value: Any, shape: Sequence[int], name: str, hint: str = "") -> None:
    """Pass when ``value`` (tensor or array) has exactly ``shape``.

    Example:
        >>> check_shape(features["features.block1"], (8, 16, 14, 14), "q1: block1 activations")
    """
    got = getattr(value, "shape", None)
    if got is None:
        _fail(name, f"expected a tensor or array of shape {tuple(shape)}, got {type(value).__name__}", hint)
    if tuple(got) != tuple(shape):
        _fail(name, f"shape {tuple(got)}, expected {tuple(shape)}", hint)
    _passed(name)


def check_between(value: Any, low: float, high: float, name: str, hint: str = "") -> None:
    """Pass when ``low <= value <= high`` (a single number).

    Example:
        >>> check_between(test_acc, 0.9, 1.0, "q2: test accuracy")
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        _fail(name, f"expected a number, got {type(value).__name__}", hint)
    if not low <= v <= high:
        _fail(name, f"got {v:.6g}, expected a value in [{low:g}, {high:g}]", hint)
    _passed(name)
