"""Assignment notebooks: the markers in a source notebook, and the student copies made from it.

A source notebook holds solutions between ``### BEGIN SOLUTION qN`` and ``### END SOLUTION`` and check
cells headed ``# CHECK qN (k points)`` or ``# HIDDEN CHECK qN (k points)`` (see
``notebooks/assignments/README.md``). :func:`student_copy` replaces each solution by a stub that raises
``NotImplementedError`` with the hint and drops hidden checks (grading is in ``classroom.grade``).

Example:
    >>> release("notebooks/assignments/source", "notebooks/assignments/release")
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import DFLError

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s+(?P<q>\w+)\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
HINT = re.compile(r"^\s*### HINT:\s*(?P<hint>.*)$")
CHECK = re.compile(r"^#\s*(?P<hidden>HIDDEN )?CHECK\s+(?P<q>\w+)\s*\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$")
# A Colab link (badge) to a source notebook, which holds the solutions; student copies link to release/ instead
SOURCE_LINK = re.compile(r"(colab\.research\.google\.com/github/\S+?/notebooks/assignments/)source/")


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
    """The student copy of a source notebook: solutions stubbed, hidden checks removed, outputs cleared, Colab links
    to ``assignments/source/`` pointed at ``assignments/release/``."""
    nb = nbformat.v4.new_notebook(metadata=dict(source_nb.metadata))
    nb.metadata["dfl_assignment"] = {"name": name, "questions": questions(source_nb)}
    if not nb.metadata["dfl_assignment"]["questions"]:
        raise AssignmentError(f"{name}: no '# CHECK qN (k points)' cell, so nothing could be graded")
    for i, cell in enumerate(source_nb.cells):
        if cell.cell_type != "code":
            nb.cells.append(nbformat.v4.new_markdown_cell(SOURCE_LINK.sub(r"\1release/", cell.source)))
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
