"""Grading submitted assignment notebooks, each in a fresh kernel inside its own sandbox.

Three kinds of process take part, and only data crosses between them:

1. The source notebook runs once per batch in a clean sandboxed kernel; each ``checks.*`` call in its check cells
   records its answer and its *spec* (expected value, shape, bounds, tolerances, name, hint).
2. Each submission runs in its own sandboxed kernel with the source's check cells put back; there each check call
   only publishes its *answer* (the expected values are never computed there). The runner reports per cell:
   finished, error, time-out or crash, and the answers as JSON.
3. The grader (this process, which never runs student code) compares each answer with the recorded spec by the
   rules in ``values.py`` and writes the grades, feedback and summaries outside every sandbox, as it goes.

Example:
    >>> grades = grade("submissions", "notebooks/assignments/source", "grades", timeout=120, jobs=2)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import nbformat

from ..errors import UsageError
from . import values
from .release import AssignmentError, Check, parse_check, questions
from .sandbox import MAX_JOBS, Limits, RunResult, Runs, detect, run_job

NOTEBOOK_LIMIT_FACTOR = 4  # a whole notebook may take this many per-cell limits
STATE = ".grading"  # in the output folder: the reference runs and the finished rows, for resuming


def _first_line(source: str, n: int = 60) -> str:
    line = next((s.strip() for s in source.split("\n") if s.strip() and not s.strip().startswith("#")), "")
    line = line or source.split("\n", 1)[0].strip()
    return line if len(line) <= n else line[: n - 3] + "..."


def _header(source: str) -> str:
    return source.split("\n", 1)[0].strip()


def grading_notebook(submitted: nbformat.NotebookNode, source_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The submission with the source's check cells put back: each public check replaces the student's
    version of it (matched by its header), each hidden check goes right after its question's last public
    check, and checks the student deleted are appended at the end. Each code cell's ``metadata["dfl"]`` says
    where it came from: ``{"check": source cell index}`` or ``{"cell": index in the submission}``."""
    checks_at = [(i, c) for i, c in enumerate(source_nb.cells) if c.cell_type == "code" and parse_check(c.source)]
    pending: dict[str, list[int]] = {}  # header -> the source's public checks with that header, in order
    for i, c in checks_at:
        if not parse_check(c.source).hidden:
            pending.setdefault(_header(c.source), []).append(i)

    def from_source(i: int) -> nbformat.NotebookNode:
        return nbformat.v4.new_code_cell(source_nb.cells[i].source, metadata={"dfl": {"check": i}})

    cells = []
    for n, cell in enumerate(submitted.cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if pending.get(_header(source)):
            cells.append(from_source(pending[_header(source)].pop(0)))  # n-th match = n-th check
        elif not parse_check(source):  # a check the source does not have (edited or invented) is not graded
            cells.append(nbformat.v4.new_code_cell(source, metadata={"dfl": {"cell": n}}))
    cells += [from_source(i) for left in pending.values() for i in left]  # deleted ones
    for i, c in checks_at:
        check = parse_check(c.source)
        if check.hidden:
            last = max((k for k, x in enumerate(cells) if "check" in x.metadata["dfl"]
                        and parse_check(x.source).question == check.question), default=len(cells) - 1)
            cells.insert(last + 1, from_source(i))
    nb = nbformat.v4.new_notebook(metadata=dict(submitted.get("metadata", {})))
    nb.cells = cells
    return nb


# ------------------------------------------------------------------------------------------------ assignments


@dataclass
class CheckCell:
    """A check cell of the source: where it is, what it is worth, and its two rewritten forms."""

    index: int
    header: str
    check: Check
    sites: list[str]
    answer_source: str
    reference_source: str


@dataclass
class Assignment:
    """A source notebook prepared for grading."""

    name: str
    path: Path
    nb: nbformat.NotebookNode
    max_scores: dict[str, float]
    checks: dict[int, CheckCell]
    key: str  # changes when the source, the grader or the settings change: the reference run is redone


def prepare(path: Path, settings: str = "") -> Assignment:
    """Read a source notebook and rewrite its check cells; AssignmentError names a malformed cell."""
    from .rewrite import VALUES, answer_cell, check_calls, reference_cell

    try:
        raw = path.read_bytes()
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as err:
        raise AssignmentError(f"source {path} could not be read ({type(err).__name__}: {err})") from None
    cells = {}
    for i, c in enumerate(nb.cells):
        check = parse_check(c.source) if c.cell_type == "code" else None
        if check:
            where = f"{path.name}, cell {i + 1} ({_header(c.source)})"
            calls = check_calls(c.source, str(i), where)
            cells[i] = CheckCell(i, _header(c.source), check, [k.site for k in calls],
                                 answer_cell(c.source, str(i), _header(c.source)),
                                 reference_cell(c.source, str(i), _header(c.source)))
    if not cells:
        raise AssignmentError(f"source {path}: no '# CHECK qN (k points)' cell, so nothing could be graded")
    grader = b"".join(p.read_bytes() for p in sorted(VALUES.parent.glob("*.py")))
    key = hashlib.sha256(raw + grader + settings.encode()).hexdigest()[:16]
    return Assignment(path.stem, path, nb, questions(nb), cells, key)


def _settings(limits: Limits) -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("DFL_") and k != "DFL_REQUIRE_SANDBOX")
    return json.dumps([env, limits.cell_seconds, sys.version])


