"""Wall time to grade a class: N submissions of one assignment, one sandbox at a time and several in parallel.

The submissions are made from the source notebook: most with the reference solution, some left as stubs, some with
a wrong answer (saliency without the absolute value). Each run grades the whole batch afresh (the reference run
included) with `dfl_toolkit.classroom.grade`, in quick mode unless --full. Prints a table and writes
`benchmarks/results/grading_scale.json`; the machine's load average is recorded before and after each run.

    python benchmarks/grading_scale.py [--count 30] [--jobs 1 2] [--assignment 02_saliency_sanity]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nbformat

from dfl_toolkit.classroom import detect, grade
from dfl_toolkit.classroom.release import parse_check, student_copy

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks" / "assignments" / "source"


def submissions(source: Path, out: Path, count: int) -> dict[str, str]:
    """``count`` student folders under ``out``: 2/3 correct, 1/6 stubs, 1/6 with a wrong answer."""
    src = nbformat.read(source, as_version=4)
    stub = student_copy(src, source.stem)
    solved = nbformat.v4.new_notebook(metadata=dict(stub.metadata))
    solved.cells = [c for c in src.cells if not (c.cell_type == "code" and (k := parse_check(c.source)) and k.hidden)]
    for c in solved.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    wrong = nbformat.from_dict(json.loads(json.dumps(solved)))
    for c in wrong.cells:
        c.source = c.source.replace("return grad.abs()", "return grad")
    kinds = {}
    for i in range(count):
        kind = "stub" if i % 6 == 4 else "wrong" if i % 6 == 5 else "correct"
        nb = {"stub": stub, "wrong": wrong, "correct": solved}[kind]
        folder = out / f"student{i:02d}"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / source.name)
        kinds[folder.name] = kind
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--assignment", default="02_saliency_sanity")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--full", action="store_true", help="full mode (default: DFL_QUICK=1)")
    args = parser.parse_args()
    if not args.full:
        os.environ["DFL_QUICK"] = "1"
    box = detect("auto")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source_dir = Path(tmp) / "source"
        source_dir.mkdir()
        (source_dir / f"{args.assignment}.ipynb").write_bytes((SOURCE / f"{args.assignment}.ipynb").read_bytes())
        kinds = submissions(source_dir / f"{args.assignment}.ipynb", Path(tmp) / "submissions", args.count)
        for jobs in args.jobs:
            load_before = os.getloadavg()
            t0 = time.perf_counter()
            grades = grade(Path(tmp) / "submissions", source_dir, Path(tmp) / f"out{jobs}", timeout=args.timeout,
                           jobs=jobs, fresh=True, echo=lambda line: None)
            seconds = time.perf_counter() - t0
            totals = {k: sorted({g.total for g in grades if kinds[g.student] == k}) for k in sorted({*kinds.values()})}
            rows.append({"jobs": jobs, "notebooks": len(grades), "seconds": round(seconds, 1),
                         "per_notebook": round(seconds / len(grades), 2), "load_before": load_before,
                         "load_after": os.getloadavg(), "totals_by_kind": totals})
            print(f"jobs {jobs}: {len(grades)} notebooks in {seconds:.0f} s ({seconds / len(grades):.1f} s each); "
                  f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; totals {totals}")
    result = {"assignment": args.assignment, "quick": not args.full, "count": args.count, "cpus": os.cpu_count(),
              "sandbox": box.describe(), "runs": rows}
    out = ROOT / "benchmarks" / "results" / "grading_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
