"""Summaries of a grading batch for the instructor: one page per student, and the class per question.

Example:
    >>> write(grades, assignments, Path("grades"), detect())   # grades/students/*.md, summary.md, summary.png
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def student_pages(grades: list[Any], out: Path) -> list[Path]:
    """``out/students/<student>.md``: every assignment's score, per question, and what went wrong."""
    folder = out / "students"
    folder.mkdir(exist_ok=True)
    written = []
    for student in sorted({g.student for g in grades}):
        mine = sorted((g for g in grades if g.student == student), key=lambda g: g.assignment)
        total, best = sum(g.total for g in mine), sum(g.max_total for g in mine)
        lines = [f"# {student}", "", f"Total: {total:g} of {best:g}", "",
                 "| assignment | score | per question | notes |", "|---|---|---|---|"]
        for g in mine:
            per = ", ".join(f"{q} {g.scores[q]:g}/{m:g}" for q, m in g.max_scores.items())
            lines.append(f"| [{g.assignment}](../feedback/{g.student}_{g.assignment}.md) | {g.total:g} / "
                         f"{g.max_total:g} | {per} | {'; '.join(g.notes)} |")
        path = folder / f"{student}.md"
        _atomic_write(path, "\n".join(lines) + "\n")
        written.append(path)
    return written


def class_summary(grades: list[Any], assignments: dict[str, Any], sandbox: Any) -> str:
    """Markdown: per assignment, the distribution of totals and, per question, full / partial / zero counts."""
    lines = ["# Class summary", "", f"Sandbox: {sandbox.describe()}", ""]
    for name, a in sorted(assignments.items()):
        mine = [g for g in grades if g.assignment == name]
        if not mine:
            continue
        totals = [g.total for g in mine]
        lines += [f"## {name}", "", f"{len(mine)} notebooks; total out of {a and sum(a.max_scores.values()):g}: "
                  f"mean {statistics.mean(totals):.2f}, median {statistics.median(totals):g}, "
                  f"min {min(totals):g}, max {max(totals):g}", "",
                  "| question | points | mean | full marks | partial | zero |", "|---|---|---|---|---|---|"]
        for q, m in a.max_scores.items():
            s = [g.scores.get(q, 0.0) for g in mine]
            full, zero = sum(v >= m for v in s), sum(v <= 0 for v in s)
            lines.append(f"| {q} | {m:g} | {statistics.mean(s):.2f} | {full} | {len(s) - full - zero} | {zero} |")
        notes = Counter(n.split(" in ")[0] for g in mine for n in g.notes)
        if notes:
            lines += ["", "Problems: " + ", ".join(f"{k} ({v})" for k, v in notes.most_common())]
        lines.append("")
    lines.append("![scores per question](summary.png)")
    return "\n".join(lines) + "\n"


def plot(grades: list[Any], assignments: dict[str, Any], path: Path) -> None:
    """One bar chart per assignment: for each question, the share of students with full, partial and no marks."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = [n for n in sorted(assignments) if any(g.assignment == n for g in grades)]
    fig = Figure(figsize=(7, 0.6 + 2.2 * max(1, len(names))), layout="constrained")
    axes = fig.subplots(max(1, len(names)), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=False):
        mine = [g for g in grades if g.assignment == name]
        qs = list(assignments[name].max_scores)
        full = [sum(g.scores.get(q, 0) >= assignments[name].max_scores[q] for g in mine) / len(mine) for q in qs]
        zero = [sum(g.scores.get(q, 0) <= 0 for g in mine) / len(mine) for q in qs]
        part = [1 - f - z for f, z in zip(full, zero, strict=True)]
        ax.barh(qs, full, color="#2a9d8f", label="full marks")
        ax.barh(qs, part, left=full, color="#e9c46a", label="partial")
        ax.barh(qs, zero, left=[f + p for f, p in zip(full, part, strict=True)], color="#e76f51", label="zero")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f"{name} ({len(mine)} notebooks)", fontsize=10)
        ax.set_xlabel("share of students")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=3)
    fig.savefig(path, dpi=100)


def write(grades: list[Any], assignments: dict[str, Any], out: Path, sandbox: Any) -> list[Path]:
    """Write the per-student pages, ``summary.md`` and ``summary.png``; returns the paths."""
    paths = student_pages(grades, out)
    _atomic_write(out / "summary.md", class_summary(grades, assignments, sandbox))
    plot(grades, assignments, out / "summary.png")
    return [*paths, out / "summary.md", out / "summary.png"]
