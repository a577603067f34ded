"""Choose the training budget of the toolkit's benchmark table: seed noise against cost.

A table only teaches search if it ranks cells the same way from one training seed to the next,
at least among the good cells that search is about. For each candidate budget this script trains
30 fixed cells (10 best, 10 around the 90th percentile and 10 from the rest of an earlier build,
listed in ``results/budget_pilot_cells.json``) with two seeds, and prints per budget:

- seconds per training (median, with two processes on two cores, as the build runs),
- the seed-to-seed standard deviation of a cell's accuracy (mean over cells),
- the Spearman correlation between seed 0 and seed 1 over the 30 cells and over the 20 good ones
  (1 = the seeds agree on the ranking, 0 = the ranking is noise).

Accuracy is measured on the 1,000 test digits (``test``) and on those plus the training digits the
budget does not use (``test+unused``, a larger and so less noisy evaluation set).

    python benchmarks/benchmark_budget.py                 # train all budgets (about 25 min on 2 cores)
    python benchmarks/benchmark_budget.py --report-only   # print the table from results/budget_pilot.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results"
# name: (training images, epochs, batch size, SGD learning rate); all 14x14, 8 channels, cosine, wd 5e-4
BUDGETS = {
    "A_cur": (1000, 3, 32, 0.05),
    "B_bs64": (1000, 4, 64, 0.1),
    "C_2k": (2000, 2, 64, 0.1),
    "D_3k5": (3500, 1, 64, 0.1),
    "E_2k128": (2000, 3, 128, 0.2),
    "F_2k128e2": (2000, 2, 128, 0.2),
    "G_3k5e2": (3500, 2, 128, 0.2),
}
_DATA: dict[str, tuple] = {}


def _init() -> None:
    import torch

    torch.set_num_threads(1)


def _data(name: str):
    """(splits training on the budget's subset, test + unused training digits) for one budget."""
    if name not in _DATA:
        from torch.utils.data import ConcatDataset, Subset

        from dfl_toolkit.data import get_dataset
        from dfl_toolkit.data.splits import subsample

        full = get_dataset("mnist5k", image_size=14)
        labels = full.train.y.numpy()
        keep = subsample(labels, BUDGETS[name][0])
        unused = np.setdiff1d(np.arange(len(labels)), keep)
        data = dataclasses.replace(full, train=Subset(full.train, keep.tolist()))
        _DATA[name] = (data, ConcatDataset([full.test, Subset(full.train, unused.tolist())]))
    return _DATA[name]


def _train(job: tuple[str, str, int]) -> dict:
    from torch.utils.data import DataLoader

    from dfl_toolkit.nas.spaces.cell import CellSpace
    from dfl_toolkit.runtime import seed_everything
    from dfl_toolkit.train import evaluate, fit

    name, arch, seed = job
    _, epochs, batch_size, lr = BUDGETS[name]
    data, bigger = _data(name)
    space = CellSpace()
    t0 = time.perf_counter()
    seed_everything(seed)
    model = space.build(space.from_str(arch), in_channels=1, num_classes=10, channels=8, cells_per_stage=1)
    train_dl, val_dl, test_dl = data.loaders(batch_size, seed=seed)
    history = fit(model, train_dl, val_dl, epochs=epochs, lr=lr, optimizer="sgd", weight_decay=5e-4,
                  scheduler="cosine", seed=seed, device="cpu", progress=False)
    seconds = time.perf_counter() - t0
    ok = not history.diverged
    return {"budget": name, "arch": arch, "seed": seed, "time": seconds,
            "val": history.last["val_acc"] if ok else 0.0,
            "test": evaluate(model, test_dl, device="cpu")["acc"] if ok else 0.0,
            "big": evaluate(model, DataLoader(bigger, 256), device="cpu")["acc"] if ok else 0.0}


def report(rows: list[dict], groups: dict[str, str]) -> None:
    from scipy.stats import spearmanr

    by = defaultdict(lambda: defaultdict(dict))
    seconds = defaultdict(list)
    for r in rows:
        by[r["budget"]][r["arch"]][r["seed"]] = r
        seconds[r["budget"]].append(r["time"])
    print(f"{'budget':10s} {'n, ep, bs, lr':>20s} {'s/run':>6s} | {'eval set':12s} {'seed sd':>8s} "
          f"{'rho all 30':>10s} {'rho good 20':>11s}")
    for name, cells in by.items():
        pairs = {a: v for a, v in cells.items() if len(v) == 2}
        for key, label in (("test", "test"), ("big", "test+unused")):
            s0 = np.array([v[0][key] for v in pairs.values()])
            s1 = np.array([v[1][key] for v in pairs.values()])
            good = np.array([groups[a] != "rand" for a in pairs])
            sd = np.abs(s0 - s1) / np.sqrt(2)  # sample std of two values
            head = f"{name:10s} {str(BUDGETS[name]):>20s} {np.median(seconds[name]):6.2f}"
            head = head if key == "test" else " " * len(head)
            print(f"{head} | {label:12s} {sd.mean():8.4f} {spearmanr(s0, s1)[0]:10.2f} "
                  f"{spearmanr(s0[good], s1[good])[0]:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", nargs="*", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    groups = json.loads((OUT / "budget_pilot_cells.json").read_text())["cells"]
    results = OUT / "budget_pilot.json"
    if not args.report_only:
        jobs = [(name, arch, seed) for name in args.budgets for arch in groups for seed in (0, 1)]
        with mp.get_context("spawn").Pool(args.workers, _init) as pool:
            rows = list(pool.imap_unordered(_train, jobs))
        results.write_text(json.dumps(rows))
    report(json.loads(results.read_text()), groups)


if __name__ == "__main__":
    main()
