"""Learning from past searches: how NAS-Bench-201 cells' ranks transfer between datasets, and what a predictor-based
search gains from another dataset's results.

``--transfer`` (seconds): on the published tables, CIFAR-10 -> CIFAR-100 -> ImageNet16-120, the Spearman correlation
(scipy) of the 200-epoch test accuracy and of the search signal (one-seed validation accuracy) between each pair of
datasets, over all 15,625 cells and over the source's top 10%; the overlap of the two datasets' top-1% and top-10%
sets; where the source's best cell lands on the target. For scale, the same dataset's validation against test
accuracy (what a search sees against what it reports).

``--table T --prior P``: ``PredictorSearch`` on table T three ways, for each seed: cold; warm, its ``prior`` given
``--prior-cells`` random cells of table P with their validation accuracy (a new draw per seed; every cell of P if it
has fewer); and without a model, evaluating those prior cells on T best-first ("copy"). Regret: the table's best
test accuracy minus the test accuracy of the cell with the best validation accuracy found so far, in points of
accuracy, mean and 95% bootstrap interval over seeds (of the paired differences too), and the **speed-up**: queries
the cold search needs to reach the warm search's mean regret at b, divided by b.
The curves of every seed are kept in the results file: a second call with more ``--seeds`` runs only the new ones.

    python benchmarks/warm_start.py --transfer
    python benchmarks/warm_start.py --table nb201_cifar100 --prior nb201_cifar10 --seeds 50
    python benchmarks/warm_start.py --table nb201_mnist14 --prior nb201_digits --seeds 50
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from dfl_toolkit.nas import Benchmark, CellSpace, PredictorSearch, TabularEvaluator, search
from dfl_toolkit.nas.analysis import expected_best_of_n
from dfl_toolkit.nas.spaces.base import Arch

OUT = Path(__file__).parent / "results"
RESULTS = OUT / "warm_start.json"
BUDGETS = (10, 25, 50, 100)
CHAIN = ("nb201_cifar10", "nb201_cifar100", "nb201_imagenet16")  # the published tables, in transfer order
ARMS = ("cold", "warm", "copy")


def settings(prior: Sequence[tuple[Arch, float]] = ()) -> PredictorSearch:
    """The predictor-based search every arm of the comparison uses (cold: no prior)."""
    return PredictorSearch(initial=10, ensemble=5, epochs=100, refit_every=5, prior=prior)


class CopySource:
    """No model: ask the prior's cells best-first (by their score on the other dataset), then random cells."""

    name = "copy"

    def __init__(self, prior: list[tuple[Arch, float]]):
        self.order = [a for a, _ in sorted(prior, key=lambda p: p[1], reverse=True)]

    def setup(self, space: CellSpace, objective: str, rng: random.Random) -> None:
        self.space, self.rng, self.next = space, rng, 0

    def ask(self) -> Arch:
        self.next += 1
        return self.order[self.next - 1] if self.next <= len(self.order) else self.space.sample(self.rng)

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"prior": len(self.order)}


def save(results: dict[str, Any]) -> None:
    """Write the results file, each list of numbers (a seed's regret curve) on one line."""
    text = json.dumps(results, indent=1)
    RESULTS.write_text(re.sub(r"\[[-0-9.,eE\s]+\]", lambda m: json.dumps(json.loads(m.group())), text) + "\n")


# --- rank transfer between the published tables -------------------------------------------------------------------

def top(values: np.ndarray, share: float) -> np.ndarray:
    """Indices of the best ``share`` of the cells (ties broken by row order)."""
    return np.argsort(-values, kind="stable")[:int(len(values) * share)]


