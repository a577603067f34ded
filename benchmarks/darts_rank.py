"""DARTS, GDAS and DARTS- on the benchmark's task, and where their derived cells rank in the table.

Runs each gradient-based mode on the same data the benchmark table was trained on, logs alpha per
epoch (to show skip-connection collapse), derives a cell, and looks it up in the table (or, if a
partial table does not hold it yet, trains it with the table's budget for the table's seeds). The
rank is the fraction of table cells with a higher mean test accuracy (top 5% = 0.05).

    python benchmarks/darts_rank.py --table nb201_mnist14 [--epochs 50] [--modes darts gdas darts-]
    python benchmarks/darts_rank.py --table nb201_mnist14 --rerank   # same searches, newer table

``--rerank`` keeps the derived cells of the last report (the searches do not depend on the table) and
looks them up again, e.g. once the table is complete. ``--select perturbation`` reads the cells by
DARTS-PT instead of the largest alpha (the searches are checkpointed, so on settings already run only the
selection runs). ``--summary`` gathers every report in results/ (one per seed, warm-up and selection) into
one table: rank per method, mean and range over seeds.

    python benchmarks/darts_rank.py --table nb201_mnist14 --modes darts darts- --select perturbation
    python benchmarks/darts_rank.py --summary [--reports benchmarks/results/darts_rank_earlier]

``--published`` trains nothing: it looks the cells recorded in every report (results/ and
results/darts_rank_earlier/), the all-skip cell of DARTS' collapse and a few reference cells up in the published
NAS-Bench-201 tables (CIFAR-10, CIFAR-100, ImageNet16-120) and writes results/darts_rank_published.json.

    python benchmarks/darts_rank.py --published
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

import dfl_toolkit as dfl
from dfl_toolkit.nas import Benchmark, CellSpace, TrainBudget, TrainEvaluator
from dfl_toolkit.nas.strategies.darts import darts_search

OUT = Path(__file__).parent / "results"
EARLIER = OUT / "darts_rank_earlier"  # the first warm-up supernets' reports
PUBLISHED = {"cifar10": "nb201_cifar10", "cifar100": "nb201_cifar100", "imagenet16": "nb201_imagenet16"}
REFERENCES = {  # cells to compare the derived ones with
    "all skip_connect (DARTS collapse)": "|skip_connect~0|+|skip_connect~0|skip_connect~1|"
                                         "+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "ResNet-like cell (two 3x3 convs, a skip)": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|"
                                                "+|skip_connect~0|none~1|skip_connect~2|",
    "all nor_conv_3x3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                        "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
}


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
    parser.add_argument("--table")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--alpha-lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=0, help="epochs that train only the weights (0: plain)")
    parser.add_argument("--modes", nargs="+", default=["darts", "gdas", "darts-"])
    parser.add_argument("--select", default="alpha", choices=["alpha", "perturbation"],
                        help="how the cell is read off the supernet (perturbation: DARTS-PT; not for gdas). The "
                             "searches are checkpointed, so a second --select on the same settings only reselects")
    parser.add_argument("--tune-epochs", type=int, default=None,
                        help="with --select perturbation: epochs of tuning after each fixed edge "
                             "(default epochs // 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rerank", action="store_true", help="look up the last report's cells in --table again")
    parser.add_argument("--summary", action="store_true", help="one table over every report in --reports")
    parser.add_argument("--published", action="store_true",
                        help="look every recorded derived cell up in the published NAS-Bench-201 tables (no training)")
    parser.add_argument("--reports", type=Path, default=OUT,
                        help="folder of the reports --summary reads (default results/; the earlier warm-up "
                             "supernets' reports are in results/darts_rank_earlier/)")
    args = parser.parse_args()
    if args.summary:
        summary(args.reports)
        return
    if args.published:
        published()
        return
    if args.table is None:
        parser.error("--table is required (except with --summary)")
    report_path = OUT / (f"darts_rank_seed{args.seed}{f'_warmup{args.warmup}' if args.warmup else ''}"
                         f"{'_pt' if args.select == 'perturbation' else ''}"
                         f"{f'_tune{args.tune_epochs}' if args.tune_epochs is not None else ''}.json")
    if args.rerank:
        rerank(args.table, report_path)
        return
    if args.select == "perturbation" and "gdas" in args.modes:
        parser.error("--select perturbation does not apply to gdas (it never trains the mixture): "
                     "pass --modes darts darts-")
    torch.set_num_threads(1)
    bench = Benchmark.load(args.table)
    b = bench.meta["budget"]
    budget = TrainBudget(**b)
    data = dfl.get_dataset(b["dataset"], **b["data_options"])
    space = CellSpace()
    report = {"table": args.table, "table_cells": len(bench), "epochs": args.epochs, "alpha_lr": args.alpha_lr,
              "warmup": args.warmup, "select": args.select, "tune_epochs": args.tune_epochs,
              "search_data": b["data_options"],
              "best_in_table": float(bench.metric("test_acc").max()), "runs": []}
    print(f"table: {len(bench)} cells, best mean test acc {report['best_in_table']:.4f}")
    print(f"{'mode':<8}{'derived cell':<100}{'test acc':>9}{'rank':>8}{'skip share':>12}{'search s':>10}")
    for mode in args.modes:
        res = darts_search(data, mode=mode, epochs=args.epochs, channels=b["skeleton"]["channels"],
                           cells_per_stage=b["skeleton"]["cells_per_stage"], batch_size=32,
                           alpha_lr=args.alpha_lr, warmup=args.warmup, select=args.select,
                           tune_epochs=args.tune_epochs, seed=args.seed,
                           progress=False,
                           checkpoint=OUT / f"darts_{mode}_e{args.epochs}_w{args.warmup}_lr{args.alpha_lr}"
                                            f"_seed{args.seed}.pt")
        acc, rank, from_table = rank_of(bench, res.arch, budget)
        run = {"mode": mode, "arch": space.to_str(res.arch), "test_acc": acc, "rank": rank, "from_table": from_table,
               "skip_share": res.skip_share(), "seconds": res.seconds, "alphas": res.alphas,
               "alpha_arch": space.to_str(res.alpha_arch), "selection": res.selection,
               "selection_seconds": res.selection_seconds}
        if args.select != "alpha":  # the same supernet read the usual way, for comparison
            run["alpha_test_acc"], run["alpha_rank"], _ = rank_of(bench, res.alpha_arch, budget)
        report["runs"].append(run)
        print_run(run)
    OUT.mkdir(exist_ok=True)
    if report_path.exists():  # keep the runs of other modes made earlier with the same settings
        old = json.loads(report_path.read_text())
        old.setdefault("select", "alpha")  # reports from before --select and --tune-epochs
        old.setdefault("tune_epochs", None)
        same = all(old.get(k) == report[k]
                   for k in ("epochs", "alpha_lr", "warmup", "select", "tune_epochs", "search_data"))
        if same:
            report["runs"] = [r for r in old["runs"] if r["mode"] not in args.modes] + report["runs"]
        else:
            print(f"note: {report_path.name} held runs with other settings; they are replaced")
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
        if "alpha_rank" in run:
            run["alpha_test_acc"], run["alpha_rank"], _ = rank_of(bench, space.from_str(run["alpha_arch"]), budget)
        print_run(run)
    path.write_text(json.dumps(report, indent=1))


def gather(folder: Path) -> dict[tuple, dict]:
    """Every derived cell in the reports of ``folder``: (epochs, alpha lr, mode, warm-up, selection, seed) -> run.
    A perturbation report also gives the cell the same supernet's largest alphas read (selection "alpha")."""
    found: dict[tuple, dict] = {}
    for path in sorted(folder.glob("darts_rank_seed*.json")):
        report = json.loads(path.read_text())
        seed = int(path.stem.split("_")[2].removeprefix("seed"))
        select = report.get("select", "alpha")
        if report.get("tune_epochs") is not None:
            select += f" t{report['tune_epochs']}"
        setting = (report["epochs"], report["alpha_lr"])
        for run in report["runs"]:
            found[(*setting, run["mode"], report["warmup"], select, seed)] = run
            if "alpha_rank" in run:  # a perturbation report also says where the alpha-read cell ranks
                alpha_run = {**run, "arch": run["alpha_arch"], "test_acc": run["alpha_test_acc"],
                             "rank": run["alpha_rank"],
                             "seconds": run["seconds"] - run.get("selection_seconds", float("nan"))}
                found.setdefault((*setting, run["mode"], report["warmup"], "alpha", seed), alpha_run)
    return found


