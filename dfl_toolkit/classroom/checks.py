"""Self-checks for assignments: a clear pass line, or a failure that says what was expected and how to fix it.

Students call these in the check cells of an assignment notebook. The first argument is always the student's
*answer*; the others (expected value, shape, bounds, tolerances, name, hint) are the check's *spec*. When a
submission is graded, only the answers are computed in the student's (sandboxed) kernel; the spec comes from the
source notebook run in a clean kernel, and the grader compares the two in its own process by the same rules as
here (``values.py``). A passing check prints one fixed line (no numbers), so the line can be compared by nbval.

Example:
    >>> from dfl_toolkit.classroom import checks
    >>> checks.check_close(0.5 + 0.25, 0.75, "q1: sum of attributions")
    PASS q1: sum of attributions
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .values import CheckFailed, run_check

__all__ = ["CheckFailed", "check", "check_between", "check_close", "check_equal", "check_in", "check_shape"]


def check(condition: Any, name: str, hint: str = "", problem: str = "the condition is false") -> None:
    """Pass when ``condition`` is true. When grading, the condition is computed by the submission itself, so a
    hostile submission can fake it: prefer a check that compares a value (``check_equal``, ``check_close``).

    Example:
        >>> check(acc > 0.9, "q2: probe accuracy above 90%", hint="probe the last block, not the input")
    """
    run_check("check", condition, name=name, hint=hint, problem=problem)


def check_close(actual: Any, expected: Any, name: str, *, rtol: float = 1e-2, atol: float = 1e-6,
                hint: str = "") -> None:
    """Pass when ``actual`` equals ``expected`` within ``atol + rtol * |expected|`` elementwise (numbers, arrays
    or tensors of the same shape, or dicts of them with the same keys, such as two state dicts).

    Example:
        >>> check_close(attr.sum(), logit_gap, "q3: IG completeness", rtol=0.01)
    """
    run_check("check_close", actual, expected=expected, name=name, rtol=rtol, atol=atol, hint=hint)


def check_shape(value: Any, shape: Sequence[int], name: str, hint: str = "") -> None:
    """Pass when ``value`` (tensor or array) has exactly ``shape``.

    Example:
        >>> check_shape(features["features.block1"], (8, 16, 14, 14), "q1: block1 activations")
    """
    run_check("check_shape", value, shape=shape, name=name, hint=hint)


def check_between(value: Any, low: float, high: float, name: str, hint: str = "") -> None:
    """Pass when ``low <= value <= high`` (a number, or every value of an array; bounds may be +-inf).

    Example:
        >>> check_between(test_acc, 0.9, 1.0, "q2: test accuracy")
    """
    run_check("check_between", value, low=low, high=high, name=name, hint=hint)


def check_equal(actual: Any, expected: Any, name: str, hint: str = "") -> None:
    """Pass when ``actual == expected`` as plain data (numbers, strings, booleans, None, and lists, tuples and
    dicts of them; a tuple equals the list with the same items).

    Example:
        >>> check_equal(list(features), ["input", "head.fc1"], "q1: one entry per layer, in order")
    """
    run_check("check_equal", actual, expected=expected, name=name, hint=hint)


def check_in(value: Any, options: Sequence[Any], name: str, hint: str = "") -> None:
    """Pass when ``value`` is one of ``options`` (plain data).

    Example:
        >>> check_in(answer_b.strip().upper(), ["A", "B", "C", "D"], "q3: one of the four statements")
    """
    run_check("check_in", value, options=list(options), name=name, hint=hint)
