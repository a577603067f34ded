"""Classroom assignments: student copies from source notebooks, and grading of submitted notebooks.

A source notebook holds solutions between ``### BEGIN SOLUTION qN`` and ``### END SOLUTION`` and check
cells headed ``# CHECK qN (k points)`` or ``# HIDDEN CHECK qN (k points)`` (see
``notebooks/assignments/README.md``). :func:`student_copy` replaces each solution by a stub that raises
``NotImplementedError`` with the hint and drops hidden checks; :func:`grade` runs submissions in fresh
kernels with the original checks put back and scores each question.

Example:
    >>> release("notebooks/assignments/source", "notebooks/assignments/release")
    >>> table = grade("submissions", "notebooks/assignments/source", "grades", timeout=120)
"""

from __future__ import annotations

import csv
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .errors import DFLError

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s+(?P<q>\w+)\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
HINT = re.compile(r"^\s*### HINT:\s*(?P<hint>.*)$")
CHECK = re.compile(r"^#\s*(?P<hidden>HIDDEN )?CHECK\s+(?P<q>\w+)\s*\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$")
NOTEBOOK_LIMIT_FACTOR = 4  # a whole notebook may take this many per-cell limits


class AssignmentError(DFLError, ValueError):
    """A source notebook whose markers are malformed (the message names the notebook and the cell)."""


@dataclass(frozen=True)
class Check:
    """One check cell: its question, points and whether students see it."""

    question: str
    points: float
    hidden: bool


def parse_check(source: str) -> Check | None:
    """The :class:`Check` a cell's first line declares, or None for any other cell."""
    first = source.split("\n", 1)[0].strip()
    m = CHECK.match(first)
    if not m:
        return None
    return Check(m["q"], float(m["points"]), bool(m["hidden"]))


def stub_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every solution block replaced by ``raise NotImplementedError("qN: hint")``."""
    out: list[str] = []
    block: tuple[str, str, list[str]] | None = None  # (indent, question, hint lines)
    for line in source.split("\n"):
        if block is None:
            m = BEGIN.match(line)
            if m:
                block = (m["indent"], m["q"], [])
            elif END.match(line):
                raise AssignmentError(f"{where}: '### END SOLUTION' without a '### BEGIN SOLUTION qN' before it")
            else:
                out.append(line)
            continue
        if END.match(line):
            indent, q, hints = block
            hint = " ".join(hints) or "write your solution here"
            out.append(f"{indent}raise NotImplementedError({f'{q}: {hint}'!r})")
            block = None
        elif BEGIN.match(line):
            raise AssignmentError(f"{where}: solution {block[1]} is not closed before the next BEGIN SOLUTION")
        else:
            m = HINT.match(line)
            if m:
                block[2].append(m["hint"].strip())
    if block is not None:
        raise AssignmentError(f"{where}: solution {block[1]} has no '### END SOLUTION'")
    return "\n".join(out)


def questions(nb: nbformat.NotebookNode) -> dict[str, float]:
    """{question: total points} over every check cell (public and hidden), in notebook order."""
    points: dict[str, float] = {}
    for cell in nb.cells:
        check = parse_check(cell.source) if cell.cell_type == "code" else None
        if check:
            points[check.question] = points.get(check.question, 0.0) + check.points
    return points


def student_copy(source_nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student copy of a source notebook: solutions stubbed, hidden checks removed, outputs cleared."""
    nb = nbformat.v4.new_notebook(metadata=dict(source_nb.metadata))
    nb.metadata["dfl_assignment"] = {"name": name, "questions": questions(source_nb)}
    if not nb.metadata["dfl_assignment"]["questions"]:
        raise AssignmentError(f"{name}: no '# CHECK qN (k points)' cell, so nothing could be graded")
    for i, cell in enumerate(source_nb.cells):
        if cell.cell_type != "code":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell.source))
            continue
        check = parse_check(cell.source)
        if check and check.hidden:
            continue
        nb.cells.append(nbformat.v4.new_code_cell(stub_solutions(cell.source, f"{name}, cell {i}")))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids, so a regenerated copy is byte-identical
    return nb


def release(source_dir: str | os.PathLike, release_dir: str | os.PathLike) -> list[Path]:
    """Write the student copy of every ``source_dir/*.ipynb`` to ``release_dir``; returns the paths written."""
    source_dir, release_dir = Path(source_dir), Path(release_dir)
    sources = sorted(source_dir.glob("*.ipynb"))
    if not sources:
        raise AssignmentError(f"no source notebooks (*.ipynb) in {source_dir}")
    release_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        copy = student_copy(nbformat.read(path, as_version=4), path.stem)
        dest = release_dir / path.name
        nbformat.write(copy, dest)
        written.append(dest)
    return written


