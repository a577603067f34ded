"""Grading a batch of a tiny purpose-made assignment: ordinary submissions, cheats and sandbox escapes.

One batch (two sandboxes at a time, 6 s per cell) holds every kind of submission; each test reads its row and
feedback. Cheats must score exactly what the same wrong answers score without them (gina), and escape attempts
must fail inside the sandbox: oscar's answers are right only when every attempt failed, so his score says it.
"""

from __future__ import annotations

import csv
import os
import socket
import uuid
import warnings
from pathlib import Path

import nbformat
import pytest

from dfl_toolkit.__main__ import main
from dfl_toolkit.classroom import detect, grade, release

# The kernels never import the toolkit here (its torch import is slow): grading replaces every checks.* call, and
# `checks` is only needed by a student's own self-check.
SETUP = "checks = None  # in a real assignment: from dfl_toolkit.classroom import checks"
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
checks.check_close(double(3), 6, "q1: double of 3", hint="2 * 3 = 6")'''
HIDDEN_Q1 = '''# HIDDEN CHECK q1 (1 point)
def secret_reference(x):
    return x + x
expected = secret_reference(-1.5)
checks.check_close(double(-1.5), expected, "q1 hidden: a negative number", rtol=0, atol=0)'''
T10 = "t10 = total(10)"
CHECK_Q2 = '''# CHECK q2 (1 point)
checks.check_equal(t10, 45, "q2: total of 10", hint="0 + 1 + ... + 9")'''
CHECK_Q2_AGAIN = '''# CHECK q2 (1 point)
checks.check_equal(total(5), 10, "q2: total of 5")'''  # same header as the one before: both must be graded
TIMEOUT = 6
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "notebooks" / "assignments" / "source" / "02_saliency_sanity.ipynb"

WRONG_DOUBLE = "def double(x):\n    return 3 * x"
WRONG_TOTAL = "def total(n):\n    return sum(range(n + 1))"
MALLORY = '''import builtins, sys, types
import numpy as np
from IPython.display import publish_display_data

def forge(site, kind, value=None, **spec):  # answers that look like passes: True, None, 0, 1.0
    for v in ({"bool": True}, {"none": True}, {"plain": 0}, {"array": {"shape": [], "f8": "AAAAAAAA8D8="}}):
        publish_display_data({"application/vnd.dfl.answer+json": {"site": site, "kind": kind, "value": v}})
    print("PASS")

fake = types.ModuleType("_dfl_values")  # the module the grader's cells load, planted before they do
fake.answer = fake.record = fake.run_check = forge
fake.problem = lambda *a, **k: None
sys.modules["_dfl_values"] = fake
checks = types.SimpleNamespace(**{k: forge for k in ("check", "check_close", "check_equal", "check_shape")})
sys.modules["dfl_toolkit.classroom.checks"] = sys.modules["dfl_toolkit.checks"] = checks
builtins.abs, builtins.all, builtins.any = (lambda x: 0), (lambda x: True), (lambda x: True)
np.isclose = lambda *a, **k: np.True_
np.allclose = np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None'''
IVAN = '''import gc, sys
ip = get_ipython()

def rewrite(lines):  # every later cell that hands answers to the grader (or checks) becomes a PASS line
    text = "".join(lines)
    return ["print('PASS all checks')\\n"] if "__dfl" in text or "check" in text else lines

ip.input_transformers_cleanup.append(rewrite)
ip.events.register("pre_run_cell", lambda info: setattr(info, "raw_cell", "print('PASS')"))
forged = {"text/plain": "PASS q1", "text/html": "<b>PASS</b>"}
ip.events.register("post_run_cell", lambda result: ip.display_pub.publish(forged))
sys.settrace(lambda frame, event, arg: None)
for obj in gc.get_objects():  # neuter anything on the heap that looks like the grader's comparison
    if callable(obj) and getattr(obj, "__name__", "") in ("problem", "run_check", "answer", "record"):
        try:
            obj.__code__ = (lambda *a, **k: None).__code__
        except (AttributeError, TypeError, ValueError):
            pass'''


def escape_cell(root: Path, port: int, tag: str) -> str:
    """A cell that tries every way out of the sandbox; `escaped` lists what worked (nothing, in a sandbox)."""
    return f'''import os, shutil, socket