def transfer() -> dict[str, Any]:
    """Rank agreement of every pair of published tables (source earlier in :data:`CHAIN`), both metrics."""
    tables = {name: Benchmark.load(name) for name in CHAIN}
    out: dict[str, Any] = {"pairs": {}, "within": {}}
    for name, bench in tables.items():  # for scale: what a search sees against what it reports, one dataset
        val, test = bench.metric("val_acc"), bench.metric("test_acc")
        best = top(val, 0.1)
        out["within"][name] = {"spearman_all": float(spearmanr(val, test).statistic),
                               "spearman_top10": float(spearmanr(val[best], test[best]).statistic)}
    print(f"{'metric':<9}{'source -> target':<36}{'Spearman all':>13}{'top 10%':>9}{'top-1% overlap':>16}"
          f"{'top-10% overlap':>17}{'source best: target share better':>34}")
    for metric in ("test_acc", "val_acc"):
        for i, source in enumerate(CHAIN):
            for target in CHAIN[i + 1:]:
                a, b = tables[source].metric(metric), tables[target].metric(metric)
                best = top(a, 0.1)
                overlap = {f"top{round(s * 100)}": len(set(top(a, s)) & set(top(b, s))) / len(top(a, s))
                           for s in (0.01, 0.1)}
                winner = int(np.argmax(a))  # first among ties, as a search would report it
                row = {"spearman_all": float(spearmanr(a, b).statistic),
                       "spearman_top10": float(spearmanr(a[best], b[best]).statistic), "overlap": overlap,
                       "source_best_share_better": float((b > b[winner]).mean()),
                       "source_best_regret": float(b.max() - b[winner])}
                if metric == "val_acc":  # what copying the source's search winner gives: its target test accuracy
                    test = tables[target].metric("test_acc")
                    row["source_best_test_regret"] = float(test.max() - test[winner])
                    row["source_best_test_share_better"] = float((test > test[winner]).mean())
                out["pairs"].setdefault(metric, {})[f"{source} -> {target}"] = row
                print(f"{metric:<9}{source + ' -> ' + target:<36}{row['spearman_all']:>13.3f}"
                      f"{row['spearman_top10']:>9.3f}{overlap['top1']:>16.1%}{overlap['top10']:>17.1%}"
                      f"{row['source_best_share_better']:>34.2%}")
    print("\nthe source's best cell by val_acc on the target: test regret (points), share better: " + ", ".join(
        f"{k} {r['source_best_test_regret']:.2f}, {r['source_best_test_share_better']:.2%}"
        for k, r in out["pairs"]["val_acc"].items()))
    print("same dataset, one-seed val_acc against test_acc (Spearman all / top 10% by val_acc): " + ", ".join(
        f"{n} {w['spearman_all']:.3f} / {w['spearman_top10']:.3f}" for n, w in out["within"].items()))
    return out


# --- warm-started search ------------------------------------------------------------------------------------------

def source_cells(bench: Any) -> list[tuple[Arch, float]]:
    """Every cell of a table with its validation accuracy (a toolkit table's: mean over its seeds)."""
    return list(zip(bench.archs(), bench.metric("val_acc").tolist(), strict=True))


def run_seed(seed: int, target: Any, pool: list[tuple[Arch, float]], cells: int, budget: int,
             best: float, scale: float) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Regret curves (points of accuracy, after each query) of the three arms for one seed, and their seconds."""
    rng = np.random.default_rng(seed)
    prior = [pool[i] for i in sorted(rng.choice(len(pool), cells, replace=False))] if cells < len(pool) else pool
    strategies = {"cold": settings(), "warm": settings(prior), "copy": CopySource(prior)}
    curves, seconds = {}, {}
    for arm, strategy in strategies.items():
        start = time.perf_counter()
        result = search(CellSpace(), strategy, TabularEvaluator(target), budget, seed=seed, progress=False)
        seconds[arm] = time.perf_counter() - start
        curves[arm] = [round((best - v) * scale, 4) for v in result.incumbent("mean_test_acc")]
    return curves, seconds


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 10_000) -> list[float]:
    """Mean and 95% percentile-bootstrap interval of the mean (resampling seeds): [mean, low, high]."""
    means = values[rng.integers(len(values), size=(n, len(values)))].mean(1)
    return [float(values.mean()), *(float(q) for q in np.percentile(means, [2.5, 97.5]))]


def queries_to_reach(curve: np.ndarray, target: float) -> float:
    """First query count at which a mean regret curve is <= target (inf if never)."""
    hit = np.flatnonzero(curve <= target + 1e-9)
    return float(hit[0] + 1) if hit.size else float("inf")


def random_regret(bench: Any, budget: int, best: float, scale: float) -> float:
    """Expected regret of random search after ``budget`` queries (closed form): cells drawn uniformly from the
    15,625, picked by one training run's validation accuracy (a seed drawn with the cell, on a toolkit table),
    judged by the mean test accuracy."""
    test = bench.full_space("test_acc")
    runs = [bench.full_space("val_acc", seed=s) for s in bench.seeds] or [bench.full_space("val_acc")]
    value = expected_best_of_n(np.concatenate(runs), budget, judged_by=np.tile(test, len(runs)))
    return (best - value) * scale


def summarise(curves: dict[str, dict[str, list[float]]], budget: int, random_search: dict[int, float]
              ) -> dict[str, Any]:
    """Regret per arm and budget, warm - cold and copy - cold (paired by seed), and the speed-up; printed too.
    ``random_search``: random search's expected regret per budget, for scale."""
    rng = np.random.default_rng(0)
    seeds = sorted(curves["cold"], key=int)
    c = {arm: np.array([curves[arm][s] for s in seeds]) for arm in ARMS}
    mean = {arm: v.mean(0) for arm, v in c.items()}
    print(f"\nregret in points of accuracy, mean [95% bootstrap interval], {len(seeds)} seeds")
    print(f"{'queries':>7}{'random':>8}{'cold':>22}{'warm':>22}{'copy':>22}{'warm - cold':>24}{'copy - cold':>24}"
          f"{'cold needs':>11}{'speed-up':>9}")
    rows = {}
    for b in (b for b in BUDGETS if b <= budget):
        row: dict[str, Any] = {arm: bootstrap(c[arm][:, b - 1], rng) for arm in ARMS}
        for arm in ("warm", "copy"):
            row[f"{arm}_minus_cold"] = bootstrap(c[arm][:, b - 1] - c["cold"][:, b - 1], rng)
        need = queries_to_reach(mean["cold"], mean["warm"][b - 1])
        row["cold_needs"], row["speed_up"], row["random"] = need, need / b, random_search[b]
        rows[str(b)] = row
        text = [f"{m:6.3f} [{lo:6.3f},{hi:6.3f}]" for m, lo, hi in
                (row[k] for k in ("cold", "warm", "copy", "warm_minus_cold", "copy_minus_cold"))]
        need_text, speed_text = ((f">{budget}", f">{budget / b:.1f}x") if need == float("inf")
                                 else (f"{need:.0f}", f"{need / b:.1f}x"))
        print(f"{b:>7}{random_search[b]:>8.3f}{text[0]:>22}{text[1]:>22}{text[2]:>22}{text[3]:>24}{text[4]:>24}{need_text:>11}"
              f"{speed_text:>9}")
    return rows


