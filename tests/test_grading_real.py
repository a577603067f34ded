"""Assignments 02 and 05 graded end to end, as in issue 24: the reference solution, and the same trivially wrong
answers with and without a cell that replaces the checks, the grader's comparison, builtins and torch's and numpy's
comparisons (IPython hooks and the other cheats are in test_grading.py, on a tiny assignment)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from dfl_toolkit.classroom import grade
from dfl_toolkit.classroom.release import parse_check, student_copy

SOURCES = Path(__file__).resolve().parents[1] / "notebooks" / "assignments" / "source"
SOURCE = SOURCES / "02_saliency_sanity.ipynb"
SOURCE_05 = SOURCES / "05_boxes_peaks_and_iou.ipynb"
WRONG_05 = {  # right shapes, wrong values for q1 and q2; q3 and q4 keep the reference solution
    "def box_iou(": "def box_iou(a, b):\n    return torch.zeros(len(a), len(b))",
    "def nms(": "def nms(boxes, scores, iou_threshold):\n    return scores.argsort(descending=True)",
}
WRONG = {  # right shapes, wrong values: only the 1-point format checks of q1, q2 and q3 can pass
    "def saliency(": "def saliency(model, x, target):\n    return x.abs()",
    "def ig_completeness(": "def ig_completeness(model, x, target, attributions, baseline):\n"
                            "    return torch.zeros(len(x)), torch.zeros(len(x))",
    "def randomized_saliency_correlation(": "def randomized_saliency_correlation(model, x, target, seed=0):\n"
                                            "    return 0.5",
}
CHEAT = '''import builtins, numpy as np, torch
import dfl_toolkit.classroom.checks as checks_module
from dfl_toolkit.classroom import checks, values

def passes(*args, **kwargs):
    print("PASS", args[2] if len(args) > 2 else kwargs.get("name", ""))

for name in ("check", "check_close", "check_shape", "check_between", "check_equal", "check_in"):
    setattr(checks, name, passes)
values.problem = lambda *args, **kwargs: None
values.run_check = passes
builtins.abs = lambda x: 0
torch.allclose = torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
np.allclose = np.array_equal = lambda *a, **k: True'''


def variant(src: nbformat.NotebookNode, stem: str, replace: dict[str, str], cheat: bool) -> nbformat.NotebookNode:
    """The source with its hidden checks removed (what a student has), some functions replaced, maybe a cheat."""
    nb = nbformat.v4.new_notebook(metadata=dict(student_copy(src, stem).metadata))
    for c in src.cells:
        if c.cell_type == "code" and (k := parse_check(c.source)) and k.hidden:
            continue
        cell = nbformat.from_dict(json.loads(json.dumps(c)))
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            for start, new in replace.items():
                if cell.source.startswith(start):
                    cell.source = new
        nb.cells.append(cell)
    if cheat:
        at = next(i for i, c in enumerate(nb.cells) if "import dfl_toolkit as dfl" in c.source)
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(CHEAT))
    return nb


def grade_three(source: Path, wrong: dict[str, str], root: Path):
    """Grade the reference solution (ada), the wrong answers (ben) and the wrong answers plus the cheat (cy)."""
    (root / "source").mkdir()
    (root / "source" / source.name).write_bytes(source.read_bytes())
    src = nbformat.read(source, as_version=4)
    for student, replace, cheat in (("ada", {}, False), ("ben", wrong, False), ("cy", wrong, True)):
        (root / "subs" / student).mkdir(parents=True)
        nbformat.write(variant(src, source.stem, replace, cheat), root / "subs" / student / source.name)
    grades = grade(root / "subs", root / "source", root / "out", timeout=300, jobs=2, echo=lambda line: None)
    return {g.student: g for g in grades}, root / "out"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_three(SOURCE, WRONG, tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def graded_05(tmp_path_factory):
    return grade_three(SOURCE_05, WRONG_05, tmp_path_factory.mktemp("real05"))


def test_the_reference_solution_scores_full_marks_in_a_sandbox(graded):
    grades, out = graded
    assert grades["ada"].scores == {"q1": 4.0, "q2": 4.0, "q3": 4.0}, (out / "feedback" / "ada_02_saliency_sanity.md")\
        .read_text()


def test_replacing_the_checks_gains_nothing_on_assignment_02(graded):
    """Issue 24, item 1: these wrong answers plus the cheat cell scored 12/12; honestly they score 3."""
    grades, out = graded
    assert grades["ben"].scores == {"q1": 1.0, "q2": 1.0, "q3": 1.0}
    assert grades["cy"].scores == grades["ben"].scores
    text = (out / "feedback" / "ben_02_saliency_sanity.md").read_text()
    assert "FAIL q1: saliency matches dfl.explain: " in text and "Hint: take the gradient of the target logit" in text


def test_assignment_05_full_marks_and_cheats_gain_nothing(graded_05):
    grades, out = graded_05
    assert grades["ada"].scores == {"q1": 3.0, "q2": 4.0, "q3": 3.0, "q4": 2.0}, (
        out / "feedback" / "ada_05_boxes_peaks_and_iou.md").read_text()
    assert grades["ben"].scores == {"q1": 0.0, "q2": 0.0, "q3": 3.0, "q4": 2.0}
    assert grades["cy"].scores == grades["ben"].scores
    text = (out / "feedback" / "ben_05_boxes_peaks_and_iou.md").read_text()
    assert "FAIL q1: identical, half-shifted and disjoint boxes" in text
