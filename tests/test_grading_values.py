"""What crosses the sandbox boundary (answers as JSON) and how check cells are rewritten: no kernel needed."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from dfl_toolkit.classroom import AssignmentError, checks
from dfl_toolkit.classroom.rewrite import answer_cell, check_calls, reference_cell
from dfl_toolkit.classroom.values import (
    KINDS,
    Unreadable,
    from_json,
    make_spec,
    normalize,
    problem,
    spec_from_json,
    spec_to_json,
    to_json,
)

HIDDEN = '''# HIDDEN CHECK q1 (1 point)
def secret_reference(x):
    return x + x
expected = secret_reference(-1.5)
print("the reference says", expected)
torch.manual_seed(0)
with torch.no_grad():
    weights = expected * 2
    checks.check_close(double(-1.5), expected, "q1 hidden: a negative number", rtol=0, atol=0)
for k in range(2):
    mine = double(k)
    checks.check_equal(mine, weights + k, f"q1 hidden: {k}")'''


def test_the_check_functions_have_the_signatures_the_grader_binds():
    for kind, (answer, spec, defaults) in KINDS.items():
        params = inspect.signature(getattr(checks, kind)).parameters
        assert list(params) == [answer, *spec] or set(params) == {answer, *spec}, kind
        assert {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty} == defaults


@pytest.mark.parametrize("kind, value", [
    ("check_close", torch.arange(6.0).reshape(2, 3)), ("check_close", {"w": np.ones(3), "b": 2.0}),
    ("check_close", None), ("check_shape", np.zeros((2, 5))), ("check", 0), ("check_between", [0.5, float("inf")]),
    ("check_equal", {"a": (1, 2.5, None), 3: [True, "x", float("nan")]}), ("check_in", "B"),
    ("check_close", "not a number"), ("check_equal", object()),
])
def test_answers_survive_the_trip_as_json(kind, value):
    norm = normalize(kind, value)
    back = from_json(__import__("json").loads(__import__("json").dumps(to_json(norm))))
    if isinstance(norm, np.ndarray):
        assert np.array_equal(back, norm, equal_nan=True) and back.dtype == np.float64
    elif isinstance(norm, dict) and norm and isinstance(next(iter(norm.values())), np.ndarray):
        assert list(back) == list(norm) and all(np.array_equal(back[k], norm[k]) for k in norm)
    elif kind == "check_equal" and not isinstance(norm, Unreadable):
        assert repr(back) == repr(norm)  # nan != nan, so compare the text
    else:
        assert back == norm


@pytest.mark.parametrize("forged", [
    None, "PASS", [], {"array": {"shape": [3], "f8": "AAAA"}}, {"array": {"shape": [10**12], "f8": ""}},
    {"array": {"shape": [-1], "f8": ""}}, {"plain": {"dict": [[["a"], 1]]}}, {"plain": {"__class__": "os.system"}},
    {"arrays": [["w", {"shape": [1], "f8": "AAAAAAAA8D8="}], ["b"]]}, {"bool": "yes"}, {"shape": ["2"]},
    {"unreadable": 5}, {"none": True, "bool": True},
])
def test_forged_or_broken_answers_are_unreadable_never_an_error(forged):
    assert isinstance(from_json(forged), Unreadable)


def test_specs_survive_a_jupyter_message_infinite_bounds_included():
    from jupyter_client.session import json_packer, json_unpacker

    spec = make_spec("check_between", low=-1e-12, high=float("inf"), name="q2: never negative")
    back = spec_from_json("check_between", json_unpacker(json_packer(spec_to_json("check_between", spec))))
    assert back == spec and problem("check_between", normalize("check_between", [0.0, 1e300]), back) is None
    close = make_spec("check_close", expected={"w": [1.0, float("-inf")]}, name="q", rtol=0, atol=0)
    back = spec_from_json("check_close", json_unpacker(json_packer(spec_to_json("check_close", close))))
    assert np.array_equal(back["expected"]["w"], [1.0, float("-inf")])


def test_comparisons_say_what_was_wrong():
    spec = {"name": "q", "hint": "", "low": 0.0, "high": 1.0}
    assert problem("check_between", normalize("check_between", [0.5, 1.5, -2]), spec) == \
        "2 of 3 values outside [0, 1]; e.g. 1.5"
    eq = {"name": "q", "hint": "", "expected": ["a", "b"]}
    assert problem("check_equal", normalize("check_equal", ("a", "b")), eq) is None
    assert problem("check_equal", normalize("check_equal", ["b", "a"]), eq) == "got ['b', 'a'], expected ['a', 'b']"
    close = {"name": "q", "hint": "", "expected": {"w": np.ones(2)}, "rtol": 0.0, "atol": 0.0}
    assert problem("check_close", normalize("check_close", {"w": np.array([1.0, 2.0])}), close) == \
        "w: 1 of 2 values differ; e.g. got 2, expected 1 (tolerance rtol=0, atol=0)"


def test_the_submission_never_runs_the_code_that_computes_expected_values():
    student = answer_cell(HIDDEN, "4", "# HIDDEN CHECK q1 (1 point)")
    body = student.split(".answer\n", 1)[1]
    assert "secret_reference" not in body and "expected" not in body and "print" not in body
    assert "weights = expected" not in body and "weights +" not in body
    assert "torch.manual_seed(0)" in body  # side effects stay: the inputs must be the reference's
    assert "__dfl_answer__('4.0', 'check_close', double(-1.5))" in body
    assert "mine = double(k)" in body and "__dfl_answer__('4.1', 'check_equal', mine)" in body
    reference = reference_cell(HIDDEN, "4")
    assert "secret_reference(-1.5)" in reference
    assert ("__dfl_record__('4.0', 'check_close', actual=double(-1.5), expected=expected, "
            "name='q1 hidden: a negative number', rtol=0, atol=0)") in reference


def test_check_cells_that_the_grader_cannot_score_are_refused():
    with pytest.raises(AssignmentError, match="a check cell must call dfl_toolkit.classroom.checks"):
        check_calls("# CHECK q1 (1 point)\nassert double(2) == 4", "3", "tiny, cell 4")
    with pytest.raises(AssignmentError, match=r"line 2: write out the arguments of checks.check_close \(no \* or"):
        answer_cell("# CHECK q1 (1 point)\nchecks.check_close(*pair, 'q1')", "3")
    with pytest.raises(AssignmentError, match="checks.check_shape: missing a required argument: 'name'"):
        answer_cell("# CHECK q1 (1 point)\nchecks.check_shape(x, (2, 3))", "3")
    assert [c.site for c in check_calls("%time x = 1\nchecks.check(x, 'q')", "7", "w")] == ["7.0"]
