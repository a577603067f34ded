"""Does a larger validation split give searches a better signal? A check on a (partial) build.

A search on the table picks cells by one training run's validation accuracy. This script compares that
signal for two validation splits on the cells a ``--unused-to-val`` build (2,000 validation images) holds,
against the shipped table (500 validation images). The yardstick is the test accuracy of an *independent*
training run (the table's other seed), so that no signal is scored against its own run's noise:

- new val (2,000 images, build seed 0) against the table's test accuracy, seed 1;
- table val (500 images) of seed 0 against the table's test, seed 1 (and seed 1 against seed 0);
- new test (1,000 images, seed 0) against the table's test, seed 1: the test split's own agreement.

What a search needs is the top of the ranking, so it also reports, for both validation splits:

- Spearman among the top 10% of cells (by the yardstick);
- the regret of random search that picks its best cell by the signal (closed form,
  :func:`expected_best_of_n` with ``judged_by``), over the built cells weighted by their isomorphic copies
  (as random search draws them);
- the regret of regularized evolution searching on the signal (``--seeds`` runs, ``--budget`` queries;
  cells the build lacks fail, for both signals alike).

Regret = best yardstick value among the built cells minus the picked cell's. It also prints how closely
the build's seed-0 runs repeat the table's seed-0 runs (same seed, today's code). Differences get a 95%
bootstrap interval over cells.

    python benchmarks/val_split_check.py --build data/nb201_mnist14_val2k --table nb201_mnist14 \
        [--seeds 100] [--budget 300]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import Benchmark, CellSpace, RegularizedEvolution, search
from dfl_toolkit.nas.analysis import expected_best_of_n, mean_interval, spearman
from dfl_toolkit.nas.benchmark.build import RESULTS, read_results

OUT = Path(__file__).parent / "results"
BUDGETS = (10, 20, 50, 100, 200, 300)


class BothSignals:
    """Evaluator over the built cells: both validation signals and the yardstick (table test, seed 1)."""

    def __init__(self, bench: Benchmark, built: dict[str, dict]):
        self.bench, self.built = bench, built

    def __call__(self, arch, seed: int = 0) -> dict:
        row = self.bench.row(arch)
        new = self.built.get(row["arch"])
        if new is None:
            return {"failed": True}
        return {"val2000": new["val_acc"], "val500": row["val_acc"]["0"], "judge": row["test_acc"]["1"]}


def bootstrap_difference(a: np.ndarray, b: np.ndarray, target: np.ndarray, n: int = 2000,
                         seed: int = 0) -> tuple[float, float]:
    """95% interval of spearman(a, target) - spearman(b, target), resampling cells."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        i = rng.integers(0, len(a), len(a))
        diffs.append(spearman(a[i], target[i]) - spearman(b[i], target[i]))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return float(lo), float(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build folder made with --unused-to-val")
    parser.add_argument("--table", required=True, help="the shipped table (.json.gz)")
    parser.add_argument("--seeds", type=int, default=100, help="evolution runs per signal")
    parser.add_argument("--budget", type=int, default=300, help="queries per evolution run")
    args = parser.parse_args()
    if args.budget < BUDGETS[0] or args.seeds < 2:
        raise SystemExit(f"--budget must be >= {BUDGETS[0]} and --seeds >= 2 (for intervals)")

    config = json.loads((Path(args.build) / "config.json").read_text())
    if not config["budget"]["data_options"].get("unused_to_val"):
        raise SystemExit(f"{args.build} was not built with --unused-to-val")
    bench = Benchmark.load(args.table)
    table = {r["arch"]: r for r in bench.rows}
    rows = [r for r in read_results(Path(args.build) / RESULTS) if r["seed"] == 0 and not r["failed"]]
    rows = [r for r in rows if r["arch"] in table]
    if len(rows) < 20:
        raise SystemExit(f"only {len(rows)} built cells with seed 0; build more first")

    def old(metric: str, seed: str) -> np.ndarray:
        return np.array([table[r["arch"]][metric][seed] for r in rows])

    new_val = np.array([r["val_acc"] for r in rows])
    new_test = np.array([r["test_acc"] for r in rows])
    test0, test1 = old("test_acc", "0"), old("test_acc", "1")
    val0, val1 = old("val_acc", "0"), old("val_acc", "1")
    result = {
        "cells": len(rows),
        "new_val2000_vs_test_seed1": spearman(new_val, test1),
        "table_val500_seed0_vs_test_seed1": spearman(val0, test1),
        "table_val500_seed1_vs_test_seed0": spearman(val1, test0),
        "new_test1000_vs_test_seed1": spearman(new_test, test1),
        "same_seed_repeat_test": spearman(new_test, test0),
        "same_seed_repeat_val500_vs_val2000": spearman(new_val, val0),
    }
    result["difference_interval"] = bootstrap_difference(new_val, val0, test1)
    print(f"{result['cells']:,} cells with seed 0 in {args.build}; Spearman over all of them:")
    lines = {"new val (2,000 images), seed 0 vs table test, seed 1": "new_val2000_vs_test_seed1",
             "table val (500 images), seed 0 vs table test, seed 1": "table_val500_seed0_vs_test_seed1",
             "table val (500 images), seed 1 vs table test, seed 0": "table_val500_seed1_vs_test_seed0",
             "new test (1,000 images), seed 0 vs table test, seed 1": "new_test1000_vs_test_seed1"}
    for label, key in lines.items():
        print(f"  {label:<56}{result[key]:.3f}")
    lo, hi = result["difference_interval"]
    print(f"  difference, 2,000 - 500 validation images: "
          f"{result['new_val2000_vs_test_seed1'] - result['table_val500_seed0_vs_test_seed1']:+.3f} "
          f"(95% bootstrap interval {lo:+.3f} to {hi:+.3f})")
    print(f"same seed, today's code vs the table's run: test {result['same_seed_repeat_test']:.3f}")

    top = test1 >= np.quantile(test1, 0.9)
    signals = {"val2000": new_val, "val500": val0}
    result["top_decile"] = {k: spearman(v[top], test1[top]) for k, v in signals.items()}
    result["top_decile_difference_interval"] = bootstrap_difference(new_val[top], val0[top], test1[top])
    lo, hi = result["top_decile_difference_interval"]
    print(f"among the top 10% of these cells by the yardstick ({top.sum()} cells): Spearman "
          + ", ".join(f"{k} {v:.3f}" for k, v in result["top_decile"].items())
          + f"; difference 95% interval {lo:+.3f} to {hi:+.3f}")

    budgets = [b for b in BUDGETS if b <= args.budget]
    best = float(test1.max())
    space = CellSpace()  # random search draws from all 15,625 cells: a cell weighs as many as its isomorphic copies
    copies = Counter(space.canonical(a) for a in space.enumerate())
    weight = np.array([copies[space.canonical(space.from_str(r["arch"]))] for r in rows])

    def random_regret(signal: np.ndarray, judge: np.ndarray, n: int, w: np.ndarray) -> float:
        return float(judge.max()) - expected_best_of_n(np.repeat(signal, w), n, judged_by=np.repeat(judge, w))

    result["random_regret"] = {k: {b: random_regret(v, test1, b, weight) for b in budgets}
                               for k, v in {**signals, "yardstick itself": test1}.items()}
    grid = np.unique(np.geomspace(1, 100 * len(rows), 120).astype(int))
    result["random_far"] = {}  # how the closed form goes on past the budget: its lowest point, and the signal's top
    for k, v in {**signals, "yardstick itself": test1}.items():
        curve = [random_regret(v, test1, int(n), weight) for n in grid]
        low = int(np.argmin(curve))
        result["random_far"][k] = {"lowest": curve[low], "at": int(grid[low]),
                                   "signal_first": best - float(test1[v == v.max()].mean())}
    n_mid = 100 if 100 in budgets else budgets[-1]
    rng, diffs = np.random.default_rng(0), []
    for _ in range(500):  # resample cells: regret at n_mid picking by val2000 minus picking by val500
        i = rng.integers(0, len(rows), len(rows))
        diffs.append(random_regret(new_val[i], test1[i], n_mid, weight[i])
                     - random_regret(val0[i], test1[i], n_mid, weight[i]))
    result["random_regret_difference_interval"] = [float(q) for q in np.quantile(diffs, [0.025, 0.975])]
    built = {r["arch"]: r for r in rows}
    evaluator, runs = BothSignals(bench, built), {}
    for key in signals:
        runs[key] = np.array([search(space, RegularizedEvolution(population_size=10, sample_size=3), evaluator,
                                     args.budget, seed=seed, objective=key, progress=False).incumbent("judge")
                              for seed in range(args.seeds)])
    result["evolution_regret"] = {}  # over the runs that found a built cell by then (early on, some did not)
    for key, r in runs.items():
        result["evolution_regret"][key] = {}
        for b in budgets:
            ok = np.isfinite(r[:, b - 1])
            result["evolution_regret"][key][b] = (*mean_interval(best - r[ok, b - 1]), int(ok.sum()))
    print(f"\nregret (best yardstick among the built cells {best:.4f} minus the picked cell's), by queries:")
    print(f"{'':<34}" + "".join(f"{b:>16}" for b in budgets))
    for key, per in result["random_regret"].items():
        far = result["random_far"][key]
        print(f"{'random, picks by ' + key:<34}" + "".join(f"{per[b]:>16.4f}" for b in budgets)
              + f"   lowest {far['lowest']:.4f} at {far['at']:,}; the signal's first cell {far['signal_first']:.4f}")
    for key, per in result["evolution_regret"].items():
        print(f"{'evolution, searches on ' + key:<34}"
              + "".join(f"{per[b][0]:>9.4f} +-{per[b][1]:.4f}" for b in budgets))
        missing = {b: args.seeds - per[b][2] for b in budgets if per[b][2] < args.seeds}
        if missing:
            print(f"{'':<34}(runs with no built cell yet, left out: {missing})")
    lo, hi = result["random_regret_difference_interval"]
    print(f"(random: closed form over the {len(rows):,} built cells, weighted by isomorphic copies; regret at "
          f"{n_mid} with val2000 minus with val500: 95% interval {lo:+.4f} to {hi:+.4f};\n"
          f" evolution: {args.seeds} runs, {args.budget} queries, cells not yet built fail)")
    OUT.mkdir(exist_ok=True)
    (OUT / "val_split_check.json").write_text(json.dumps({"build": args.build, "table": args.table, **result},
                                                         indent=1))


if __name__ == "__main__":
    main()