# ------------------------------------------------------------------------------------------------ results


@dataclass
class Grade:
    """The result of grading one submission."""

    student: str
    assignment: str
    scores: dict[str, float]
    max_scores: dict[str, float]
    feedback: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # short, for the CSV and the summaries: "timeout cell 16"

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_scores.values())


def _cell_name(cell: nbformat.NotebookNode) -> str:
    origin = cell.metadata["dfl"]
    if "check" in origin:
        return f"the check `{_header(cell.source).lstrip('# ')}`"
    return f"cell {origin['cell'] + 1} (`{_first_line(cell.source)}`)"


def _text(value: Any, n: int) -> str:
    """Untrusted text from a sandbox, as one line of at most ``n`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def cell_event(e: dict[str, Any]) -> dict[str, Any]:
    """A runner's report of one cell, with every field checked: whatever a sandbox wrote, the result is plain."""
    status = e.get("status") if e.get("status") in ("ok", "error", "timeout", "dead", "skipped") else "error"
    answers = e.get("answers") if isinstance(e.get("answers"), list) else []
    limit, code = e.get("limit"), e.get("exit")
    return {"status": status, "ename": _text(e.get("ename", ""), 80), "evalue": _text(e.get("evalue", ""), 300),
            "reason": _text(e.get("reason", ""), 200), "answers": [a for a in answers if isinstance(a, dict)],
            "limit": limit if isinstance(limit, (int, float)) and not isinstance(limit, bool) else "?",
            "exit": code if isinstance(code, int) and not isinstance(code, bool) else None}


def _what_happened(event: dict[str, Any], memory_gib: float) -> str | None:
    """A plain sentence for a cell that did not finish cleanly (None when it did)."""
    status, ename, evalue = event.get("status"), str(event.get("ename", "")), str(event.get("evalue", ""))[:300]
    if status == "ok":
        return None
    if status == "timeout":
        return (f"was stopped at the {event.get('limit', '?')} s time limit: an endless loop, or code much slower "
                f"than needed")
    if status == "dead":
        code = event.get("exit")
        if code == -24:  # SIGXCPU
            return "crashed the kernel: it used up its CPU time; the cells after it did not run"
        how = f"killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exit status {code}"
        return (f"crashed the kernel ({how}): most often the memory limit ({memory_gib:g} GiB); the cells after it "
                f"did not run")
    if status == "skipped":
        return f"was not run ({event.get('reason', 'grading stopped')})"
    if ename in ("SyntaxError", "IndentationError", "TabError"):
        return f"has a syntax error ({evalue}): nothing in it ran, so what it defines does not exist"
    if ename == "NotImplementedError":
        return f"still raises NotImplementedError ({evalue}): this exercise is not answered yet"
    if ename in ("MemoryError", "_ArrayMemoryError", "OutOfMemoryError"):
        return f"ran out of memory (the limit is {memory_gib:g} GiB): {ename}" + (f": {evalue}" if evalue else "")
    return f"raised {ename}" + (f": {evalue}" if evalue else "")