def summary(folder: Path) -> None:
    """Rank of the derived cell per search setting over all seeds run so far, from the reports in ``folder``."""
    found = gather(folder)
    groups: dict[tuple, list[dict]] = {}
    for key, run in sorted(found.items()):
        groups.setdefault(key[:-1], []).append(run)
    if not groups:
        raise SystemExit(f"no darts_rank reports in {folder}: run the searches first")
    print(f"{'epochs':>6}{'alpha lr':>9} {'mode':<8}{'warm-up':>8}{'select':>16}{'seeds':>6}{'mean share better':>19}"
          f"{'best':>8}{'worst':>8}{'alpha skip share':>17}{'mean s':>8}")
    for (epochs, alpha_lr, mode, warmup, select), runs in sorted(groups.items()):
        ranks = [r["rank"] for r in runs]
        print(f"{epochs:>6}{alpha_lr:>9.0e} {mode:<8}{warmup:>8}{select:>16}{len(runs):>6}"
              f"{statistics.fmean(ranks):>19.1%}{min(ranks):>8.1%}{max(ranks):>8.1%}"
              f"{statistics.fmean(r['skip_share'][-1] for r in runs):>17.2f}"
              f"{statistics.fmean(r['seconds'] for r in runs):>8.0f}")


def published() -> None:
    """Where the recorded derived cells, the all-skip cell and reference cells rank among NAS-Bench-201's 15,625
    cells on CIFAR-10, CIFAR-100 and ImageNet16-120 (published 200-epoch test accuracy, mean over seeds).

    "Share better" is the share of the 15,625 cells with a higher test accuracy (top 5% = 5%), as for the MNIST
    table. Also: how well the toolkit's MNIST-14 table ranks the cells as CIFAR does (Spearman over every cell)."""
    from scipy.stats import spearmanr

    space = CellSpace()
    tables = {k: Benchmark.load(name) for k, name in PUBLISHED.items()}
    tests = {k: b.metric("test_acc") for k, b in tables.items()}
    mnist = Benchmark.load("nb201_mnist14")
    mnist_full = mnist.full_space("test_acc")

    def look_up(arch: str) -> dict[str, dict[str, float]]:
        out = {}
        for k, b in tables.items():
            acc = b.query(arch)["test_acc"]
            out[k] = {"test_acc": acc, "share_better": float((tests[k] > acc).mean())}
        return out

    report: dict = {"tables": PUBLISHED, "best": {k: float(v.max()) for k, v in tests.items()},
                    "median": {k: float(np.median(v)) for k, v in tests.items()},
                    "mnist14_spearman": {k: float(spearmanr(mnist_full, v).statistic) for k, v in tests.items()},
                    "references": {}, "groups": []}
    mnist_best = mnist.rows[int(np.argmax(mnist.metric("test_acc")))]["arch"]
    for name, arch in {**REFERENCES, "best cell of the MNIST-14 table": mnist_best}.items():
        mnist_row = mnist.query(arch)["test_acc"]
        report["references"][name] = {"arch": arch, "mnist14": {"test_acc": mnist_row, "share_better": float(
            (mnist.metric("test_acc") > mnist_row).mean())}, **look_up(arch)}
    seen: list[tuple] = []  # (setting, cells) of the groups listed so far
    for folder, supernets in ((OUT, "current"), (EARLIER, "first warm-up supernets")):
        groups: dict[tuple, list[dict]] = {}
        for (epochs, alpha_lr, mode, warmup, select, seed), run in sorted(gather(folder).items()):
            cell = {"seed": seed, "arch": run["arch"], "mnist14": {"test_acc": run["test_acc"],
                                                                    "share_better": run["rank"]},
                    **look_up(space.to_str(space.from_str(run["arch"])))}
            groups.setdefault((epochs, alpha_lr, mode, warmup, select), []).append(cell)
        for (epochs, alpha_lr, mode, warmup, select), cells in groups.items():
            same = ((epochs, alpha_lr, mode, warmup, select), [(c["seed"], c["arch"]) for c in cells])
            if same in seen:  # the same runs, kept in both folders
                continue
            seen.append(same)
            report["groups"].append({"mode": mode, "warmup": warmup, "select": select, "epochs": epochs,
                                     "alpha_lr": alpha_lr, "supernets": supernets, "cells": cells})
    print("Spearman of the MNIST-14 table's test accuracy with the published one, all 15,625 cells: "
          + ", ".join(f"{k} {v:.3f}" for k, v in report["mnist14_spearman"].items()))
    print(f"\n{'cell':<62}" + "".join(f"{k:>20}" for k in ("mnist14", *PUBLISHED)))
    print(f"{'':<62}" + "".join(f"{'acc  share better':>20}" for _ in range(4)))
    for name, ref in report["references"].items():
        print(f"{name:<62}" + "".join(f"{ref[k]['test_acc']:>11.2f} {ref[k]['share_better']:>7.1%}"
                                      for k in ("mnist14", *PUBLISHED)))
    print(f"\nderived cells, mean over seeds (share better: mean [best, worst])\n{'setting':<54}{'seeds':>6}"
          + "".join(f"{k:>26}" for k in ("mnist14", *PUBLISHED)))
    for g in report["groups"]:
        g["mean"] = {}
        for k in ("mnist14", *PUBLISHED):
            shares = [c[k]["share_better"] for c in g["cells"]]
            g["mean"][k] = {"test_acc": statistics.fmean(c[k]["test_acc"] for c in g["cells"]),
                            "share_better": statistics.fmean(shares), "best": min(shares), "worst": max(shares)}
        label = f"{g['mode']} warm-up {g['warmup']} {g['select']} ({g['supernets']})"
        print(f"{label:<54}{len(g['cells']):>6}" + "".join(
            f"{g['mean'][k]['share_better']:>10.1%} [{g['mean'][k]['best']:>5.1%},{g['mean'][k]['worst']:>6.1%}]"
            for k in ("mnist14", *PUBLISHED)))
    cells = [c for g in report["groups"] for c in g["cells"]]
    report["all_derived"] = {
        "cells": len(cells), "most_skip_connect_edges": max(c["arch"].count("skip_connect") for c in cells),
        "in_top5": {k: sum(c[k]["share_better"] <= 0.05 for c in cells) for k in ("mnist14", *PUBLISHED)},
        "spearman_with_mnist14_share": {k: float(spearmanr([c["mnist14"]["share_better"] for c in cells],
                                                           [c[k]["share_better"] for c in cells]).statistic)
                                        for k in PUBLISHED}}
    print(f"\nall {len(cells)} derived cells: in the top 5% " + ", ".join(
        f"{k} {n}" for k, n in report["all_derived"]["in_top5"].items()) + "; Spearman of their MNIST-14 share "
          "better with the published one: " + ", ".join(
        f"{k} {r:.2f}" for k, r in report["all_derived"]["spearman_with_mnist14_share"].items()))
    (OUT / "darts_rank_published.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
