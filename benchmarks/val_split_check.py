"""Does a larger validation split give searches a better signal? A check on a (partial) build.

A search on the table picks cells by one training run's validation accuracy. This script compares that
signal for two validation splits on the cells a ``--unused-to-val`` build (2,000 validation images) holds,
against the shipped table (500 validation images). The yardstick is the test accuracy of an *independent*
training run (the table's other seed), so that no signal is scored against its own run's noise:

- new val (2,000 images, build seed 0) against the table's test accuracy, seed 1;
- table val (500 images) of seed 0 against the table's test, seed 1 (and seed 1 against seed 0);
- new test (1,000 images, seed 0) against the table's test, seed 1: the test split's own agreement.

It also prints how closely the build's seed-0 runs repeat the table's seed-0 runs (same seed, today's code).
Differences get a 95% bootstrap interval over cells.

    python benchmarks/val_split_check.py --build data/nb201_mnist14_val2k --table data/nb201_mnist14.json.gz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dfl_toolkit.nas import Benchmark
from dfl_toolkit.nas.analysis import spearman
from dfl_toolkit.nas.benchmark.build import RESULTS, read_results

OUT = Path(__file__).parent / "results"


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
    args = parser.parse_args()

    config = json.loads((Path(args.build) / "config.json").read_text())
    if not config["budget"]["data_options"].get("unused_to_val"):
        raise SystemExit(f"{args.build} was not built with --unused-to-val")
    table = {r["arch"]: r for r in Benchmark.load(args.table).rows}
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
    OUT.mkdir(exist_ok=True)
    (OUT / "val_split_check.json").write_text(json.dumps({"build": args.build, "table": args.table, **result},
                                                         indent=1))


if __name__ == "__main__":
    main()
