"""What a check compares, as plain data, by the same rules in a student's self-check and in the grader.

A check call gets the *answer* (its first argument, computed by the student's code) and a *spec* (the expected
value, shape, bounds, tolerances, name and hint). The answer is normalized (numbers to float64 arrays, shapes to
tuples, plain data to lists and dicts), can be serialized to JSON (arrays as base64 bytes, never pickle) and
compared with :func:`problem`. When grading, the answer comes out of the sandboxed submission as data
(:func:`answer`), the spec out of the source notebook's clean run (:func:`record`), and the grader compares them
in its own process.

This file imports nothing from the toolkit (and numpy only when needed), so a grading kernel can load it by path.

Example:
    >>> problem("check_close", normalize("check_close", 0.5), make_spec("check_close", expected=0.7, name="q1"))
    '1 of 1 values differ; e.g. got 0.5, expected 0.7 (tolerance rtol=0.01, atol=1e-06)'
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANSWER_MIME = "application/vnd.dfl.answer+json"
REFERENCE_MIME = "application/vnd.dfl.reference+json"
MAX_ARRAY = 4_000_000  # values in one answer array
MAX_PLAIN = 100_000  # items in one plain-data answer

# kind: (the answer parameter, the spec parameters in order, the spec defaults); checks.py has the same signatures
KINDS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "check": ("condition", ("name", "hint", "problem"), {"hint": "", "problem": "the condition is false"}),
    "check_close": ("actual", ("expected", "name", "rtol", "atol", "hint"), {"rtol": 1e-2, "atol": 1e-6, "hint": ""}),
    "check_shape": ("value", ("shape", "name", "hint"), {"hint": ""}),
    "check_between": ("value", ("low", "high", "name", "hint"), {"hint": ""}),
    "check_equal": ("actual", ("expected", "name", "hint"), {"hint": ""}),
    "check_in": ("value", ("options", "name", "hint"), {"hint": ""}),
}


class CheckFailed(AssertionError):
    """A self-check that did not pass; the message names the check, what was wrong and a hint."""


@dataclass(frozen=True)
class Unreadable:
    """An answer that cannot be compared; ``reason`` says why (shown to the student)."""

    reason: str


# ---------------------------------------------------------------------------------------------- normalizing


def _numbers(value: Any) -> Any:
    """float64 array, {key: float64 array} for a mapping, None, or Unreadable."""
    import numpy as np

    if value is None:
        return None
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            arr = _numbers(v)
            if not isinstance(arr, np.ndarray):
                return arr if isinstance(arr, Unreadable) else Unreadable(f"entry {k!r} is None")
            out[str(k)] = arr
        return out
    try:
        if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
            value = value.detach().cpu().double().numpy()
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        return Unreadable(f"expected a number, an array or a tensor, got {type(value).__name__} ({err})")
    if arr.size > MAX_ARRAY:
        return Unreadable(f"an array of {arr.size:,} values; at most {MAX_ARRAY:,} can be compared")
    return arr


def _plain(value: Any, budget: list[int] | None = None) -> Any:
    """Plain data (None, bool, int, float, str, list, dict) from ``value``; tuples and arrays become lists."""
    budget = [MAX_PLAIN] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_PLAIN:,} items")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value).__module__.split(".")[0] in ("numpy", "torch") and hasattr(value, "tolist"):
        return _plain(value.tolist(), budget)
    if isinstance(value, (list, tuple)):
        return [_plain(v, budget) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = _plain(k, budget)
            if not isinstance(key, (type(None), bool, int, float, str)):
                raise ValueError(f"a dict key of type {type(k).__name__}")
            out[key] = _plain(v, budget)
        return out
    raise ValueError(f"a {type(value).__name__}")


def normalize(kind: str, value: Any) -> Any:
    """The comparable form of a check's answer (an :class:`Unreadable` when there is none).

    Example:
        >>> normalize("check_close", [1, 2])
        array([1., 2.])
    """
    try:
        if kind == "check":
            return bool(value)
        if kind in ("check_close", "check_between"):
            return _numbers(value)
        if kind == "check_shape":
            shape = getattr(value, "shape", None)
            return Unreadable(type(value).__name__) if shape is None else tuple(int(s) for s in shape)
        if kind in ("check_equal", "check_in"):
            return _plain(value)
    except Exception as err:  # whatever the value does (a hostile __bool__, a huge list): the answer is unreadable
        what = "plain data (numbers, strings, lists, dicts)" if kind in ("check_equal", "check_in") else "a value"
        return Unreadable(f"expected {what}, got {type(value).__name__} ({err})")
    raise ValueError(f"unknown check {kind!r}; known: {', '.join(KINDS)}")


def make_spec(kind: str, **params: Any) -> dict[str, Any]:
    """The normalized spec of a check call (defaults filled in); raises ValueError for a bad spec."""
    names, defaults = KINDS[kind][1], KINDS[kind][2]
    unknown = set(params) - set(names)
    if unknown:
        raise TypeError(f"{kind}() got unexpected arguments {sorted(unknown)}; accepted: {', '.join(names)}")
    spec = {**defaults, **params}
    missing = [n for n in names if n not in spec]
    if missing:
        raise TypeError(f"{kind}() is missing {', '.join(missing)}")
    spec["name"], spec["hint"] = str(spec["name"]), str(spec["hint"])
    if kind == "check":
        spec["problem"] = str(spec["problem"])
    elif kind == "check_close":
        spec["expected"] = _numbers(spec["expected"])
        spec["rtol"], spec["atol"] = float(spec["rtol"]), float(spec["atol"])
        if spec["expected"] is None or isinstance(spec["expected"], Unreadable):
            raise ValueError(f"check_close {spec['name']!r}: the expected value is not numbers ({spec['expected']})")
    elif kind == "check_shape":
        spec["shape"] = tuple(int(s) for s in spec["shape"])
    elif kind == "check_between":
        spec["low"], spec["high"] = float(spec["low"]), float(spec["high"])
    elif kind == "check_equal":
        spec["expected"] = _plain(spec["expected"])
    elif kind == "check_in":
        spec["options"] = [_plain(o) for o in spec["options"]]
    return spec


# ---------------------------------------------------------------------------------------------- comparing


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _close_problem(a: Any, e: Any, rtol: float, atol: float) -> str | None:
    import numpy as np

    if isinstance(e, dict):
        if not isinstance(a, dict):
            return f"expected a dict of {len(e)} arrays ({', '.join(list(e)[:4])}...), got one array"
        if list(a) != list(e):
            return f"keys {list(a)[:6]}, expected {list(e)[:6]}"
        for k in e:
            p = _close_problem(a[k], e[k], rtol, atol)
            if p:
                return f"{k}: {p}"
        return None
    if isinstance(a, dict):
        return f"expected an array of shape {tuple(e.shape)}, got a dict"
    if a.shape != e.shape:
        return f"shape {tuple(a.shape)}, expected {tuple(e.shape)}"
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=False)
    if bad.any():
        diff = np.where(np.isnan(a - e), np.inf, np.abs(a - e)).ravel()
        worst = int(np.argmax(diff))
        return (f"{int(bad.sum())} of {a.size} values differ; e.g. got {_fmt(a.ravel()[worst])}, "
                f"expected {_fmt(e.ravel()[worst])} (tolerance rtol={spec_num(rtol)}, atol={spec_num(atol)})")
    return None


def spec_num(x: float) -> str:
    """A tolerance as written in a check call (0.01, 1e-06, 0)."""
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


def _short(v: Any, n: int = 80) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def problem(kind: str, answer: Any, spec: dict[str, Any]) -> str | None:
    """What is wrong with a normalized ``answer`` given a normalized ``spec``, or None when the check passes."""
    import numpy as np

    if isinstance(answer, Unreadable):
        if kind == "check_shape":
            return f"expected a tensor or array of shape {spec['shape']}, got {answer.reason}"
        return answer.reason
    if kind == "check":
        return None if answer is True else spec["problem"]
    if kind == "check_close":
        if answer is None:
            return "got None (did the function return its result?)"
        if not isinstance(answer, (dict, np.ndarray)):
            return "the answer could not be read"
        return _close_problem(answer, spec["expected"], spec["rtol"], spec["atol"])
    if kind == "check_shape":
        return None if tuple(answer) == spec["shape"] else f"shape {tuple(answer)}, expected {spec['shape']}"
    if kind == "check_between":
        low, high = spec["low"], spec["high"]
        if not isinstance(answer, np.ndarray):
            return f"expected a number or an array of numbers, got {'None' if answer is None else 'a dict'}"
        bad = ~((answer >= low) & (answer <= high))
        if answer.ndim == 0:
            return f"got {_fmt(float(answer))}, expected a value in [{low:g}, {high:g}]" if bad else None
        if bad.any():
            first = answer.ravel()[int(np.argmax(bad.ravel()))]
            return f"{int(bad.sum())} of {answer.size} values outside [{low:g}, {high:g}]; e.g. {_fmt(first)}"
        return None
    if kind == "check_equal":
        return None if answer == spec["expected"] else f"got {_short(answer)}, expected {_short(spec['expected'])}"
    if kind == "check_in":
        return None if answer in spec["options"] else f"got {_short(answer)}, expected one of {_short(spec['options'])}"
    raise ValueError(f"unknown check {kind!r}")


def failure_text(spec: dict[str, Any], what: str) -> str:
    """``FAIL <name>: <what>`` with the hint on the next line, as a check prints it."""
    return f"FAIL {spec['name']}: {what}" + (f"\nHint: {spec['hint']}" if spec["hint"] else "")


def run_check(kind: str, value: Any, **params: Any) -> None:
    """Print ``PASS <name>`` or raise :class:`CheckFailed`: what every function in ``checks`` does."""
    spec = make_spec(kind, **params)
    what = problem(kind, normalize(kind, value), spec)
    if what is not None:
        raise CheckFailed(failure_text(spec, what))
    print(f"PASS {spec['name']}")


# ---------------------------------------------------------------------------------------------- JSON


def _plain_to_json(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return {"float": repr(v)}
    if isinstance(v, list):
        return [_plain_to_json(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[_plain_to_json(k), _plain_to_json(x)] for k, x in v.items()]}
    return v


def _plain_from_json(v: Any, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("too many items")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, list):
        return [_plain_from_json(x, budget) for x in v]
    if isinstance(v, dict) and set(v) == {"float"} and v["float"] in ("inf", "-inf", "nan"):
        return float(v["float"])
    if isinstance(v, dict) and set(v) == {"dict"} and isinstance(v["dict"], list):
        out = {}
        for pair in v["dict"]:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError("a bad dict entry")
            key = _plain_from_json(pair[0], budget)
            if not isinstance(key, (type(None), bool, int, float, str)):
                raise ValueError("a bad dict key")
            out[key] = _plain_from_json(pair[1], budget)
        return out
    raise ValueError(f"unexpected {type(v).__name__}")


def _array_to_json(a: Any) -> dict[str, Any]:
    import numpy as np

    return {"shape": list(a.shape), "f8": base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode()}


def _array_from_json(d: Any) -> Any:
    import numpy as np

    if not (isinstance(d, dict) and set(d) == {"shape", "f8"} and isinstance(d["shape"], list)
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_ARRAY for s in d["shape"])
            and len(d["shape"]) <= 32 and isinstance(d["f8"], str)):
        raise ValueError("a bad array")
    size = math.prod(d["shape"])
    raw = base64.b64decode(d["f8"], validate=True)
    if size > MAX_ARRAY or len(raw) != 8 * size:
        raise ValueError("an array whose size does not match its shape")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(d["shape"])


def to_json(value: Any) -> Any:
    """A normalized answer or expected value as JSON-able data (see :func:`from_json`)."""
    import numpy as np

    if isinstance(value, Unreadable):
        return {"unreadable": value.reason}
    if value is None:
        return {"none": True}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, np.ndarray):
        return {"array": _array_to_json(value)}
    if isinstance(value, tuple):
        return {"shape": list(value)}
    if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
        return {"arrays": [[k, _array_to_json(v)] for k, v in value.items()]}
    return {"plain": _plain_to_json(value)}


def from_json(data: Any) -> Any:
    """The normalized value :func:`to_json` wrote; anything malformed becomes an :class:`Unreadable`."""
    try:
        if not (isinstance(data, dict) and len(data) == 1):
            raise ValueError("not a tagged value")
        (tag, v), = data.items()
        if tag == "unreadable" and isinstance(v, str):
            return Unreadable(v[:2000])
        if tag == "none" and v is True:
            return None
        if tag == "bool" and isinstance(v, bool):
            return v
        if tag == "array":
            return _array_from_json(v)
        if tag == "shape" and isinstance(v, list) and len(v) <= 32 and all(
                isinstance(s, int) and not isinstance(s, bool) for s in v):
            return tuple(v)
        if tag == "arrays" and isinstance(v, list) and v:
            if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in v):
                raise ValueError("a bad dict of arrays")
            return {k: _array_from_json(a) for k, a in v}
        if tag == "plain":
            return _plain_from_json(v, [MAX_PLAIN])
        raise ValueError(f"unknown tag {tag!r}")
    except Exception as err:  # malformed data from a sandbox: the answer is unreadable, never a crash
        return Unreadable(f"the answer could not be read ({str(err)[:200]})")


def spec_to_json(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A normalized spec as strict JSON data (infinite bounds included: a Jupyter message cannot hold them raw)."""
    return {k: to_json(v) if kind == "check_close" and k == "expected" else
            _plain_to_json(list(v) if isinstance(v, tuple) else v) for k, v in spec.items()}


