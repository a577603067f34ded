"""Assignments: student copies from source notebooks, and the self-checks (grading: test_grading*.py)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from dfl_toolkit.__main__ import main
from dfl_toolkit.classroom import AssignmentError, checks, questions, release, student_copy
from dfl_toolkit.classroom.release import stub_solutions

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "assignments" / "source").glob("*.ipynb"))
RELEASE = ROOT / "notebooks" / "assignments" / "release"

DOUBLE = '''def double(x):
    ### BEGIN SOLUTION q1
    ### HINT: multiply by two
    return 2 * x
    ### END SOLUTION'''
TOTAL = '''def total(n):
    ### BEGIN SOLUTION q2
    return sum(range(n))
    ### END SOLUTION'''
CHECK_Q1 = '''# CHECK q1 (2 points)
assert double(3) == 6, "Hint: 2 * 3 = 6"'''
HIDDEN_Q1 = '''# HIDDEN CHECK q1 (1 point)
assert double(-1.5) == -3.0, "a negative number"'''
CHECK_Q2 = '''# CHECK q2 (1 point)
assert total(4) == 6, "Hint: 0 + 1 + 2 + 3"'''
CHECK_Q2_AGAIN = '''# CHECK q2 (1 point)
assert total(1) == 0, "Hint: an empty sum is 0"'''  # same header as the one before: both must be graded


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A tiny assignment")]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


SOURCE = notebook("import math", DOUBLE, CHECK_Q1, HIDDEN_Q1, TOTAL, CHECK_Q2, CHECK_Q2_AGAIN)


def test_stub_keeps_indentation_and_hint():
    stub = stub_solutions(DOUBLE)
    assert stub == "def double(x):\n    raise NotImplementedError('q1: multiply by two')"
    assert "return 2 * x" not in stub


@pytest.mark.parametrize("bad, message", [
    ("x = 1\n### END SOLUTION", "without a"),
    ("### BEGIN SOLUTION q1\nx = 1", "has no"),
    ("### BEGIN SOLUTION q1\n### BEGIN SOLUTION q2\n### END SOLUTION", "not closed"),
])
def test_malformed_markers_are_named(bad, message):
    with pytest.raises(AssignmentError, match=message):
        stub_solutions(bad, "nb, cell 3")


def test_student_copy_hides_solutions_and_hidden_checks():
    copy = student_copy(SOURCE, "tiny")
    text = "\n".join(c.source for c in copy.cells)
    assert "return 2 * x" not in text and "sum(range(n))" not in text
    assert "HIDDEN CHECK" not in text and "negative" not in text
    assert "# CHECK q1 (2 points)" in text and "# CHECK q2 (1 point)" in text
    assert copy.metadata["dfl_assignment"] == {"name": "tiny", "questions": {"q1": 3.0, "q2": 2.0}}
    assert all(not c.get("outputs") for c in copy.cells if c.cell_type == "code")
    assert questions(SOURCE) == {"q1": 3.0, "q2": 2.0}


def test_a_source_without_checks_is_refused():
    with pytest.raises(AssignmentError, match="no '# CHECK"):
        student_copy(notebook(DOUBLE), "nochecks")


def test_checks_say_what_was_wrong_and_how_to_fix_it(capsys):
    checks.check_close([1.0, 2.0], [1.0, 2.001], "close enough", rtol=1e-2)
    assert capsys.readouterr().out == "PASS close enough\n"
    with pytest.raises(checks.CheckFailed, match=r"(?s)FAIL q3: shape \(2,\), expected \(3,\).*Hint: pad it"):
        checks.check_close([1, 2], [1, 2, 3], "q3", hint="pad it")
    with pytest.raises(checks.CheckFailed, match="got None"):
        checks.check_close(None, 1.0, "q4")
    with pytest.raises(checks.CheckFailed, match=r"expected a value in \[0.9, 1\]"):
        checks.check_between(0.5, 0.9, 1.0, "q5")
    with pytest.raises(checks.CheckFailed, match=r"shape \(2, 3\), expected \(3, 2\)"):
        checks.check_shape(__import__("torch").zeros(2, 3), (3, 2), "q6")
    with pytest.raises(checks.CheckFailed, match=r"FAIL q7: got \['b', 'a'\], expected \['a', 'b'\]\nHint: in order"):
        checks.check_equal(("b", "a"), ["a", "b"], "q7", hint="in order")
    with pytest.raises(checks.CheckFailed, match=r"got 'E', expected one of \['A', 'B'\]"):
        checks.check_in("E", "AB", "q8")
    checks.check_close({"w": [1.0]}, {"w": [1.0]}, "q9: state dicts")
    checks.check_between([0.1, 0.9], 0.0, 1.0, "q10: every value")
    assert capsys.readouterr().out == "PASS q9: state dicts\nPASS q10: every value\n"


def test_released_copies_are_up_to_date(tmp_path):
    """The committed student copies are exactly what `dfl assignments release` writes from the sources."""
    assert len(SOURCES) >= 3, "expected the assignment sources under notebooks/assignments/source"
    release(SOURCES[0].parent, tmp_path)
    for src in SOURCES:
        committed = RELEASE / src.name
        assert committed.exists(), f"{committed} missing: run `python -m dfl_toolkit assignments release`"
        fresh = json.loads((tmp_path / src.name).read_text())
        assert json.loads(committed.read_text()) == fresh, (
            f"{committed} is stale: run `python -m dfl_toolkit assignments release`")


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_cli_release_and_bad_folder(tmp_path, capsys):
    write(SOURCE, tmp_path / "source" / "tiny.ipynb")
    assert main(["assignments", "release", "--source", str(tmp_path / "source"),
                 "--release", str(tmp_path / "release")]) == 0
    assert (tmp_path / "release" / "tiny.ipynb").exists()
    assert main(["assignments", "grade", str(tmp_path / "nowhere"), "--source", str(tmp_path / "source")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("path", [RELEASE / s.name for s in SOURCES], ids=lambda p: p.stem)
def test_student_copy_fails_only_at_exercises_with_not_implemented(path, monkeypatch):
    """Run a released copy top to bottom: the only errors are the stubs' NotImplementedError (or, in a check
    cell, a name an unfinished exercise did not define)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("DFL_QUICK", "1")  # the kernel inherits it
    NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append((cell.source.split("\n", 1)[0], out["ename"]))
    assert errors, "a student copy with stubs should fail somewhere"
    for header, ename in errors:
        is_check = header.startswith("# CHECK")
        allowed = {"NotImplementedError", "NameError"} if is_check else {"NotImplementedError"}
        assert ename in allowed, f"{path.name}: cell {header!r} raised {ename}"
