"""Can a predictor see through the noise? An upper bound for "denoise by fitting a model".

A search on the table sees noisy measurements (one run's validation accuracy) and is judged by the cells'
mean test accuracy. A surrogate model fitted to the measurements pools each cell with similar cells, so its
predictions could rank the good cells better than their own measurements do, and the search could report the
cell the model ranks first instead of the luckiest run (noisy Bayesian optimisation reports its best posterior
mean for this reason).

This script gives that idea far more data than any search has: a regressor fitted on 80% of the table
(5-fold cross-fitting, so every cell is predicted by a model that never saw it) against the 50-300 evaluations
of a search. It reports, for each signal and for the model's predictions and a 50/50 blend of the two, the
Spearman correlation with the mean test accuracy over all cells and within the top 10% (where a search
chooses after about 50 queries), and the regret of the cells each one ranks first.

    python benchmarks/predictor_ceiling.py --table nb201_mnist14

Writes ``results/predictor_ceiling.json``; about 1 minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.model_selection import KFold

from dfl_toolkit.nas import Benchmark, spearman

OUT = Path(__file__).parent / "results"
MODELS = {
    "random forest": lambda: RandomForestRegressor(300, min_samples_leaf=5, n_jobs=2, random_state=0),
    "gradient boosting": lambda: HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=0),
}


def cross_fit(make, x: np.ndarray, y: np.ndarray, folds: int = 5) -> np.ndarray:
    """Out-of-fold predictions: each cell predicted by a model fitted on the other folds."""
    pred = np.empty_like(y)
    for train, held in KFold(folds, shuffle=True, random_state=0).split(x):
        pred[held] = make().fit(x[train], y[train]).predict(x[held])
    return pred


def scores(score: np.ndarray, judged: np.ndarray, top: np.ndarray) -> dict[str, float]:
    """How well ``score`` finds the cells with the best ``judged`` value."""
    order = np.argsort(-score, kind="stable")
    best = judged.max()
    return {"spearman_all": spearman(score, judged), "spearman_top10": spearman(score[top], judged[top]),
            "regret_first": float(best - judged[order[0]]), "regret_first10": float(best - judged[order[:10]].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    args = parser.parse_args()
    bench = Benchmark.load(args.table)
    x = np.array([bench.space.encode(a) for a in bench.archs()], dtype=float)
    judged = bench.metric("test_acc")
    top = judged >= np.quantile(judged, 0.9)
    signals = {f"val_acc seed {s}": bench.metric("val_acc", seed=s) for s in bench.seeds}
    signals["mean_val_acc"] = bench.metric("val_acc")
    rows = []
    for name, signal in signals.items():
        rows.append({"signal": name, "score": "the measurement itself", **scores(signal, judged, top)})
        for model, make in MODELS.items():
            pred = cross_fit(make, x, signal)
            rows.append({"signal": name, "score": model, **scores(pred, judged, top)})
            rows.append({"signal": name, "score": f"{model} + measurement, 50/50",
                         **scores(0.5 * pred + 0.5 * signal, judged, top)})
    print(f"{len(judged)} cells; judged by the mean test accuracy over seeds {bench.seeds}; top 10% = "
          f"{top.sum()} cells; regret of the cell(s) ranked first (best {judged.max():.4f})")
    print(f"{'signal':<18}{'score':<40}{'Spearman all':>13}{'top 10%':>9}{'regret 1st':>12}{'first 10':>10}")
    for r in rows:
        print(f"{r['signal']:<18}{r['score']:<40}{r['spearman_all']:>13.3f}{r['spearman_top10']:>9.3f}"
              f"{r['regret_first']:>12.4f}{r['regret_first10']:>10.4f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "predictor_ceiling.json").write_text(json.dumps({"table": args.table, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
