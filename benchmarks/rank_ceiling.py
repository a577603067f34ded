"""How high can a found cell rank in the benchmark table at best? Retrain the table's top cells.

DARTS's target is a derived cell "in the top 5% of the table". The table's rank is measured with
noise: each entry is the mean test accuracy of two short training runs. So even a cell that *is*
among the best lands lower when it is trained again. This script measures that ceiling: it takes the
table's top 1% (by the two-seed mean test accuracy) and trains each cell again with two new seeds
(2 and 3), with the table's budget. The new two-seed mean is an independent measurement with the
same noise as any table entry (e.g. the entry of a cell DARTS derives), so its rank among the table's
entries is where a truly good cell lands on this table.

A second round narrows it to the cells that are best beyond doubt: the ``--confirm`` best of the top
cells by their mean over all four runs are trained with two more seeds (4 and 5), ranked the same way.

A control group (cells drawn at random, so not selected by seeds 0 and 1) is retrained the same way;
its new runs must match its table entries on average, or the new runs would not be comparable.

    python benchmarks/rank_ceiling.py --table nb201_mnist14 [--top 0.01] [--control 40]

Runs are appended to ``results/rank_ceiling_runs_<table checksum>.jsonl`` as they finish (a killed run resumes);
the summary goes to ``results/rank_ceiling.json``. About 7-8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import Benchmark, CellSpace, TrainBudget, TrainEvaluator
from dfl_toolkit.nas.analysis import mean_interval

OUT = Path(__file__).parent / "results"
NEW_SEEDS = (2, 3)
CONFIRM_SEEDS = (4, 5)
_EVALUATOR: TrainEvaluator | None = None


def _init(budget: dict) -> None:
    global _EVALUATOR
    _EVALUATOR = TrainEvaluator(CellSpace(), TrainBudget(**budget), threads=1)


def _train(job: tuple[str, int]) -> dict:
    arch, seed = job
    result = _EVALUATOR(CellSpace().from_str(arch), seed)
    return {"arch": arch, "seed": seed, "test_acc": result.get("test_acc"), "failed": bool(result.get("failed"))}


def _runs_file(bench: Benchmark) -> Path:
    """One runs file per table (by checksum), so runs of another table's budget are never mixed in."""
    return OUT / f"rank_ceiling_runs_{bench.meta['sha256'][:12]}.jsonl"