def _in_short(event: dict[str, Any]) -> str:
    """What happened to a cell, in a few words ("was stopped at the time limit")."""
    status, ename = event.get("status"), str(event.get("ename", ""))
    return {"timeout": "was stopped at the time limit", "dead": "crashed the kernel", "skipped": "was not run"}.get(
        status) or {"SyntaxError": "has a syntax error", "IndentationError": "has a syntax error",
                    "NotImplementedError": "still raises NotImplementedError", "MemoryError": "ran out of memory",
                    "_ArrayMemoryError": "ran out of memory"}.get(ename, f"raised {ename}")


def _short_note(event: dict[str, Any], cell: nbformat.NotebookNode) -> str:
    """A few words for the CSV's notes column: "time limit in cell 6", "kernel died in check q2"."""
    where = cell.metadata["dfl"]
    place = f"cell {where['cell'] + 1}" if "cell" in where else f"check {parse_check(cell.source).question}"
    status, ename = event.get("status"), event.get("ename", "")
    kind = {"timeout": "time limit", "dead": "kernel died"}.get(status) or {
        "SyntaxError": "syntax error", "IndentationError": "syntax error", "NotImplementedError": "not answered",
        "MemoryError": "out of memory", "_ArrayMemoryError": "out of memory"}.get(ename, ename or "error")
    return f"{kind} in {place}"


_OUT_OF_TIME = "the notebook did not finish within its time limit ({seconds:g} s)"


def score(submitted: nbformat.NotebookNode, a: Assignment, reference: dict[str, list[dict]], run: RunResult,
          student: str, limits: Limits) -> Grade:
    """Compare the run's answers with the reference's specs, question by question; nothing in ``run`` is trusted
    beyond being data."""
    nb = grading_notebook(submitted, a.nb)
    g = Grade(student, a.name, dict.fromkeys(a.max_scores, 0.0), dict(a.max_scores))
    memory = limits.memory_bytes / 2**30
    events = {e["index"]: cell_event(e) for e in run.events
              if e.get("event") == "cell" and isinstance(e.get("index"), int) and not isinstance(e["index"], bool)}
    stops = [_text(e.get("reason", ""), 300) for e in run.events if e.get("event") == "stopped"]
    done = any(e.get("event") == "done" for e in run.events)
    if run.killed:
        why = _OUT_OF_TIME.format(seconds=limits.notebook_seconds)
    elif stops:
        why = stops[0]
    elif not done:
        why = f"the grading run ended early (a crash, or the memory limit of {memory:g} GiB)"
    else:  # the runner itself may have stopped early: the notebook time limit, or a kernel that ignored interrupts
        reason = next((e.get("reason", "") for e in events.values() if e.get("status") == "skipped"), "")
        why = _OUT_OF_TIME.format(seconds=limits.notebook_seconds) if reason == "notebook time limit" else reason
    problems: list[str] = []
    last_problem = ""
    checks: list[str] = []
    for i, cell in enumerate(nb.cells):
        event = events.get(i, {"status": "skipped", "reason": why or "grading stopped before this cell"})
        happened = _what_happened(event, memory)
        origin = cell.metadata["dfl"]
        if "cell" in origin:
            if happened and event.get("status") != "skipped":
                problems.append(f"- {_cell_name(cell)[0].upper()}{_cell_name(cell)[1:]} {happened}")
                g.notes.append(_short_note(event, cell))
                last_problem = f"{_cell_name(cell)} above {_in_short(event)}"
            continue
        cc = a.checks[origin["check"]]
        answers: dict[str, list[Any]] = {}
        for item in event.get("answers", []):
            if item.get("site") in cc.sites:
                answers.setdefault(item["site"], []).append(item)
        failures = []
        for site in cc.sites:
            for n, rec in enumerate(reference.get(site, [])):
                spec = values.spec_from_json(rec["kind"], rec["spec"])
                got = answers.get(site, [])
                if n < len(got) and got[n].get("kind") == rec["kind"]:
                    what = values.problem(rec["kind"], values.from_json(got[n].get("value")), spec)
                    if what is not None:
                        failures.append(values.failure_text(spec, what))
                    continue
                reason = f"this check's cell {happened}" if happened else "this check was not reached"
                if event.get("ename") == "NameError" and last_problem:
                    reason += f" (probably because {last_problem})"
                failures.append(f"FAIL {spec['name']}: not checked: {reason}")
                if event.get("status") in ("timeout", "dead"):
                    g.notes.append(_short_note(event, cell))
                break  # one message per call site is enough
        kind = "hidden check" if cc.check.hidden else "check"
        title = cc.header.lstrip("# ").strip()
        if failures:
            lines = "\n".join("  " + line for f in dict.fromkeys(failures) for line in f.split("\n"))
            checks.append(f"- {cc.check.question} {kind} FAILED (0 of {cc.check.points:g}): `{title}`\n{lines}")
        else:
            g.scores[cc.check.question] += cc.check.points
            checks.append(f"- {cc.check.question} {kind} passed (+{cc.check.points:g}): `{title}`")
    if why:
        problems.append(f"- Grading stopped early: {why}.")
        g.notes.append(why.split(":")[0].split(" (")[0])
    if run.truncated:
        problems.append("- The notebook produced too much check data; the rest was ignored.")
    g.notes = list(dict.fromkeys(g.notes))
    g.feedback = ([*(["## Problems while running your notebook", "", *problems, ""] if problems else []),
                   "## Checks", "", *checks])
    return g


