"""Learning from past searches: warm-start the predictor-based search with another dataset's results.

Prior: every cell of a second, smaller table (NAS-Bench-201 cells trained on sklearn digits, built with
``dfl benchmark build --dataset digits ...`` and packed) with its mean validation accuracy. Target: the
MNIST-14 table. For each seed, ``PredictorSearch`` runs on the target once cold and once with the prior, and
the script prints mean regret +- 95% interval per budget and the **speed-up**: how many queries the cold
search needs to reach the regret the warm search has after b queries, divided by b. It also prints how
well architectures transfer between the two datasets: the Spearman correlation of their accuracies over
the cells both tables hold.

    python benchmarks/warm_start.py --table nb201_mnist14 --prior nb201_digits
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import Benchmark, CellSpace, PredictorSearch, TabularEvaluator, search
from dfl_toolkit.nas.analysis import mean_interval, spearman

OUT = Path(__file__).parent / "results"
BUDGETS = (10, 20, 30, 50, 75, 100)
_STATE: dict = {}


def _init(table: str, prior: list) -> None:
    import torch

    torch.set_num_threads(1)
    space = CellSpace()
    _STATE.update(bench=Benchmark.load(table), prior=[(space.from_str(a), s) for a, s in prior])


def _run(job: tuple[str, int, int]) -> tuple[str, list[float]]:
    kind, seed, budget = job
    prior = _STATE["prior"] if kind == "warm" else ()
    strategy = PredictorSearch(initial=10, ensemble=5, epochs=100, refit_every=5, prior=prior)
    result = search(CellSpace(), strategy, TabularEvaluator(_STATE["bench"]), budget, seed=seed, progress=False)
    return kind, result.incumbent("mean_test_acc")


def queries_to_reach(curve: np.ndarray, target: float) -> float:
    """First query count at which a mean regret curve is <= target (inf if never)."""
    hit = np.flatnonzero(curve <= target + 1e-12)
    return float(hit[0] + 1) if hit.size else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="target table (.json.gz)")
    parser.add_argument("--prior", required=True, help="table of another dataset (.json.gz)")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    target, source = Benchmark.load(args.table), Benchmark.load(args.prior)
    prior = [(r["arch"], float(np.mean(list(r["val_acc"].values())))) for r in source.rows]
    common = [r["arch"] for r in source.rows if _has(target, r["arch"])]
    rho = spearman([source.query(a)["test_acc"] for a in common], [target.query(a)["test_acc"] for a in common])
    print(f"prior: {len(prior)} cells of {source.meta['budget']['dataset']}; "
          f"Spearman between the datasets over {len(common)} common cells: {rho:.3f}")
    best = float(target.metric("test_acc").max())
    curves: dict[str, list[list[float]]] = {"cold": [], "warm": []}
    jobs = [(kind, seed, args.budget) for kind in curves for seed in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.workers, _init, (args.table, prior)) as pool:
        for kind, incumbent in pool.imap_unordered(_run, jobs):
            curves[kind].append([best - v for v in incumbent])
    mean = {k: np.array(v).mean(0) for k, v in curves.items()}
    budgets = [b for b in BUDGETS if b <= args.budget]
    print(f"\nregret (best mean test acc {best:.4f} minus incumbent's), mean +- 95% interval, {args.seeds} seeds")
    print(f"{'queries':>8} {'cold':>16} {'warm':>16} {'cold needs':>11} {'speed-up':>9}")
    rows = {}
    for b in budgets:
        cold, warm = (mean_interval(np.array(curves[k])[:, b - 1]) for k in ("cold", "warm"))
        need = queries_to_reach(mean["cold"], mean["warm"][b - 1])
        speed = need / b
        rows[b] = {"cold": cold, "warm": warm, "cold_needs": need, "speed_up": speed}
        need_text = f">{args.budget}" if need == float("inf") else f"{need:.0f}"
        speed_text = f">{args.budget / b:.1f}x" if need == float("inf") else f"{speed:.1f}x"
        print(f"{b:>8} {cold[0]:>9.4f}+-{cold[1]:<5.4f} {warm[0]:>9.4f}+-{warm[1]:<5.4f} {need_text:>11} "
              f"{speed_text:>9}")
    OUT.mkdir(exist_ok=True)
    (OUT / "warm_start.json").write_text(json.dumps(
        {"table": args.table, "prior": args.prior, "seeds": args.seeds, "transfer_spearman": rho,
         "common_cells": len(common), "rows": {str(b): v for b, v in rows.items()}}, indent=1))


def _has(bench: Benchmark, arch: str) -> bool:
    try:
        bench.row(arch)
    except KeyError:
        return False
    return True


if __name__ == "__main__":
    main()