def _done(bench: Benchmark) -> dict[tuple[str, int], dict]:
    runs_file = _runs_file(bench)
    if not runs_file.exists():
        return {}
    runs = [json.loads(line) for line in runs_file.read_text().splitlines() if line.strip().endswith("}")]
    return {(r["arch"], r["seed"]): r for r in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--top", type=float, default=0.01, help="share of the table's cells retrained (best first)")
    parser.add_argument("--control", type=int, default=40, help="cells drawn at random, retrained as a check")
    parser.add_argument("--confirm", type=int, default=13, help="best top cells (by four runs) trained twice more")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    bench = Benchmark.load(args.table)
    table = bench.metric("test_acc")
    names = [r["arch"] for r in bench.rows]
    order = np.argsort(-table, kind="stable")
    top = [names[i] for i in order[: max(1, round(args.top * len(names)))]]
    control = random.Random(0).sample(sorted(set(names) - set(top)), args.control)

    row = {a: i for i, a in enumerate(names)}
    done = _train_all([(a, s) for a in top + control for s in NEW_SEEDS], bench, args.workers)

    def fresh(arch: str, seeds=NEW_SEEDS) -> float:
        return float(np.mean([0.0 if done[arch, s]["failed"] else done[arch, s]["test_acc"] for s in seeds]))

    four = sorted(top, key=lambda a: -(table[row[a]] + fresh(a)))[: args.confirm]
    done = _train_all([(a, s) for a in four for s in CONFIRM_SEEDS], bench, args.workers)
    # Control: cells not chosen by their table entries; their new runs must agree on average.
    diff = [fresh(a) - table[row[a]] for a in control]
    control_mean, control_half = mean_interval(diff)
    # Top cells: where their new two-seed mean ranks among the table's entries.
    def share_better_than(arch: str, acc: float) -> float:
        """Share of the *other* table entries above ``acc`` (the cell's own entry is not its competitor)."""
        return float(((table > acc).sum() - (table[row[arch]] > acc)) / (len(table) - 1))

    share_better = np.array([share_better_than(a, fresh(a)) for a in top])
    drop = [table[row[a]] - fresh(a) for a in top]
    summary = {
        "table": args.table, "new_seeds": list(NEW_SEEDS), "top_cells": len(top), "control_cells": len(control),
        "control_new_minus_table": [control_mean, control_half],
        "top_table_mean": float(np.mean([table[row[a]] for a in top])),
        "top_new_mean": float(np.mean([fresh(a) for a in top])),
        "top_drop": mean_interval(drop),
        "top_rank_mean": float(share_better.mean()), "top_rank_median": float(np.median(share_better)),
        "top_rank_interval": mean_interval(share_better)[1],
        "share_in_top_5pct": float((share_better <= 0.05).mean()),
        "share_in_top_1pct": float((share_better <= 0.01).mean()),
        "top_ranks": sorted(float(s) for s in share_better),
        "confirmed_cells": four,
        "confirmed_four_run_mean": float(np.mean([(table[row[a]] + fresh(a)) / 2 for a in four])),
        "confirmed_new_mean": float(np.mean([fresh(a, CONFIRM_SEEDS) for a in four])),
        "confirmed_ranks": sorted(share_better_than(a, fresh(a, CONFIRM_SEEDS)) for a in four),
    }
    confirmed = np.array(summary["confirmed_ranks"])
    summary["confirmed_rank_mean"], summary["confirmed_rank_interval"] = mean_interval(confirmed)
    summary["confirmed_in_top_5pct"] = float((confirmed <= 0.05).mean())
    (OUT / "rank_ceiling.json").write_text(json.dumps(summary, indent=1))
    print(f"\ncontrol ({len(control)} random cells): new two-seed mean minus table entry "
          f"{control_mean:+.4f} +- {control_half:.4f} (0 = the new runs measure like the table's)")
    print(f"table's top {args.top:.0%} ({len(top)} cells), trained again with seeds {NEW_SEEDS}:")
    print(f"  mean test accuracy: table {summary['top_table_mean']:.4f}, new runs {summary['top_new_mean']:.4f}")
    print(f"  rank of the new two-seed mean among the table's entries (share of cells better): mean "
          f"{share_better.mean():.1%} +- {summary['top_rank_interval']:.1%}, median {np.median(share_better):.1%}")
    print(f"  in the top 5%: {summary['share_in_top_5pct']:.0%} of them; in the top 1%: "
          f"{summary['share_in_top_1pct']:.0%}")
    print(f"the {len(four)} best of them by four runs, trained again with seeds {CONFIRM_SEEDS}: mean test "
          f"accuracy {summary['confirmed_four_run_mean']:.4f} over four runs, {summary['confirmed_new_mean']:.4f} "
          f"new; rank mean "
          f"{confirmed.mean():.1%} +- {summary['confirmed_rank_interval']:.1%}, median {np.median(confirmed):.1%}, "
          f"in the top 5%: {summary['confirmed_in_top_5pct']:.0%}")


def _train_all(jobs: list[tuple[str, int]], bench: Benchmark, workers: int) -> dict[tuple[str, int], dict]:
    """Train the (cell, seed) runs not yet in RUNS with the table's budget; every run, old and new."""
    done = _done(bench)
    todo = [j for j in jobs if j not in done]
    if todo:
        print(f"training {len(todo)} runs ({len(done)} already in {_runs_file(bench).name})", flush=True)
        with mp.get_context("spawn").Pool(workers, _init, (bench.meta["budget"],)) as pool, \
                open(_runs_file(bench), "a") as f:
            for k, run in enumerate(pool.imap_unordered(_train, todo), 1):
                f.write(json.dumps(run) + "\n")
                f.flush()
                if k % 20 == 0:
                    print(f"  {k}/{len(todo)}", flush=True)
    return _done(bench)


if __name__ == "__main__":
    main()
