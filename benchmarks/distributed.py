"""RayExecutor on this machine (issue 28): how a training search scales from 1 to 2 Ray workers, and what a Ray task
costs against a ProcessExecutor job when the evaluation itself is free (a table lookup).

    .venv/bin/python benchmarks/distributed.py scaling --repeats 3     # 16 trained cells, 1 vs 2 workers (~6 min)
    .venv/bin/python benchmarks/distributed.py overhead --repeats 3    # 400 table lookups, Ray vs processes (~2 min)

- scaling: an evolution search of 16 cells trained with the table's budget (``TrainBudget()``, about 3-4 s a
  cell), two asked at a time, on a local Ray instance of 1 and of 2 CPUs; the wall time of the search (the
  instance already started, its start timed apart) and the ratio; the trials of every run must be identical.
- overhead: 400 evaluations of the shipped table, 8 asked at a time, with ``ProcessExecutor(2)``,
  ``RayExecutor(workers=2)`` and in this process; evaluations per second (pool or instance already started).

Medians over ``--repeats``; measure on an idle machine. Writes benchmarks/results/distributed.json (one section per
part; the other is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from dfl_toolkit.nas import (  # noqa: E402
    Benchmark,
    CellSpace,
    ProcessExecutor,
    RayExecutor,
    RegularizedEvolution,
    SequentialExecutor,
    TabularEvaluator,
    TrainBudget,
    TrainEvaluator,
    search,
)

OUT = Path(__file__).resolve().parent / "results" / "distributed.json"


def timed_search(evaluator, executor, budget: int, batch_size: int, seed: int = 0):
    """(seconds, trials) of one search, the executor started (and each worker warmed by one evaluation) before the
    clock runs."""
    space = CellSpace()
    list(executor.map(evaluator, [(space.sample(random.Random(k)), k, None) for k in range(batch_size)]))
    t0 = time.perf_counter()
    result = search(CellSpace(), RegularizedEvolution(), evaluator, budget, seed=seed, batch_size=batch_size,
                    executor=executor, progress=False)
    return time.perf_counter() - t0, [(t.arch, t.result.get("val_acc")) for t in result.trials]


def scaling(repeats: int) -> dict:
    evaluator = TrainEvaluator(CellSpace(), TrainBudget())
    walls: dict[int, list[float]] = {1: [], 2: []}
    starts: list[float] = []
    reference = None
    for _ in range(repeats):
        for workers in (1, 2):
            t0 = time.perf_counter()
            ex = RayExecutor(workers=workers)
            ex.start()
            starts.append(time.perf_counter() - t0)
            try:
                seconds, trials = timed_search(evaluator, ex, budget=16, batch_size=2)
            finally:
                ex.close()
            reference = reference or trials
            assert trials == reference, "a Ray search gave other trials"
            walls[workers].append(seconds)
            print(f"{workers} worker(s): {seconds:.1f} s")
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    return {"cells": 16, "batch_size": 2, "wall_s": {str(k): v for k, v in walls.items()},
            "median_s": {"1": one, "2": two}, "speedup": one / two, "ray_start_s": statistics.median(starts),
            "identical_trials": True}


def overhead(repeats: int) -> dict:
    evaluator = TabularEvaluator(Benchmark.load())
    rates: dict[str, list[float]] = {"sequential": [], "process": [], "ray": []}
    for _ in range(repeats):
        for name, make in (("sequential", SequentialExecutor), ("process", lambda: ProcessExecutor(2)),
                           ("ray", lambda: RayExecutor(workers=2))):
            ex = make()
            try:
                seconds, _ = timed_search(evaluator, ex, budget=400, batch_size=8)
            finally:
                ex.close()
            rates[name].append(400 / seconds)
            print(f"{name}: {400 / seconds:.0f} evaluations/s")
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"evaluations": 400, "batch_size": 8, "per_s": rates, "median_per_s": med,
            "ms_per_task": {k: 1000 / v for k, v in med.items()}, "process_over_ray": med["process"] / med["ray"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("scaling", "overhead"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = json.loads(OUT.read_text()) if OUT.exists() else {}
    out[args.part] = {**(scaling if args.part == "scaling" else overhead)(args.repeats), "repeats": args.repeats,
                      "cpus": os.cpu_count(), "python": platform.python_version()}
    OUT.write_text(json.dumps(out, indent=1))
    print(json.dumps(out[args.part], indent=1))


if __name__ == "__main__":
    main()
