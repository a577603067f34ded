"""Cross-check against NASLib: the toolkit's synflow, #params and FLOPs of NAS-Bench-201's real networks
next to NASLib's published zero-cost values for the same 491 cells on CIFAR-10, CIFAR-100 and ImageNet16-120.

For each cell, builds ``CellSpace().build(arch, num_classes=...)`` (NB201's skeleton: C=16, 5 cells per stage,
3 stages) from one fixed seed and computes, single-threaded:

- synflow (data-free: an all-ones input of the dataset's size, 32x32 or 16x16, in float64). NASLib stores the
  natural log of synflow, computed with batch norm switched off; the toolkit keeps batch norm in eval mode,
  which at initialisation is the identity up to 1/sqrt(1 + 1e-5) per layer;
- #params (NASLib: millions of parameters);
- FLOPs (toolkit: ``torch.utils.flop_counter``, a multiply-add = 2; NASLib: millions, a multiply-add = 1).

Reports (a) the Spearman agreement of each with NASLib's value, (b) the exact values after unit conversion, and
what explains the FLOPs gap (a least-squares fit of the gap on each cell's operation counts), (c) the Spearman of
each with accuracy, next to NASLib's values': NASLib's one-seed validation accuracy and NATS-Bench's 200-epoch test
accuracy (mean over seeds). A second initialisation seed on CIFAR-10 measures how much synflow's ranking moves
with the random weights alone (the ceiling for any agreement).

Sources: NASLib's synflow, the validation and the test accuracy come from the package's shipped tables
(``Benchmark.load("nb201_cifar10")``, ...). NASLib's own #params and FLOPs are not shipped (the tables hold the
toolkit's counts), so (a) and (b) for them read NASLib's JSON from ``--data`` and are left out without it.

    python benchmarks/naslib_crosscheck.py [--data ../shared/data/nas-bench-201] [--datasets cifar10 ...]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dfl_toolkit
from dfl_toolkit.nas import Benchmark, CellSpace
from dfl_toolkit.nas.analysis import spearman
from dfl_toolkit.nas.evaluators.cost import count_flops, count_params
from dfl_toolkit.nas.proxies import synflow
from dfl_toolkit.nas.spaces.cell import EDGES, CellArch

REPO = Path(__file__).resolve().parents[1]
TABLES = Path(dfl_toolkit.__file__).parent / "nas" / "benchmark" / "tables"
OUT = Path(__file__).parent / "results"
RAW = "naslib_zero_cost_491cells.json"  # NASLib's naslib/data/zc_nasbench201.json (branch benchmarks)
TESTS = "nats-bench_test_200ep_3datasets.csv.gz"  # used only when the shipped tables are missing
# NASLib's cell encoding (naslib/search_spaces/nasbench201/conversions.py): op indices over these edges
# (1-based nodes, 1 = input) with these operations.
NASLIB_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
# dataset: (shipped table, classes, input side)
DATASETS = {"cifar10": ("nb201_cifar10", 10, 32), "cifar100": ("nb201_cifar100", 100, 32),
            "ImageNet16-120": ("nb201_imagenet16", 120, 16)}
QUOTED = {"synflow": 0.78, "params": 0.72}  # NASLib's values on these CIFAR-10 cells, as the shared data quotes them
SKELETON = {"channels": 16, "cells_per_stage": 5, "stages": 3}
SIZES = ("synflow", "params", "flops")
Cells = dict[CellArch, dict[str, float]]


def to_arch(key: str) -> CellArch:
    """NASLib's key, e.g. ``"(4, 3, 3, 3, 2, 3)"``, as the toolkit's arch (edges in ``CellSpace`` order)."""
    ops = [NASLIB_OPS[int(i)] for i in key.strip("()").split(",")]
    return tuple(ops[NASLIB_EDGES.index((i + 1, j + 1))] for j, i in EDGES)  # type: ignore[return-value]


def skipped_edges(arch: CellArch) -> list[str]:
    """Operations the toolkit's cell never runs: those reading a node that no live edge reaches
    (NB201's cell runs them on zeros)."""
    live, skipped = {0}, []
    for (j, i), op in zip(EDGES, arch, strict=True):
        if op == "none":
            continue
        if i in live:
            live.add(j)
        else:
            skipped.append(op)
    return skipped


def per_edge_sizes(side: int) -> tuple[int, int, int]:
    """One edge in each of the 15 cells: output elements, and multiply-adds of a 3x3 and of a 1x1 convolution."""
    elements = macs3 = macs1 = 0
    for s in range(SKELETON["stages"]):
        c, hw = SKELETON["channels"] * 2 ** s, (side // 2 ** s) ** 2
        elements += SKELETON["cells_per_stage"] * c * hw
        macs3 += SKELETON["cells_per_stage"] * c * c * 9 * hw
        macs1 += SKELETON["cells_per_stage"] * c * c * hw
    return elements, macs3, macs1


def flops_gap(archs: list[CellArch], gap: np.ndarray, side: int) -> dict[str, Any]:
    """Fit NASLib's FLOPs minus the toolkit's multiply-adds on operation counts; each coefficient in natural units
    (per output element, or per convolution's multiply-adds), and the worst residual."""
    rows = []
    for arch in archs:
        skipped = skipped_edges(arch)
        rows.append([skipped.count("nor_conv_3x3"), skipped.count("nor_conv_1x1"),
                     sum(op.startswith("nor_conv") for op in arch), arch.count("avg_pool_3x3"), 1])
    x = np.array(rows, dtype=float)
    coef, *_ = np.linalg.lstsq(x, gap, rcond=None)
    elements, macs3, macs1 = per_edge_sizes(side)
    units = {"skipped_conv3x3_in_multiply_adds": macs3, "skipped_conv1x1_in_multiply_adds": macs1,
             "ops_per_element_of_relu_conv_bn": elements, "ops_per_element_of_avg_pool_3x3": elements}
    fit: dict[str, Any] = {name: float(coef[i] / unit) if x[:, i].any() else None  # None: no such cell
                           for i, (name, unit) in enumerate(units.items())}
    return {**fit, "constant": float(coef[4]), "max_abs_residual": float(np.abs(x @ coef - gap).max()),
            "cells_with_skipped_convs": int((x[:, 0] + x[:, 1] > 0).sum())}


def measure(archs: list[CellArch], classes: int, side: int, seed: int, costs: bool = True) -> dict[str, list[float]]:
    """The toolkit's synflow (and #params, FLOPs) of each cell's network, each initialised from ``seed``."""
    space, batch = CellSpace(), (torch.ones(1, 3, side, side), torch.zeros(1, dtype=torch.long))
    out: dict[str, list[float]] = {name: [] for name in SIZES}
    for arch in archs:
        torch.manual_seed(seed)
        model = space.build(arch, num_classes=classes, **SKELETON)
        if costs:
            out["params"].append(count_params(model))
            out["flops"].append(count_flops(model, (3, side, side)))
        out["synflow"].append(synflow(model, batch))
    return out


def crosscheck(cells: Cells, ours: dict[str, list[float]], side: int) -> dict[str, Any]:
    """All comparisons for one dataset; ``cells`` NASLib's values, ``ours`` the toolkit's in the same order."""
    archs = list(cells)
    theirs = {name: [c[name] for c in cells.values()] for name in next(iter(cells.values()))}
    live = [i for i, v in enumerate(ours["synflow"]) if v > 0]
    ln_diff = [abs(math.log(ours["synflow"][i]) - theirs["synflow"][i]) for i in live]
    have = [name for name in SIZES if name in theirs]  # NASLib's params and flops need --data
    out: dict[str, Any] = {
        "cells": len(archs),
        "agreement_spearman": {name: spearman(ours[name], theirs[name]) for name in have},
        "synflow_ln": {"median_abs_diff": statistics.median(ln_diff), "max_abs_diff": max(ln_diff),
                       "zero_synflow_cells": {"toolkit": len(archs) - len(live),
                                              "naslib": sum(v == 0 for v in theirs["synflow"])}}}
    if "params" in theirs:
        params_m = np.array(ours["params"]) / 1e6
        out["params"] = {"max_abs_diff": int(round(float(np.abs(params_m - theirs["params"]).max()) * 1e6)),
                         "equal_at_naslib_rounding": int((np.round(params_m, 6) == np.array(theirs["params"])).sum())}
    if "flops" in theirs:
        macs = np.array(ours["flops"]) / 2
        ratio = macs / (np.array(theirs["flops"]) * 1e6)
        spread = {"min": float(ratio.min()), "median": float(np.median(ratio)), "max": float(ratio.max())}
        out["flops"] = {"toolkit_multiply_adds_over_naslib": spread,
                        "max_relative_error": float(np.abs(ratio - 1).max()),
                        "gap_explained": flops_gap(archs, np.array(theirs["flops"]) * 1e6 - macs, side)}
    out["accuracy_spearman"] = {
        kind: {who: {name: spearman(values[name], theirs[kind]) for name in SIZES if name in values}
               for who, values in (("toolkit", ours), ("naslib", theirs))}
        for kind in ("val_accuracy", "test_accuracy") if kind in theirs}
    return out


def from_shipped(dataset: str) -> Cells | None:
    """NASLib's synflow with NASLib's validation and NATS-Bench's test accuracy, from the package's table."""
    name = DATASETS[dataset][0]
    if not (TABLES / f"{name}.json.gz").exists():  # not shipped in this checkout
        return None
    bench = Benchmark.load(name)
    syn, val, test = (bench.metric(m) for m in ("synflow", "val_acc", "test_acc"))
    archs = bench.archs()
    return {archs[i]: {"synflow": float(syn[i]), "val_accuracy": float(val[i]), "test_accuracy": float(test[i])}
            for i in np.flatnonzero(~np.isnan(syn))}


def load(dataset: str, data: Path) -> tuple[Cells, list[str]]:
    """NASLib's values for ``dataset``, cells sorted, and where each came from."""
    raw_path = data / RAW
    raw = json.loads(raw_path.read_text())["nasbench201"][dataset] if raw_path.exists() else None
    cells, sources = from_shipped(dataset), [f"Benchmark.load({DATASETS[dataset][0]!r})"]
    if cells is None:
        if raw is None:
            raise SystemExit(f"neither the shipped table {DATASETS[dataset][0]} nor {raw_path} is here; pass --data")
        cells = {to_arch(k): {n: v[n] for n in ("synflow", "val_accuracy", "params", "flops")} for k, v in raw.items()}
        sources = [f"{RAW} (--data, sha256 {hashlib.sha256(raw_path.read_bytes()).hexdigest()[:12]})"]
        if (data / TESTS).exists():
            with gzip.open(data / TESTS, "rt") as f:
                test = {r["arch_str"]: float(r[f"{dataset}_test_200ep_mean"]) for r in csv.DictReader(f)}
            space = CellSpace()
            for arch, c in cells.items():
                c["test_accuracy"] = test[space.to_str(arch)]
            sources.append(f"{TESTS} (--data)")
    elif raw is not None:
        if {to_arch(k) for k in raw} != set(cells):
            raise SystemExit(f"{RAW} and the shipped table {DATASETS[dataset][0]} hold different cells")
        for k, v in raw.items():
            cells[to_arch(k)].update(params=v["params"], flops=v["flops"])
        sources.append(f"{RAW} (--data, sha256 {hashlib.sha256(raw_path.read_bytes()).hexdigest()[:12]}): "
                       "NASLib's params and flops")
    return dict(sorted(cells.items())), sources


def rounded(obj: Any) -> Any:
    """Floats to 4 significant decimals for the JSON file."""
    if isinstance(obj, float):
        return float(f"{obj:.4g}") if abs(obj) < 1 else round(obj, 4)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return obj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "nas-bench-201",
                        help=f"folder with NASLib's {RAW} (its params and flops)")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-seed", type=int, default=1,
                        help="second initialisation for CIFAR-10's synflow (how far the weights alone move it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    reference = None
    for dataset in args.datasets:
        cells, sources = load(dataset, args.data)
        _, classes, side = DATASETS[dataset]
        t0 = time.perf_counter()
        ours = measure(list(cells), classes, side, args.seed)
        seconds = time.perf_counter() - t0
        r = results[dataset] = {"sources": sources, "classes": classes, "input": [3, side, side],
                                "seconds": round(seconds, 1), **crosscheck(cells, ours, side)}
        print(f"{dataset}: {r['cells']} cells in {seconds:.0f} s; Spearman with NASLib "
              + ", ".join(f"{k} {v:.4f}" for k, v in r["agreement_spearman"].items()))
        for kind, rho in r["accuracy_spearman"].items():
            print(f"  with {kind} (toolkit / NASLib): " + ", ".join(
                f"{k} {v:.3f}/{rho['naslib'][k]:.3f}" if k in rho["naslib"] else f"{k} {v:.3f}/-"
                for k, v in rho["toolkit"].items()))
        if dataset == "cifar10" and args.reference_seed != args.seed:
            again = measure(list(cells), classes, side, args.reference_seed, costs=False)["synflow"]
            reference = {"seed": args.reference_seed, "synflow_spearman_with_seed": spearman(again, ours["synflow"]),
                         "synflow_spearman_with_naslib": spearman(again, [c["synflow"] for c in cells.values()])}
            print(f"  init seed {args.reference_seed}: synflow Spearman with seed {args.seed} "
                  f"{reference['synflow_spearman_with_seed']:.4f}, with NASLib "
                  f"{reference['synflow_spearman_with_naslib']:.4f}")
    OUT.mkdir(exist_ok=True)
    report = {"naslib": "automl/NASLib, branch benchmarks, naslib/data/zc_nasbench201.json (Apache-2.0)",
              "config": {"seed": args.seed, "torch": torch.__version__, "threads": 1, "skeleton": SKELETON,
                         "quoted_accuracy_spearman_cifar10": QUOTED},
              "datasets": results, "init_seed_reference": reference,
              "seconds_total": round(time.perf_counter() - t_start, 1)}
    (OUT / "naslib_crosscheck.json").write_text(json.dumps(rounded(report), indent=1) + "\n")
    print(f"total {report['seconds_total']:.0f} s; wrote {OUT / 'naslib_crosscheck.json'}")


if __name__ == "__main__":
    main()
