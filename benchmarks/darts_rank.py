"""DARTS, GDAS and DARTS- on the benchmark's task, and where their derived cells rank in the table.

Runs each gradient-based mode on the same data the benchmark table was trained on, logs alpha per
epoch (to show skip-connection collapse), derives a cell, and looks it up in the table (or, if a
partial table does not hold it yet, trains it with the table's budget for the table's seeds). The
rank is the fraction of table cells with a higher mean test accuracy (top 5% = 0.05).

    python benchmarks/darts_rank.py --table data/nb201_mnist14.json.gz [--epochs 50] [--modes darts gdas darts-]
    python benchmarks/darts_rank.py --table data/nb201_mnist14.json.gz --rerank   # same searches, newer table

``--rerank`` keeps the derived cells of the last report (the searches do not depend on the table) and
looks them up again, e.g. once the table is complete.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

import dfl_toolkit as dfl
from dfl_toolkit.nas import Benchmark, CellSpace, TrainBudget, TrainEvaluator
from dfl_toolkit.nas.darts import darts_search

OUT = Path(__file__).parent / "results"


def rank_of(bench: Benchmark, arch, budget: TrainBudget) -> tuple[float, float, bool]:
    """(mean test accuracy, fraction of table cells better, whether it came from the table)."""
    try:
        acc, from_table = bench.query(arch)["test_acc"], True
    except KeyError:
        ev = TrainEvaluator(CellSpace(), budget)
        acc = statistics.fmean(ev(arch, seed)["test_acc"] for seed in bench.meta["seeds"])
        from_table = False
    table = bench.metric("test_acc")
    return acc, float((table > acc).mean()), from_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--alpha-lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=0, help="epochs that train only the weights (0: plain)")
    parser.add_argument("--modes", nargs="+", default=["darts", "gdas", "darts-"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rerank", action="store_true", help="look up the last report's cells in --table again")
    args = parser.parse_args()
    report_path = OUT / f"darts_rank_seed{args.seed}{f'_warmup{args.warmup}' if args.warmup else ''}.json"
    if args.rerank:
        rerank(args.table, report_path)
        return
    torch.set_num_threads(1)
    bench = Benchmark.load(args.table)
    b = bench.meta["budget"]
    budget = TrainBudget(**b)
    data = dfl.get_dataset(b["dataset"], **b["data_options"])
    space = CellSpace()
    report = {"table": args.table, "table_cells": len(bench), "epochs": args.epochs, "alpha_lr": args.alpha_lr,
              "warmup": args.warmup, "search_data": b["data_options"],
              "best_in_table": float(bench.metric("test_acc").max()), "runs": []}
    print(f"table: {len(bench)} cells, best mean test acc {report['best_in_table']:.4f}")
    print(f"{'mode':<8}{'derived cell':<100}{'test acc':>9}{'rank':>8}{'skip share':>12}{'search s':>10}")
    for mode in args.modes:
        res = darts_search(data, mode=mode, epochs=args.epochs, channels=b["skeleton"]["channels"],
                           cells_per_stage=b["skeleton"]["cells_per_stage"], batch_size=32,
                           alpha_lr=args.alpha_lr, warmup=args.warmup, seed=args.seed, progress=False,
                           checkpoint=OUT / f"darts_{mode}_e{args.epochs}_w{args.warmup}_lr{args.alpha_lr}"
                                            f"_seed{args.seed}.pt")
        acc, rank, from_table = rank_of(bench, res.arch, budget)
        run = {"mode": mode, "arch": space.to_str(res.arch), "test_acc": acc, "rank": rank, "from_table": from_table,
               "skip_share": res.skip_share(), "seconds": res.seconds, "alphas": res.alphas}
        report["runs"].append(run)
        print_run(run)
    OUT.mkdir(exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1))


def print_run(run: dict) -> None:
    print(f"{run['mode']:<8}{run['arch']:<100}{run['test_acc']:>9.4f}{run['rank']:>8.1%}"
          f"{run['skip_share'][-1]:>12.2f}{run['seconds']:>10.0f}")


def rerank(table: str, path: Path) -> None:
    """Look the derived cells of an earlier report up in ``table`` and rewrite the report."""
    bench = Benchmark.load(table)
    budget = TrainBudget(**bench.meta["budget"])
    space = CellSpace()
    report = json.loads(path.read_text())
    report.update(table=table, table_cells=len(bench), best_in_table=float(bench.metric("test_acc").max()))
    print(f"table: {len(bench)} cells, best mean test acc {report['best_in_table']:.4f}")
    for run in report["runs"]:
        run["test_acc"], run["rank"], run["from_table"] = rank_of(bench, space.from_str(run["arch"]), budget)
        print_run(run)
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
