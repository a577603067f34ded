"""How far can a search get on the signal it sees? Random search's regret in closed form, far past the table.

A search on the table is judged by a cell's mean test accuracy but picks its best cell by what it sees: one
training run's validation accuracy (``val_acc``, the seed varying from query to query, as ``TabularEvaluator``
does), the validation accuracy averaged over the table's seeds (``mean_val_acc``), or the judged value itself
(``mean_test_acc``, an oracle). For random search the expected regret after n queries has a closed form
(:func:`expected_best_of_n` with ``judged_by``), for any n, so the curve can be followed past 300 queries to
"every cell evaluated many times": the regret of the signal's own best cell, which no strategy can beat by
optimising the signal better.

If the curve is U-shaped, the cells that look best are not the best: a strategy that climbs the signal faster than
random search goes *past* the bottom of the U sooner, and beats random only in the budgets before that.
The measured strategy curves (from ``regret_curves.py``'s JSON files, where present) are drawn on top.

    python benchmarks/winners_curse.py --table nb201_mnist14
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import Benchmark
from dfl_toolkit.nas.analysis import expected_best_of_n

OUT = Path(__file__).parent / "results"
BUDGETS = (10, 20, 50, 100, 200, 300, 1_000, 3_000, 10_000, 100_000)
MEASURED = {"val_acc": "regret_curves.json", "mean_val_acc": "regret_curves_mean_val_acc.json",
            "mean_test_acc": "regret_curves_mean_test_acc.json"}


def populations(bench: Benchmark) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(signal, judged value) for every draw random search can make, per objective."""
    judged = bench.full_space("test_acc")
    one_run = np.concatenate([bench.full_space("val_acc", seed=s) for s in bench.seeds])  # (cell, seed) pairs
    return {"val_acc": (one_run, np.tile(judged, len(bench.seeds))),
            "mean_val_acc": (bench.full_space("val_acc"), judged),
            "mean_test_acc": (judged, judged)}


def signal_best(signal: np.ndarray, judged: np.ndarray) -> float:
    """Judged value of the signal's best draw (ties averaged): what infinitely many queries find."""
    return float(judged[signal == signal.max()].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    args = parser.parse_args()
    bench = Benchmark.load(args.table)
    best = float(bench.metric("test_acc").max())
    grid = np.unique(np.geomspace(1, 1_000_000, 200).astype(int))
    result: dict[str, dict] = {}
    print(f"expected regret of random search picking by each signal (best mean test acc {best:.4f} minus the "
          f"picked cell's)")
    print(f"{'signal':<15}" + "".join(f"{b:>9,}" for b in BUDGETS) + f"{'signal best':>13}{'lowest (at n)':>20}")
    for objective, (signal, judged) in populations(bench).items():
        at = {b: best - expected_best_of_n(signal, b, judged_by=judged) for b in BUDGETS}
        curve = [best - expected_best_of_n(signal, int(n), judged_by=judged) for n in grid]
        low = int(np.argmin(curve))
        result[objective] = {"regret": at, "signal_best_regret": best - signal_best(signal, judged),
                             "lowest": (curve[low], int(grid[low])), "curve": [grid.tolist(), curve]}
        print(f"{objective:<15}" + "".join(f"{at[b]:>9.4f}" for b in BUDGETS)
              + f"{result[objective]['signal_best_regret']:>13.4f}{curve[low]:>12.4f} ({grid[low]:,})")
    print("val_acc draws (cell, training seed) pairs; 'signal best' is the regret of the cell the signal ranks first")
    OUT.mkdir(exist_ok=True)
    (OUT / "winners_curse.json").write_text(json.dumps(
        {"table": args.table, "best": best,
         **{k: {**v, "regret": {str(b): r for b, r in v["regret"].items()}} for k, v in result.items()}}, indent=1))
    _plot(result, OUT / "winners_curse.png")


def _plot(result: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
    for ax, (objective, r) in zip(axes, result.items(), strict=True):
        n, curve = r["curve"]
        ax.plot(n, curve, color="k", label="random search, closed form")
        ax.axhline(r["signal_best_regret"], color="k", ls=":", label="the signal's best cell")
        measured = OUT / MEASURED[objective]
        if measured.exists():
            mean = json.loads(measured.read_text())["mean_regret"]
            for name, m in mean.items():
                ax.plot(np.arange(1, len(m) + 1), m, lw=1, label=f"{name} (measured)")
        ax.set(xscale="log", xlabel="queries", ylim=(0, 0.03), title=f"searches maximise {objective}")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("regret (mean test accuracy)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