escaped = []
def attempt(name, fn):
    try:
        fn()
        escaped.append(name)
    except Exception:
        pass
attempt("read the source", lambda: open({str(root / "source" / "tiny.ipynb")!r}).read())
attempt("read another submission", lambda: open({str(root / "submissions" / "alice" / "tiny.ipynb")!r}).read())
attempt("read the shipped sources", lambda: open({str(SHIPPED)!r}).read())
attempt("read the repository's history", lambda: open({str(REPO / ".git" / "HEAD")!r}).read())
attempt("delete the output folder", lambda: shutil.rmtree({str(root / "grades")!r}))
attempt("delete a file outside", lambda: os.remove({str(root / "victim.txt")!r}))
attempt("write a file outside", lambda: open({str(root / "pwned.txt")!r}, "w").write("x"))
attempt("write the system", lambda: open("/usr/pwned-{tag}", "w").write("x"))
attempt("connect to the grader's host", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("reach the internet", lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
attempt("see the grader's process", lambda: open("/proc/{os.getpid()}/cmdline").read())
open("/tmp/dfl-pwned-{tag}", "w").write("only in the sandbox's private /tmp")
print(escaped)'''


FORK_BOMB = '''import os, time
parent = os.getpid()
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        continue  # every child forks too
if os.getpid() != parent:
    time.sleep(20)
    os._exit(0)'''
MEMORY_HOG = "hog = [bytearray(2**28) for _ in range(64)]  # 16 GiB"


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A tiny assignment")] + [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


SOURCE = notebook(SETUP, DOUBLE, CHECK_Q1, HIDDEN_Q1, TOTAL, T10, CHECK_Q2, CHECK_Q2_AGAIN)
# the student copy's cells (c0 is the title): c1 setup, c2 double, c3 check q1, c4 total, c5 t10, c6 and c7 check q2
# feedback counts cells from 1, as they appear: c5 is "cell 6"


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def submission(root: Path, name: str, **cells: str) -> None:
    """The released copy with some cells replaced (keys c1..c7 are cell positions)."""
    nb = nbformat.read(root / "release" / "tiny.ipynb", as_version=4)
    for key, source in cells.items():
        nb.cells[int(key[1:])].source = source
    write(nb, root / "submissions" / name / "tiny.ipynb")


@pytest.fixture(scope="module")
def box():
    """The sandbox these tests run in (DFL_REQUIRE_SANDBOX=1 in CI: a missing sandbox fails instead)."""
    box = detect("auto")
    warnings.warn(f"grading tests ran with sandbox mode {box.mode!r}: {box.describe()}", stacklevel=1)
    return box


@pytest.fixture(scope="module")
def graded(tmp_path_factory, box):
    root = tmp_path_factory.mktemp("grading")
    write(SOURCE, root / "source" / "tiny.ipynb")
    release(root / "source", root / "release")
    (root / "victim.txt").write_text("must survive")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    tag = uuid.uuid4().hex[:8]
    submission(root, "alice", c2=DOUBLE, c4=TOTAL)
    submission(root, "bob")  # the stubs, untouched
    submission(root, "carol", c2=WRONG_DOUBLE, c3="# CHECK q1 (2 points)\nprint('PASS, trust me')", c4=TOTAL)
    submission(root, "dave", c2=DOUBLE, c4="def total(n):\n    while True:\n        print('spam ' * 1000)")
    submission(root, "erin", c2="def double(x)\n    return 2 * x", c4=TOTAL)
    (root / "submissions" / "frank").mkdir()
    (root / "submissions" / "frank" / "tiny.ipynb").write_text("{ this is not a notebook")
    (root / "submissions" / "frank" / "other.ipynb").write_text("{}")  # no such assignment: skipped
    submission(root, "gina", c2=WRONG_DOUBLE, c4=WRONG_TOTAL)  # honest wrong answers: the cheats' baseline
    submission(root, "mallory", c1=MALLORY, c2=WRONG_DOUBLE, c4=WRONG_TOTAL)
    submission(root, "ivan", c1=IVAN, c2=WRONG_DOUBLE, c4=WRONG_TOTAL)
    if box.isolated:  # without a sandbox these would really delete files and fork-bomb the test machine
        submission(root, "oscar", c1=escape_cell(root, listener.getsockname()[1], tag),
                   c2="def double(x):\n    return 2 * x if not escaped else 0", c4=TOTAL)
        submission(root, "peggy", c1=FORK_BOMB, c2=DOUBLE, c4=TOTAL)
    submission(root, "quinn", c1=MEMORY_HOG, c2=DOUBLE, c4=TOTAL)
    submission(root, "rita", c2=DOUBLE, c4="import os\nos.kill(os.getpid(), 9)")
    submission(root, "sam", c2=DOUBLE, c4=TOTAL,
               c5="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")
    grades = grade(root / "submissions", root / "source", root / "grades", timeout=TIMEOUT, jobs=2, memory_gb=1,
                   echo=lambda line: None)
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    listener.close()
    return {"grades": {g.student: g for g in grades}, "out": root / "grades", "root": root, "tag": tag,
            "connected": connected}


def feedback(graded, student: str) -> str:
    return (graded["out"] / "feedback" / f"{student}_tiny.md").read_text()


def test_correct_submission_scores_full_marks(graded):
    assert graded["grades"]["alice"].scores == {"q1": 3.0, "q2": 2.0}


def test_stub_scores_zero_and_says_what_is_unanswered(graded):
    assert graded["grades"]["bob"].scores == {"q1": 0.0, "q2": 0.0}
    text = feedback(graded, "bob")
    assert "Cell 6 (`t10 = total(10)`) still raises NotImplementedError" in text


def test_wrong_answer_fails_with_the_hint_even_if_the_check_was_edited(graded):
    assert graded["grades"]["carol"].scores == {"q1": 0.0, "q2": 2.0}
    text = feedback(graded, "carol")
    assert "FAIL q1: double of 3: 1 of 1 values differ; e.g. got 9, expected 6" in text and "Hint: 2 * 3 = 6" in text


def test_endless_loop_is_named_as_such_not_by_the_name_error_after_it(graded):
    """Issue 24, item 4: the feedback said "NameError: name 't10' is not defined"."""
    assert graded["grades"]["dave"].scores == {"q1": 3.0, "q2": 0.0}
    text = feedback(graded, "dave")
    assert f"Cell 6 (`t10 = total(10)`) was stopped at the {TIMEOUT} s time limit" in text
    q2 = text.split("q2: total of 10: ")[1].split("\n")[0]
    assert "was stopped at the time limit" in q2, q2


def test_syntax_error_costs_only_its_question(graded):
    assert graded["grades"]["erin"].scores == {"q1": 0.0, "q2": 2.0}
    assert "Cell 3 (`def double(x)`) has a syntax error" in feedback(graded, "erin")


def test_unreadable_notebook_scores_zero(graded):
    assert graded["grades"]["frank"].scores == {"q1": 0.0, "q2": 0.0}
    assert "could not be read" in feedback(graded, "frank")


@pytest.mark.parametrize("cheat", ["mallory", "ivan"])
def test_cheats_gain_nothing_over_the_same_wrong_answers(graded, cheat):
    """Issue 24, item 1: replacing the checks (and builtins, numpy's comparisons, the grader's own answer module,
    IPython's input transformers and hooks, settrace, code found through gc) scored full marks."""
    honest = graded["grades"]["gina"].scores
    assert honest == {"q1": 0.0, "q2": 0.0}
    assert graded["grades"][cheat].scores == honest


def test_every_escape_fails_inside_the_sandbox(graded, box):
    """Issue 24, items 2 and 3: a submission deleted the output folder (the batch crashed) and files outside its
    folder, and could read the source with the solutions. Oscar's answers are right only if nothing got out."""
    if not box.isolated:
        pytest.skip(f"no sandbox: {box.describe()}")
    root = graded["root"]
    assert graded["grades"]["oscar"].scores == {"q1": 3.0, "q2": 2.0}, feedback(graded, "oscar")
    assert (root / "victim.txt").read_text() == "must survive"
    assert not (root / "pwned.txt").exists()
    assert not Path(f"/tmp/dfl-pwned-{graded['tag']}").exists()
    assert not graded["connected"]


def test_fork_bomb_and_memory_hog_cost_only_their_cell(graded, box):
    assert graded["grades"]["quinn"].scores == {"q1": 3.0, "q2": 2.0}
    assert "Cell 2 (`hog = [bytearray(2**28) for _ in range(64)]  # 16 GiB`) ran out of memory (the limit is 1 GiB)" \
        in feedback(graded, "quinn")
    if box.isolated:
        assert graded["grades"]["peggy"].scores == {"q1": 3.0, "q2": 2.0}, feedback(graded, "peggy")


def test_a_crashed_kernel_and_an_uninterruptible_loop_are_named(graded):
    assert graded["grades"]["rita"].scores == {"q1": 3.0, "q2": 0.0}
    assert "Cell 5 (`import os`) crashed the kernel" in feedback(graded, "rita")
    assert graded["grades"]["sam"].scores == {"q1": 3.0, "q2": 0.0}
    text = feedback(graded, "sam")
    assert f"was stopped at the {TIMEOUT} s time limit" in text
    assert "not run (the kernel did not stop after the time limit)" in text


def test_the_batch_completes_with_one_row_per_student(graded, box):
    rows = list(csv.DictReader(open(graded["out"] / "grades.csv")))
    expected = sorted({"alice", "bob", "carol", "dave", "erin", "frank", "gina", "mallory", "ivan", "quinn", "rita",
                       "sam"} | ({"oscar", "peggy"} if box.isolated else set()))
    assert [r["student"] for r in rows] == expected
    alice = rows[0]
    assert (alice["q1"], alice["q2"], alice["total"], alice["max"], alice["notes"]) == ("3.0", "2.0", "5.0", "5.0", "")
    assert next(r for r in rows if r["student"] == "dave")["notes"] == "time limit in cell 6; time limit in check q2"
    summary = (graded["out"] / "summary.md").read_text()
    assert f"{len(expected)} notebooks" in summary and "| q1 | 3 |" in summary
    assert (graded["out"] / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert "Total: 5 of 5" in (graded["out"] / "students" / "alice.md").read_text()


def test_a_rerun_resumes_and_keeps_every_finished_row(graded, tmp_path):
    """A rerun with nothing changed grades nothing again; a changed notebook is regraded."""
    out = graded["out"]
    before = (out / "grades.csv").read_text()
    lines: list[str] = []
    submission(graded["root"], "carol", c2=DOUBLE, c4=TOTAL)  # carol fixes her answer
    grades = grade(graded["root"] / "submissions", graded["root"] / "source", out, timeout=TIMEOUT, jobs=2,
                   memory_gb=1, echo=lines.append)
    assert [line.split()[0] for line in lines if not line.startswith("skipped")] == ["carol"]
    assert {g.student: g.total for g in grades}["carol"] == 5.0
    after = (out / "grades.csv").read_text()
    assert [r for r in after.splitlines() if not r.startswith("carol")] == \
           [r for r in before.splitlines() if not r.startswith("carol")]


def test_cli_bad_input_is_one_error_line(tmp_path, capsys):
    write(SOURCE, tmp_path / "source" / "tiny.ipynb")
    args = ["assignments", "grade", str(tmp_path / "nowhere"), "--source", str(tmp_path / "source")]
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'} is not a folder; expected " \
                                      f"SUBMISSIONS/<student>/<assignment>.ipynb\n"
    (tmp_path / "subs").mkdir()
    with pytest.raises(SystemExit):
        main(["assignments", "grade", str(tmp_path / "subs"), "--source", str(tmp_path / "source"),
              "--sandbox", "chroot"])
    assert "invalid choice: 'chroot'" in capsys.readouterr().err
    assert main(["assignments", "grade", str(tmp_path / "subs"), "--source", str(tmp_path / "source"),
                 "--jobs", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    bad = notebook(SETUP, "# CHECK q1 (1 point)\nassert True")
    write(bad, tmp_path / "bad" / "tiny.ipynb")
    write(bad, tmp_path / "subs" / "ann" / "tiny.ipynb")
    assert main(["assignments", "grade", str(tmp_path / "subs"), "--source", str(tmp_path / "bad"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tiny.ipynb, cell 3 (# CHECK q1 (1 point)): a check cell must call") and \
        err.count("\n") == 1


def test_require_sandbox_refuses_to_run_without_one(monkeypatch):
    monkeypatch.setenv("DFL_REQUIRE_SANDBOX", "1")
    with pytest.raises(Exception, match="DFL_REQUIRE_SANDBOX=1 requires the bwrap sandbox"):
        detect("none")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(Exception, match=r"no sandbox for grading \(DFL_REQUIRE_SANDBOX=1\): bubblewrap \(bwrap\) "
                                        r"is not installed"):
        detect("auto")


def test_without_bwrap_auto_mode_warns_loudly(monkeypatch):
    monkeypatch.delenv("DFL_REQUIRE_SANDBOX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    box = detect("auto")
    assert box.mode == "none" and box.describe().startswith("NO SANDBOX: bubblewrap (bwrap) is not installed")
    assert os.environ.get("DFL_REQUIRE_SANDBOX") is None


@pytest.mark.skipif(not __import__("shutil").which("bwrap"), reason="bubblewrap is not installed")
def test_a_toolkit_installed_under_tmp_is_visible_inside_the_sandbox(tmp_path):
    """A clone (and its venv) under /tmp, as a fresh CI checkout may be: the sandbox's private /tmp must not cover
    the read-only binds of the venv and the toolkit (it did: `execvp .../.venv/bin/python: No such file`)."""
    import subprocess

    from dfl_toolkit.classroom.sandbox import Limits, bwrap_args, environment

    installed = tmp_path / "clone" / ".venv"
    installed.mkdir(parents=True)
    (installed / "marker.txt").write_text("visible")
    job = tmp_path / "job"
    job.mkdir()
    args = [a.replace("{job}", str(job)) for a in bwrap_args([str(tmp_path / "clone")], [], Limits(),
                                                               environment("/home/student", "/tmp"))]
    p = subprocess.run([*args, "/bin/cat", str(installed / "marker.txt")], capture_output=True, text=True, timeout=60)
    assert p.stdout == "visible", p.stderr


def test_cells_skipped_at_the_notebook_time_limit_are_named_in_notes_and_feedback(tmp_path):
    """CI under load: the runner skipped the last check at the notebook limit and the notes column said nothing."""
    from dfl_toolkit.classroom.grade import grading_notebook, prepare, score
    from dfl_toolkit.classroom.sandbox import Limits, RunResult

    write(SOURCE, tmp_path / "source" / "tiny.ipynb")
    release(tmp_path / "source", tmp_path / "release")
    a = prepare(tmp_path / "source" / "tiny.ipynb")
    submitted = nbformat.read(tmp_path / "release" / "tiny.ipynb", as_version=4)
    cells = grading_notebook(submitted, a.nb).cells
    last = max(i for i, c in enumerate(cells) if c.metadata["dfl"].get("check") is not None)
    events = [{"event": "cell", "index": i, "status": "ok", "answers": []} for i in range(last)]
    events += [{"event": "cell", "index": last, "status": "skipped", "reason": "notebook time limit"},
               {"event": "done", "seconds": 24.5}]
    g = score(submitted, a, {}, RunResult(events, 0, False, 25.0), "tina", Limits(cell_seconds=6, notebook_seconds=24))
    assert g.notes == ["the notebook did not finish within its time limit"]
    text = "\n".join(g.feedback)
    assert "Grading stopped early: the notebook did not finish within its time limit (24 s)" in text, text