def grading_notebook(submitted: nbformat.NotebookNode, source_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The submission with the source's check cells put back: each public check replaces the student's
    version of it (matched by its header), each hidden check goes right after its question's last public
    check, and checks the student deleted are appended at the end."""
    public = [c for c in source_nb.cells if c.cell_type == "code" and (k := parse_check(c.source)) and not k.hidden]
    hidden = [c for c in source_nb.cells if c.cell_type == "code" and (k := parse_check(c.source)) and k.hidden]
    pending: dict[str, list[Any]] = {}  # header -> the source's checks with that header, in order
    for c in public:
        pending.setdefault(c.source.split("\n", 1)[0].strip(), []).append(c)
    cells = []
    for cell in submitted.cells:
        header = cell.source.split("\n", 1)[0].strip() if cell.cell_type == "code" else None
        if header is not None and pending.get(header):
            cells.append(nbformat.v4.new_code_cell(pending[header].pop(0).source))  # n-th match = n-th check
        elif cell.cell_type == "code" and parse_check(cell.source):
            continue  # a check the source does not have (edited or invented): not graded
        else:
            cells.append(cell)
    cells += [nbformat.v4.new_code_cell(c.source) for left in pending.values() for c in left]  # deleted ones
    for cell in hidden:
        q = parse_check(cell.source).question
        last = max((i for i, c in enumerate(cells) if c.cell_type == "code" and (k := parse_check(c.source))
                    and k.question == q), default=len(cells) - 1)
        cells.insert(last + 1, nbformat.v4.new_code_cell(cell.source))
    nb = nbformat.v4.new_notebook(metadata=dict(submitted.metadata))
    nb.cells = cells
    return nb


@dataclass
class Grade:
    """The result of grading one submission."""

    student: str
    assignment: str
    scores: dict[str, float]
    max_scores: dict[str, float]
    feedback: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def _error_text(cell: nbformat.NotebookNode) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}".strip()
    return None


def grade_notebook(path: str | os.PathLike, source_nb: nbformat.NotebookNode, student: str, assignment: str,
                   timeout: float = 120) -> Grade:
    """Run one submission with the source's checks in a fresh kernel and score each question.

    Every cell gets at most ``timeout`` seconds (an endless loop is interrupted) and the notebook at most
    ``NOTEBOOK_LIMIT_FACTOR * timeout``; errors never stop the run, so one broken answer costs only the
    checks that depend on it. An unreadable notebook scores zero.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    max_scores = questions(source_nb)
    result = Grade(student, assignment, dict.fromkeys(max_scores, 0.0), max_scores)
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as err:  # any unreadable file: zero, with the reason
        result.feedback.append(f"The notebook could not be read ({type(err).__name__}: {err}); every question "
                               f"scores 0.")
        return result
    nb = grading_notebook(submitted, source_nb)
    # at the limit: interrupt the kernel and record an error at once (never wait on a kernel that ignores it)
    client = NotebookClient(nb, timeout=int(timeout), interrupt_on_timeout=True, allow_errors=True,
                            error_on_timeout={"ename": "TimeoutError", "evalue": "time limit", "traceback": []},
                            kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}})
    deadline = time.monotonic() + NOTEBOOK_LIMIT_FACTOR * timeout
    status: dict[int, str | None] = {}
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    status[i] = f"not run: the notebook's time limit ({NOTEBOOK_LIMIT_FACTOR * timeout:.0f} s) ran out"
                    continue
                client.timeout = int(max(1, min(timeout, left)))
                started = time.monotonic()
                try:
                    client.execute_cell(cell, i)
                    status[i] = _error_text(cell)
                except CellTimeoutError:
                    status[i] = "timeout"
                if time.monotonic() - started >= client.timeout:
                    status[i] = f"stopped after {client.timeout} s (the time limit per cell)"
    except DeadKernelError as err:
        result.feedback.append(f"The kernel died ({err}); the checks after that point score 0.")
    except Exception as err:  # the kernel could not start or crashed in a way nbclient reports differently
        result.feedback.append(f"Grading stopped early ({type(err).__name__}: {err}).")
    for i, cell in enumerate(nb.cells):
        check = parse_check(cell.source) if cell.cell_type == "code" else None
        if check is None:
            continue
        ran = i in status
        error = status[i] if ran else "not run (grading stopped before this cell)"
        ok = ran and error is None
        kind = "hidden check" if check.hidden else "check"
        header = cell.source.split("\n", 1)[0].lstrip("# ").strip()
        if ok:
            result.scores[check.question] += check.points
            result.feedback.append(f"- {check.question} {kind} passed (+{check.points:g}): `{header}`")
        else:
            result.feedback.append(f"- {check.question} {kind} FAILED (0 of {check.points:g}): `{header}`\n"
                                   f"  {error}")
    return result


def grade(submissions: str | os.PathLike, source_dir: str | os.PathLike, out: str | os.PathLike,
          timeout: float = 120) -> list[Grade]:
    """Grade ``submissions/<student>/<assignment>.ipynb`` against ``source_dir/<assignment>.ipynb``.

    Writes ``out/grades.csv`` (student, assignment, one column per question, total, max) and
    ``out/feedback/<student>_<assignment>.md``. A file that matches no assignment is reported and skipped.
    """
    submissions, source_dir, out = Path(submissions), Path(source_dir), Path(out)
    sources = {p.stem: nbformat.read(p, as_version=4) for p in sorted(source_dir.glob("*.ipynb"))}
    if not sources:
        raise AssignmentError(f"no source notebooks (*.ipynb) in {source_dir}")
    if not submissions.is_dir():
        raise AssignmentError(f"{submissions} is not a folder; expected SUBMISSIONS/<student>/<assignment>.ipynb")
    grades: list[Grade] = []
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for path in sorted(student_dir.glob("*.ipynb")):
            if path.stem not in sources:
                print(f"skipped {path}: no assignment named {path.stem!r} (known: {', '.join(sources)})")
                continue
            g = grade_notebook(path, sources[path.stem], student_dir.name, path.stem, timeout)
            grades.append(g)
            lines = [f"# {g.assignment}: {g.student}", "", f"Score: {g.total:g} of {sum(g.max_scores.values()):g}",
                     "", *[f"- {q}: {g.scores[q]:g} of {m:g}" for q, m in g.max_scores.items()], "",
                     "## Checks", "", *g.feedback, ""]
            (out / "feedback" / f"{g.student}_{g.assignment}.md").write_text("\n".join(lines))
    all_q = list(dict.fromkeys(q for g in grades for q in g.max_scores))
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", *all_q, "total", "max"])
        for g in grades:
            writer.writerow([g.student, g.assignment, *[g.scores.get(q, "") for q in all_q], g.total,
                             sum(g.max_scores.values())])
    return grades
