"""Search without training: random search and evolution on a zero-cost proxy, judged by the table.

Each search scores untrained networks with ``ProxyEvaluator`` (one proxy, one fixed batch, the
table's networks), maximises the proxy for ``--budget`` queries, and the cell it ends with is looked
up in the benchmark table (mean test accuracy over the table's seeds). Printed per proxy and strategy:
the found cell's mean test accuracy and regret (table's best minus it) with 95% intervals over seeds,
its share of table cells better, and seconds per search. For comparison, the searches that train (table
lookups, picking by one run's validation accuracy) from ``results/regret_curves.json`` when it is there.

    python benchmarks/proxy_search.py --table nb201_mnist14 [--seeds 20] [--budget 200]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import (
    Benchmark,
    CellSpace,
    ProxyEvaluator,
    TrainBudget,
    mean_interval,
    search,
)
from dfl_toolkit.nas.strategies import STRATEGIES as REGISTRY

OUT = Path(__file__).parent / "results"
PROXY_NAMES = ("naswot", "synflow", "params")
STRATEGIES = {name: REGISTRY[name] for name in ("random", "evolution")}  # evolution: population 10, sample 3
_EVALUATORS: dict[str, ProxyEvaluator] = {}


def _init(budget: dict) -> None:
    for name in PROXY_NAMES:
        _EVALUATORS[name] = ProxyEvaluator(CellSpace(), name, TrainBudget(**budget), threads=1)


def _run(job: tuple[str, str, int, int]) -> tuple[str, str, str, float]:
    proxy, strategy, seed, budget = job
    t0 = time.perf_counter()
    result = search(CellSpace(), STRATEGIES[strategy](), _EVALUATORS[proxy], budget, seed=seed, objective=proxy,
                    progress=False)
    return proxy, strategy, result.best.arch, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200, help="proxy queries per search")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    bench = Benchmark.load(args.table)
    table = bench.metric("test_acc")
    best = float(table.max())
    jobs = [(p, s, seed, args.budget) for p in PROXY_NAMES for s in STRATEGIES for seed in range(args.seeds)]
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with mp.get_context("spawn").Pool(args.workers, _init, (bench.meta["budget"],)) as pool:
        for proxy, strategy, arch, seconds in pool.imap_unordered(_run, jobs):
            found.setdefault((proxy, strategy), []).append((bench.query(arch)["test_acc"], seconds))

    print(f"\n{args.seeds} seeds x {args.budget} proxy queries; table best {best:.4f}")
    print(f"{'proxy':<9}{'strategy':<11}{'test acc found':>18}{'regret':>18}{'share better':>14}{'s / search':>12}")
    rows = {}
    for (proxy, strategy), values in sorted(found.items()):
        acc = [a for a, _ in values]
        m, h = mean_interval(acc)
        share = float(np.mean([(table > a).mean() for a in acc]))
        seconds = float(np.median([s for _, s in values]))
        rows[f"{proxy}/{strategy}"] = {"test_acc": [m, h], "regret": best - m, "share_better": share,
                                       "seconds": seconds}
        print(f"{proxy:<9}{strategy:<11}{m:>11.4f}+-{h:.4f}{best - m:>11.4f}+-{h:.4f}{share:>13.1%}{seconds:>12.1f}")
    trained = {}
    curves = OUT / "regret_curves.json"
    if curves.exists() and json.loads(curves.read_text())["table"] == args.table:
        summary = json.loads(curves.read_text())["summary"]
        trained = {name: {n: s[n][0] for n in ("50", "100", "300") if n in s} for name, s in summary.items()}
        print("searches that train (regret_curves.json, mean regret after 50 / 100 / 300 trainings): "
              + "; ".join(f"{name} " + " / ".join(f"{v:.4f}" for v in r.values()) for name, r in trained.items()))
    OUT.mkdir(exist_ok=True)
    (OUT / "proxy_search.json").write_text(json.dumps(
        {"table": args.table, "seeds": args.seeds, "budget": args.budget, "best": best, "rows": rows,
         "trained_searches": trained}, indent=1))


if __name__ == "__main__":
    main()
