"""Does a longer training budget separate the table's good cells? Top 1% against the 90th percentile.

The table's targets (the 3x gap, the regret and DARTS ranks) fail because, at its budget, the seed
noise among good cells is as large as their differences. Would training longer fix that, or does the
task run out of differences? This script takes cells from the table's top 1% and from around its
90th percentile (``--cells`` of each, drawn with a fixed seed), trains each with two seeds under the
table's budget and under a longer one (all 3,500 training images, 10 epochs: about 6x the cost), and
prints per budget: each group's mean test accuracy, the difference top minus 90th percentile (95%
interval over cells), the seed-to-seed sd, and how well the two seeds agree on the order of the cells.

    python benchmarks/budget_separation.py --table nb201_mnist14 [--cells 15]

About 12-13 minutes on 2 cores; results in ``results/budget_separation.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import random
import statistics
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import Benchmark, CellSpace, TrainBudget, TrainEvaluator, spearman

OUT = Path(__file__).parent / "results"
_EVALUATORS: dict[str, TrainEvaluator] = {}


def budgets(table_budget: dict) -> dict[str, TrainBudget]:
    base = TrainBudget(**table_budget)
    longer = dataclasses.replace(base, data_options={**base.data_options, "train_size": 3500}, epochs=10)
    return {"table": base, "longer": longer}


def _init(table_budget: dict) -> None:
    for name, budget in budgets(table_budget).items():
        _EVALUATORS[name] = TrainEvaluator(CellSpace(), budget, threads=1)


def _train(job: tuple[str, str, int]) -> dict:
    budget, arch, seed = job
    result = _EVALUATORS[budget](CellSpace().from_str(arch), seed)
    return {"budget": budget, "arch": arch, "seed": seed, "test_acc": result.get("test_acc", 0.0),
            "train_time": result["train_time"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--cells", type=int, default=15, help="cells per group")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    bench = Benchmark.load(args.table)
    table = bench.metric("test_acc")
    names = [r["arch"] for r in bench.rows]
    order = np.argsort(-table, kind="stable")
    rng = random.Random(1)
    n = len(names)
    groups = {"top 1%": rng.sample([names[i] for i in order[: round(0.01 * n)]], args.cells),
              "8-12% (90th pct)": rng.sample([names[i] for i in order[round(0.08 * n): round(0.12 * n)]], args.cells)}
    cells = [a for group in groups.values() for a in group]
    plans = budgets(bench.meta["budget"])
    jobs = [(b, a, s) for b in plans for a in cells for s in (0, 1)]
    with mp.get_context("spawn").Pool(args.workers, _init, (bench.meta["budget"],)) as pool:
        runs = list(pool.imap_unordered(_train, jobs))
    acc = {(r["budget"], r["arch"], r["seed"]): r["test_acc"] for r in runs}

    summary = {}
    print(f"\n{args.cells} cells per group, seeds 0 and 1; test accuracy")
    print(f"{'budget':<8}{'s / run':>8}{'top 1% mean':>13}{'90th pct mean':>15}{'top - 90th (95%)':>20}"
          f"{'seed sd':>9}{'seed Spearman':>15}")
    for b, plan in plans.items():
        mean = {a: (acc[b, a, 0] + acc[b, a, 1]) / 2 for a in cells}
        top, p90 = ([mean[a] for a in c] for c in groups.values())
        diff = float(np.mean(top) - np.mean(p90))
        half = float(1.96 * np.sqrt(np.var(top, ddof=1) / len(top) + np.var(p90, ddof=1) / len(p90)))
        sd = float(np.sqrt(np.mean([(acc[b, a, 0] - acc[b, a, 1]) ** 2 / 2 for a in cells])))
        rho = spearman([acc[b, a, 0] for a in cells], [acc[b, a, 1] for a in cells])
        seconds = statistics.median(r["train_time"] for r in runs if r["budget"] == b)
        summary[b] = {"budget": plan.to_dict(), "seconds_per_run": seconds,
                      "top_mean": float(np.mean(top)), "p90_mean": float(np.mean(p90)), "difference": [diff, half],
                      "seed_sd": sd, "seed_spearman": rho}
        print(f"{b:<8}{seconds:>8.1f}{np.mean(top):>13.4f}{np.mean(p90):>15.4f}{diff:>+12.4f} +- {half:.4f}"
              f"{sd:>9.4f}{rho:>15.2f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "budget_separation.json").write_text(json.dumps(
        {"table": args.table, "cells_per_group": args.cells, "groups": groups, "summary": summary, "runs": runs},
        indent=1))


if __name__ == "__main__":
    main()