def warm_start(table: str, prior_table: str, seeds: int, cells: int, budget: int) -> None:
    """Run the seeds not yet in the results file, saving after each, then summarise over all of them."""
    target, source = Benchmark.load(table), Benchmark.load(prior_table)
    pool = source_cells(source)
    cells = min(cells, len(pool))
    best = float(target.metric("test_acc").max())
    scale = 100.0 if best <= 1.0 else 1.0  # the toolkit's tables hold fractions, the published ones percent
    config = {"table": table, "table_sha256": target.meta["sha256"], "prior": prior_table,
              "prior_sha256": source.meta["sha256"], "prior_cells": cells, "prior_score": "val_acc",
              "budget": budget, "strategy": settings().config(), "regret": "points of accuracy (test_acc)"}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    key = f"{prior_table} ({cells} cells) -> {table}"
    entry = results.setdefault("searches", {}).get(key, {})
    if entry.get("config") != config:
        if entry:
            print(f"note: the stored runs of {key} had other settings; they are replaced")
        entry = {"config": config, "curves": {arm: {} for arm in ARMS}, "seconds": {arm: {} for arm in ARMS}}
    results["searches"][key] = entry
    archs = [a for a, _ in pool]  # how the two datasets rank the source's cells (test accuracy)
    entry["transfer_spearman"] = float(spearmanr([source.query(a)["test_acc"] for a in archs],
                                                 [target.query(a)["test_acc"] for a in archs]).statistic)
    print(f"target {table} (best test acc {best * scale:.2f}), prior: {cells} of {len(pool)} cells of {prior_table}; "
          f"Spearman of the two datasets' test accuracy over those {len(pool)} cells: {entry['transfer_spearman']:.3f}")
    for seed in range(seeds):
        if str(seed) in entry["curves"]["cold"]:
            continue
        curves, seconds = run_seed(seed, target, pool, cells, budget, best, scale)
        for arm in ARMS:
            entry["curves"][arm][str(seed)], entry["seconds"][arm][str(seed)] = curves[arm], round(seconds[arm], 2)
        print(f"seed {seed}: regret at {budget} cold {curves['cold'][-1]:.3f} warm {curves['warm'][-1]:.3f} "
              f"copy {curves['copy'][-1]:.3f}; " + ", ".join(f"{a} {s:.1f} s" for a, s in seconds.items()),
              flush=True)
        save(results)
    random_search = {b: random_regret(target, b, best, scale) for b in BUDGETS if b <= budget}
    entry["rows"] = summarise(entry["curves"], budget, random_search)
    entry["mean_seconds"] = {arm: float(np.mean(list(v.values()))) for arm, v in entry["seconds"].items()}
    entry["seeds"] = len(entry["curves"]["cold"])
    save(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfer", action="store_true", help="rank transfer between the published tables")
    parser.add_argument("--table", help="target table, searched (name or .json.gz)")
    parser.add_argument("--prior", help="table of another dataset, the warm start's source")
    parser.add_argument("--seeds", type=int, default=50, help="seeds 0..N-1 (the ones already stored are kept)")
    parser.add_argument("--prior-cells", type=int, default=1000, help="cells of the prior table the warm start gets")
    parser.add_argument("--budget", type=int, default=100)
    args = parser.parse_args()
    if not args.transfer and not (args.table and args.prior):
        parser.error("give --transfer, or --table and --prior")
    import torch

    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    if args.transfer:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["transfer"] = transfer()
        save(results)
    if args.table:
        warm_start(args.table, args.prior, args.seeds, args.prior_cells, args.budget)


if __name__ == "__main__":
    main()
