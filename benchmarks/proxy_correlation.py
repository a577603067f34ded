"""Zero-cost proxies against the benchmark table: Spearman correlation with test accuracy.

For every cell in the table, builds the network with the table's skeleton (initialised from a
fixed seed), scores it with each proxy on one training batch, and prints |Spearman| with the
table's mean test accuracy beside the published NAS-Bench-201 CIFAR-10 values (Abdelfattah et al.
2021; over all 15,625 cells). A partial table is a uniform sample of the space, so its estimate is
unbiased, only wider.

    python benchmarks/proxy_correlation.py --table nb201_mnist14 [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import dfl_toolkit as dfl
from dfl_toolkit.nas import Benchmark, CellSpace
from dfl_toolkit.nas.analysis import spearman
from dfl_toolkit.nas.proxies import PROXIES, score

PUBLISHED = {"synflow": 0.737, "naswot": 0.731, "snip": 0.596, "grad_norm": 0.594, "params": None}
OUT = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench = Benchmark.load(args.table)
    b = bench.meta["budget"]
    data = dfl.get_dataset(b["dataset"], **b["data_options"])
    batch = next(iter(data.loaders(args.batch, seed=0)[0]))
    space = CellSpace()
    scores: dict[str, list[float]] = {name: [] for name in PROXIES}
    seconds: dict[str, float] = dict.fromkeys(PROXIES, 0.0)
    for arch in bench.archs():
        for name in PROXIES:
            torch.manual_seed(0)
            model = space.build(arch, in_channels=data.input_shape[0], num_classes=data.num_classes, **b["skeleton"])
            t0 = time.perf_counter()
            scores[name].append(score(name, model, batch))
            seconds[name] += time.perf_counter() - t0
    acc = bench.metric("test_acc").tolist()
    finite = {n: [i for i, v in enumerate(s) if v == v and abs(v) != float("inf")] for n, s in scores.items()}
    print(f"\n{len(acc)} cells of {bench.meta['unique_cells']}, batch {args.batch}")
    print(f"{'proxy':<10}{'|Spearman|':>11}{'published':>11}{'ms/cell':>9}")
    rows = {}
    for name in PROXIES:
        idx = finite[name]
        rho = spearman([scores[name][i] for i in idx], [acc[i] for i in idx])
        rows[name] = {"spearman": rho, "published": PUBLISHED[name], "ms_per_cell": 1000 * seconds[name] / len(acc)}
        pub = "-" if PUBLISHED[name] is None else f"{PUBLISHED[name]:.3f}"
        print(f"{name:<10}{abs(rho):>11.3f}{pub:>11}{rows[name]['ms_per_cell']:>9.1f}")
    print("published: NAS-Bench-201 CIFAR-10, all 15,625 cells (Abdelfattah et al. 2021; naswot = jacob_cov there)")
    OUT.mkdir(exist_ok=True)
    (OUT / "proxy_correlation.json").write_text(json.dumps({"table": args.table, "cells": len(acc), "rows": rows},
                                                           indent=1))


if __name__ == "__main__":
    main()