def spec_from_json(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The normalized spec :func:`spec_to_json` wrote (from the trusted reference run)."""
    spec = {k: from_json(v) if kind == "check_close" and k == "expected" else _plain_from_json(v, [MAX_PLAIN])
            for k, v in data.items()}
    if isinstance(spec.get("expected"), Unreadable):
        raise ValueError(spec["expected"].reason)
    if kind == "check_shape":
        spec["shape"] = tuple(spec["shape"])
    return spec


# ---------------------------------------------------------------------------------------------- in a kernel


def answer(site: str, kind: str, value: Any) -> None:
    """(In a submission's grading kernel) publish the normalized answer of one check call as display data."""
    from IPython.display import publish_display_data

    publish_display_data({ANSWER_MIME: {"site": site, "kind": kind, "value": to_json(normalize(kind, value))}})


def record(site: str, kind: str, **params: Any) -> None:
    """(In the source notebook's clean reference kernel) publish a check call's answer and spec, then run it."""
    from IPython.display import publish_display_data

    answer_name = KINDS[kind][0]
    value = params.pop(answer_name)
    spec = make_spec(kind, **params)
    publish_display_data({REFERENCE_MIME: {"site": site, "kind": kind, "value": to_json(normalize(kind, value)),
                                           "spec": spec_to_json(kind, spec)}})
    run_check(kind, value, **params)