def unreadable(student: str, a: Assignment, err: Exception) -> Grade:
    g = Grade(student, a.name, dict.fromkeys(a.max_scores, 0.0), dict(a.max_scores), notes=["unreadable notebook"])
    g.feedback = ["## Checks", "", f"The notebook could not be read ({type(err).__name__}: {str(err)[:300]}); "
                                   f"every question scores 0."]
    return g


def read_submission(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` with every cell checked to have a type and a source (raises otherwise)."""
    if path.stat().st_size > 64 * 2**20:
        raise ValueError("the file is larger than 64 MiB")
    nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("no list of cells")
    for c in nb.cells:
        if not isinstance(c, dict) or c.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError("a cell without a known cell_type")
        if not isinstance(c.get("source", ""), (str, list)):
            raise ValueError("a cell whose source is not text")
        c.setdefault("metadata", {})
    return nb


# ------------------------------------------------------------------------------------------------ reference


def reference_job(a: Assignment) -> dict[str, Any]:
    cells = [{"source": a.checks[i].reference_source if i in a.checks else c.source}
             for i, c in enumerate(a.nb.cells) if c.cell_type == "code"]
    return {"cells": cells}


def read_reference(a: Assignment, run: RunResult) -> dict[str, list[dict]]:
    """The specs the source's own run recorded, by site; AssignmentError when the source does not run cleanly."""
    code = [i for i, c in enumerate(a.nb.cells) if c.cell_type == "code"]
    events = {e.get("index"): e for e in run.events if e.get("event") == "cell"}
    records: dict[str, list[dict]] = {}
    for k, i in enumerate(code):
        e = events.get(k)
        where = f"source {a.path.name}, cell {i + 1} (`{_first_line(a.nb.cells[i].source)}`)"
        if e is None:
            stops = [str(x.get("reason")) for x in run.events if x.get("event") == "stopped"]
            why = stops[0] if stops else ("killed at the notebook time limit" if run.killed else run.stderr[-500:])
            raise AssignmentError(f"{where} did not run in the grader's clean kernel: {why}")
        if e.get("status") != "ok":
            raise AssignmentError(f"{where} fails in the grader's clean kernel ({_what_happened(e, 0) or ''}); "
                                  f"the source must run top to bottom without errors")
        for item in e.get("answers") or []:
            records.setdefault(item["site"], []).append(item)
    for cc in a.checks.values():
        if not any(records.get(s) for s in cc.sites):
            raise AssignmentError(f"source {a.path.name}, cell {cc.index + 1} ({cc.header}): no check call ran")
    return records


# ------------------------------------------------------------------------------------------------ the batch


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _csv(grades: list[Grade], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "assignment", *columns, "total", "max", "notes"])
    for g in sorted(grades, key=lambda g: (g.student, g.assignment)):
        writer.writerow([g.student, g.assignment, *[g.scores.get(q, "") for q in columns], g.total, g.max_total,
                         "; ".join(g.notes)])
    return buf.getvalue()


def feedback_text(g: Grade) -> str:
    return "\n".join([f"# {g.assignment}: {g.student}", "", f"Score: {g.total:g} of {g.max_total:g}", "",
                      *[f"- {q}: {g.scores[q]:g} of {m:g}" for q, m in g.max_scores.items()], "",
                      *g.feedback, ""])


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def grade(submissions: str | os.PathLike, source_dir: str | os.PathLike, out: str | os.PathLike,
          timeout: float = 120, *, jobs: int = 1, memory_gb: float = 4.0, sandbox: str = "auto",
          fresh: bool = False, echo: Callable[[str], None] = print) -> list[Grade]:
    """Grade ``submissions/<student>/<assignment>.ipynb`` against ``source_dir/<assignment>.ipynb``.

    Each notebook runs in its own sandbox (see ``sandbox.py``) with at most ``timeout`` seconds per cell and
    ``NOTEBOOK_LIMIT_FACTOR * timeout`` per notebook, ``memory_gb`` of memory, ``jobs`` at a time. Writes, as the
    batch goes, ``out/grades.csv`` (student, assignment, one column per question, total, max, notes) and
    ``out/feedback/<student>_<assignment>.md``; at the end ``out/students/<student>.md`` and ``out/summary.md``
    with ``out/summary.png``. A rerun resumes: rows whose notebook and source are unchanged are kept (``fresh``
    regrades all). A file that matches no assignment is reported and skipped.

    Example:
        >>> grades = grade("submissions", "notebooks/assignments/source", "grades", jobs=2)
    """
    from . import report

    submissions, source_dir, out = Path(submissions), Path(source_dir), Path(out)
    if not timeout > 0 or not 1 <= jobs <= MAX_JOBS or not memory_gb > 0:
        raise UsageError(f"timeout ({timeout}) and memory_gb ({memory_gb}) must be positive, and jobs ({jobs}) from 1 "
                         f"to {MAX_JOBS}")
    limits = Limits(cell_seconds=timeout, notebook_seconds=NOTEBOOK_LIMIT_FACTOR * timeout,
                    memory_bytes=int(memory_gb * 2**30))
    if not source_dir.is_dir():
        raise AssignmentError(f"{source_dir} is not a folder; expected the source notebooks (*.ipynb)")
    paths = {p.stem: p for p in sorted(source_dir.glob("*.ipynb"))}
    if not paths:
        raise AssignmentError(f"no source notebooks (*.ipynb) in {source_dir}")
    if not submissions.is_dir():
        raise AssignmentError(f"{submissions} is not a folder; expected SUBMISSIONS/<student>/<assignment>.ipynb")
    todo: list[tuple[str, str, Path]] = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for path in sorted(student_dir.glob("*.ipynb")):
            if path.stem in paths:
                todo.append((student_dir.name, path.stem, path))
            else:
                echo(f"skipped {path}: no assignment named {path.stem!r} (known: {', '.join(paths)})")
    assignments = {name: prepare(paths[name], _settings(limits)) for name in sorted({a for _, a, _ in todo})}
    box = detect(sandbox)
    if not box.isolated:
        print(f"WARNING: {box.describe()}", file=sys.stderr)
    state_dir = out / STATE
    try:
        (out / "feedback").mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(exist_ok=True)
    except OSError as err:
        raise AssignmentError(f"cannot write the grades to {out}: {err}") from None
    hidden = [str(p.resolve()) for p in (source_dir, submissions, out)]
    columns = list(dict.fromkeys(q for a in assignments.values() for q in a.max_scores))

    finished: dict[tuple[str, str], Grade] = {}
    log = state_dir / "graded.jsonl"
    if not fresh and log.exists():
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
                a = assignments.get(row["assignment"])
                path = submissions / row["student"] / f"{row['assignment']}.ipynb"
                if a and row["key"] == a.key and row["sha"] == _sha(path) and (out / "feedback").is_dir():
                    finished[(row["student"], row["assignment"])] = Grade(**row["grade"])
            except (ValueError, KeyError, TypeError):
                continue
    elif fresh and log.exists():
        log.unlink()
    pending = [(s, a, p) for s, a, p in todo if (s, a) not in finished]
    try:  # from the start, the CSV holds exactly the rows that are finished
        _atomic_write(out / "grades.csv", _csv(list(finished.values()), columns))
    except OSError as err:
        raise AssignmentError(f"cannot write the grades to {out}: {err}") from None

    slots: Queue[int] = Queue()
    for k in range(jobs):
        slots.put(k)

    def in_slot(fn: Callable[..., Any], *args: Any) -> Any:
        slot = slots.get()
        try:
            return fn(*args, slot)
        finally:
            slots.put(slot)

    def reference_for(a: Assignment, slot: int) -> dict[str, list[dict]]:
        cache = state_dir / f"reference-{a.name}.json"
        try:
            saved = json.loads(cache.read_text())
            if saved.get("key") == a.key:
                return saved["records"]
        except (OSError, ValueError):
            pass
        run = run_job(box, reference_job(a), a.path.parent, limits, slot, hidden)
        records = read_reference(a, run)
        _atomic_write(cache, json.dumps({"key": a.key, "records": records}))
        return records

    def grade_one(student: str, a: Assignment, path: Path, slot: int) -> Grade:
        try:
            submitted = read_submission(path)
            nb = grading_notebook(submitted, a.nb)
        except Exception as err:  # any unreadable file: zero, with the reason
            return unreadable(student, a, err)
        cells = [{"source": a.checks[c.metadata["dfl"]["check"]].answer_source if "check" in c.metadata["dfl"]
                  else c.source} for c in nb.cells]
        run = run_job(box, {"cells": cells}, path.parent, limits, slot, hidden)
        return score(submitted, a, references[a.name].result(), run, student, limits)  # runs meanwhile

    grades = list(finished.values())
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:  # the reference runs go first; submissions start meanwhile and wait for theirs only to be scored
            references = {name: pool.submit(in_slot, reference_for, assignments[name])
                          for name in sorted({a for _, a, _ in pending})}
            running: dict[Future, tuple[str, str, Path] | None] = {f: None for f in references.values()}
            running.update({pool.submit(in_slot, grade_one, s, assignments[a], p): (s, a, p) for s, a, p in pending})
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    if job is None:
                        fut.result()  # a source that does not run cleanly stops the batch (bad input)
                        continue
                    s, a, p = job
                    try:
                        g = fut.result()
                    except Exception as err:  # a grader bug must not stop the batch: the row says so
                        if references[a].done() and references[a].exception():
                            raise references[a].exception() from None
                        g = Grade(s, a, dict.fromkeys(assignments[a].max_scores, 0.0),
                                  dict(assignments[a].max_scores), [f"Grading failed ({type(err).__name__}: "
                                                                    f"{err}); ask your instructor."],
                                  ["grader error"])
                    grades.append(g)
                    _save(out, g, assignments[a].key, _sha(p), grades, columns)
                    note = f"  ({'; '.join(g.notes)})" if g.notes else ""
                    echo(f"{g.student:20s} {g.assignment:32s} {g.total:g} / {g.max_total:g}{note}")
        except BaseException:
            Runs.stop()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    grades.sort(key=lambda g: (g.student, g.assignment))
    try:
        _atomic_write(out / "grades.csv", _csv(grades, columns))
        report.write(grades, assignments, out, box)
    except OSError as err:
        raise AssignmentError(f"cannot write the grades to {out}: {err}") from None
    return grades


def _save(out: Path, g: Grade, key: str, sha: str, grades: list[Grade], columns: list[str]) -> None:
    """Write one finished notebook's feedback, log it for resuming, and rewrite the CSV with every row so far."""
    try:
        _atomic_write(out / "feedback" / f"{g.student}_{g.assignment}.md", feedback_text(g))
        with open(out / STATE / "graded.jsonl", "a") as f:
            f.write(json.dumps({"student": g.student, "assignment": g.assignment, "key": key, "sha": sha,
                                "grade": asdict(g)}) + "\n")
        _atomic_write(out / "grades.csv", _csv(grades, columns))
    except OSError as err:
        raise AssignmentError(f"cannot write the grades to {out}: {err}") from None
