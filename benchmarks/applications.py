"""Detection, segmentation and decoder search on MNIST scenes, against issue 26's targets (full mode, CPU):
detection mAP@0.5 >= 0.90 and segmentation mIoU >= 0.80 on the test scenes, several seeds each; then
evolution against random search over U-Net decoders (``DecoderSpace``), and the best decoder found retrained
with the full recipe beside the hand-designed U-Net.

    .venv/bin/python benchmarks/applications.py detection --seeds 3       # ~100 s a seed (2 cores)
    .venv/bin/python benchmarks/applications.py segmentation --seeds 3    # U-Net and FCN, ~1.5 min a run
    .venv/bin/python benchmarks/applications.py search --seeds 3          # two trials at a time, ~40 min
    .venv/bin/python benchmarks/applications.py retrain --seeds 3         # the found decoder, full recipe
    .venv/bin/python benchmarks/applications.py segmentation --epochs 10 --models unet   # a longer recipe

Each part writes its own section of benchmarks/results/applications.json (the others are kept). Searches
checkpoint under ``--work`` and resume when rerun. Models train with ``dfl.fit`` on the recipe of notebook 14
(:data:`RECIPES`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import dfl_toolkit as dfl
from dfl_toolkit.applications import detection as det
from dfl_toolkit.applications import segmentation as seg
from dfl_toolkit.nas.analysis import mean_interval

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "applications.json"
RECIPES = {  # what notebook 14 trains in full mode
    "centernet": {"epochs": 12, "lr": 3e-3, "batch_size": 32},
    "unet": {"epochs": 4, "lr": 3e-3, "batch_size": 32},
    "fcn": {"epochs": 4, "lr": 3e-3, "batch_size": 32},
}
SEARCH = {"train_scenes": 1000, "epochs": 3, "trials": 12, "population_size": 4, "sample_size": 2,
          "widths": (8, 16, 32), "kernels": (1, 3)}  # notebook 14's space and proxy, twice its trials


def train(model: torch.nn.Module, data: dfl.DatasetSplits, recipe: dict, seed: int, **fit_options) -> float:
    t0 = time.perf_counter()
    dfl.fit(model, data.train, data.val, epochs=recipe["epochs"], lr=recipe["lr"], batch_size=recipe["batch_size"],
            scheduler="cosine", seed=seed, progress=False, device="cpu", **fit_options)
    return round(time.perf_counter() - t0, 1)


def run_detection(seeds: int) -> list[dict]:
    data = dfl.get_dataset("mnist_scenes", task="detection")
    rows = []
    for seed in range(seeds):
        dfl.seed_everything(seed)
        model = det.CenterNet(num_classes=len(data.classes))
        train_s = train(model, data, RECIPES["centernet"], seed, loss_fn=det.CenterNetLoss())
        scores = det.evaluate_detector(model, data.test)
        rows.append({"model": "centernet", "seed": seed, "train_s": train_s,
                     "params": dfl.nas.count_params(model)} | {k: round(v, 4) for k, v in scores.items()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_segmenter(kind: str, data: dfl.DatasetSplits, seed: int, decoder: tuple | None = None,
                  epochs: int | None = None) -> dict:
    dfl.seed_everything(seed)
    c = len(data.classes)
    model = seg.FCN(num_classes=c) if kind == "fcn" else seg.UNet(num_classes=c, decoder=decoder or seg.UNET_DECODER)
    recipe = RECIPES["fcn" if kind == "fcn" else "unet"]
    train_s = train(model, data, recipe | ({"epochs": epochs} if epochs else {}), seed)
    scores = seg.evaluate_segmenter(model, data.test, data.classes)
    return {"model": kind, "seed": seed, "epochs": epochs or recipe["epochs"], "train_s": train_s,
            "params": dfl.nas.count_params(model),
            "flops": dfl.nas.count_flops(model, data.input_shape), "test_miou": round(scores["miou"], 4),
            "worst_class": min(scores["per_class"].items(), key=lambda kv: kv[1])}


def run_segmentation(seeds: int, epochs: int | None, models: list[str]) -> list[dict]:
    data = dfl.get_dataset("mnist_scenes", task="segmentation")
    rows = []
    for kind in models:
        for seed in range(seeds):
            rows.append(run_segmenter(kind, data, seed, epochs=epochs))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def search_data() -> dfl.DatasetSplits:
    return dfl.get_dataset("mnist_scenes", task="segmentation", sizes=(SEARCH["train_scenes"], 500, 1000))


def run_search(seeds: int, strategies: list[str], work: Path) -> list[dict]:
    data = search_data()
    space = seg.DecoderSpace(widths=SEARCH["widths"], kernels=SEARCH["kernels"])
    evaluator = seg.SegmentationEvaluator(data, epochs=SEARCH["epochs"])
    executor = dfl.nas.ProcessExecutor(workers=2, threads=1)  # two trials at a time, one core each
    rows = []
    for name in strategies:
        for seed in range(seeds):
            strategy = (dfl.nas.RegularizedEvolution(SEARCH["population_size"], SEARCH["sample_size"])
                        if name == "evolution" else dfl.nas.RandomSearch())
            result = dfl.nas.search(space, strategy, evaluator, SEARCH["trials"], objective="val_miou", seed=seed,
                                    batch_size=2, executor=executor, progress=False,
                                    checkpoint=work / f"decoder_{name}_{seed}.json")
            best = result.best
            rows.append({"strategy": name, "seed": seed, "incumbent": [round(v, 4) for v in result.incumbent()],
                         "best": best.arch, "best_val_miou": round(best.result["val_miou"], 4),
                         "best_test_miou": round(best.result["test_miou"], 4), "best_params": best.result["params"],
                         "best_flops": best.result["flops"],
                         "search_s": round(sum(t.cost for t in result.trials), 1)})
            print(json.dumps(rows[-1]), flush=True)
    executor.close()
    unet = [evaluator(space.unet(), seed=s) for s in range(seeds)]
    rows.append({"strategy": "hand-designed U-Net", "val_miou": [round(r["val_miou"], 4) for r in unet],
                 "test_miou": [round(r["test_miou"], 4) for r in unet], "params": unet[0]["params"],
                 "flops": unet[0]["flops"]})
    print(json.dumps(rows[-1]), flush=True)
    return rows


def run_retrain(seeds: int, found: str, epochs: int | None) -> list[dict]:
    data = dfl.get_dataset("mnist_scenes", task="segmentation")
    decoder = seg.DecoderSpace().stages(seg.DecoderSpace().from_str(found))
    rows = []
    for seed in range(seeds):
        rows.append({"decoder": found} | run_segmenter("unet", data, seed, decoder, epochs))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def interval(values: list[float]) -> dict:
    mean, half = mean_interval(values)
    return {"mean": round(mean, 4), "ci95_half": round(half, 4), "n": len(values),
            "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}


def summarise(part: str, rows: list[dict]) -> dict:
    if part == "detection":
        return {k: interval([r[k] for r in rows]) for k in ("map_50", "map", "map_75", "train_s")}
    if part in ("segmentation", "retrain"):
        kinds = sorted({r["model"] for r in rows})
        return {k: {m: interval([r[m] for r in rows if r["model"] == k]) for m in ("test_miou", "train_s")}
                for k in kinds}
    out = {}
    for name in sorted({r["strategy"] for r in rows if "seed" in r}):
        runs = [r for r in rows if r.get("strategy") == name]
        out[name] = {"best_val_miou": interval([r["best_val_miou"] for r in runs]),
                     "best_test_miou": interval([r["best_test_miou"] for r in runs]),
                     "incumbent_mean": [round(statistics.mean(v), 4)
                                        for v in zip(*(r["incumbent"] for r in runs), strict=True)]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["detection", "segmentation", "search", "retrain"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategies", nargs="+", default=["random", "evolution"], choices=["random", "evolution"])
    parser.add_argument("--epochs", type=int, help="segmentation, retrain: epochs instead of the notebook's recipe")
    parser.add_argument("--models", nargs="+", default=["unet", "fcn"], choices=["unet", "fcn"],
                        help="segmentation: which segmenters")
    parser.add_argument("--decoder", help="retrain: the decoder to retrain (default: the search's best by val mIoU)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dfl_applications"), help="search checkpoints")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    args.work.mkdir(parents=True, exist_ok=True)
    with dfl.torch_threads(1 if args.part == "search" else None):  # search: one per worker process
        if args.part == "detection":
            rows = run_detection(args.seeds)
        elif args.part == "segmentation":
            rows = run_segmentation(args.seeds, args.epochs, args.models)
        elif args.part == "search":
            rows = run_search(args.seeds, args.strategies, args.work)
        else:
            found = args.decoder or max((r for r in results["search"]["runs"] if "seed" in r),
                                        key=lambda r: r["best_val_miou"])["best"]
            rows = run_retrain(args.seeds, found, args.epochs)
    longer = args.epochs if args.part in ("segmentation", "retrain") else None  # --epochs applies to these only
    key = args.part + (f"_{longer}_epochs" if longer else "")
    results[key] = {
        "command": f"python benchmarks/applications.py {args.part} --seeds {args.seeds}"
                   + (f" --strategies {' '.join(args.strategies)}" if args.part == "search" else "")
                   + (f" --epochs {longer}" if longer else "")
                   + (f" --models {' '.join(args.models)}" if args.part == "segmentation" else ""),
        "recipes": RECIPES, "search": SEARCH, "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "summary": summarise(args.part, rows), "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results[key]["summary"], indent=1))


if __name__ == "__main__":
    main()
