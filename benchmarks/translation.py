"""Machine translation on the number-words pairs: GRU + Bahdanau attention against a transformer
encoder-decoder, several seeds, greedy against beam search, on the test pairs and on the held-out longer
numbers; plus how diagonal each model's cross-attention is, for French (word order shared) and German (units
before tens).

    .venv/bin/python benchmarks/translation.py                       # 3 seeds, French and German (~15 min, 2 cores)
    .venv/bin/python benchmarks/translation.py --seeds 1 --targets fr --out /tmp/mt.json   # a quick look

Writes benchmarks/results/translation.json. Every model trains with ``dfl.fit`` on one torch thread (so the
numbers repeat on any CPU), with the recipe of notebook 16 (:data:`RECIPES`).
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
from dfl_toolkit.applications import translation as mt

RESULTS = Path(__file__).resolve().parent / "results"
RECIPES = mt.RECIPES
BEAM = 4


def run_one(kind: str, data: dfl.DatasetSplits, seed: int) -> dict:
    tv = data.info["tgt_vocab"]
    model = mt.make_translator(kind, data, seed=seed)
    recipe = RECIPES[kind]
    t0 = time.perf_counter()
    history = dfl.fit(model, data.train, data.val, epochs=recipe["epochs"], lr=recipe["lr"], batch_size=64,
                      scheduler="cosine", grad_clip=1.0, loss_fn=mt.SequenceLoss(), seed=seed, progress=False)
    row = {"model": kind, "seed": seed, "train_s": round(time.perf_counter() - t0, 1),
           "val_loss": round(history.records[-1]["val_loss"], 4),
           "params": sum(p.numel() for p in model.parameters())}
    for split, ds in (("test", data.test), ("long", data.info["test_long"])):
        for beam in (1, BEAM):
            t0 = time.perf_counter()
            scores = mt.evaluate_translation(model, ds, tv, beam_size=beam)
            name = f"{split}_{'greedy' if beam == 1 else f'beam{beam}'}"
            row |= {f"{name}_{k}": round(v, 3) for k, v in scores.items()}
            row[f"{name}_s"] = round(time.perf_counter() - t0, 2)
    row |= {f"align_{k}": round(v, 4) for k, v in mt.alignment_report(model, data.test).items() if k != "pairs"}
    return row


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k not in ("model", "seed", "target")]
    out = {}
    for k in keys:
        values = [r[k] for r in rows]
        out[k] = {"mean": round(statistics.mean(values), 3),
                  "sd": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=["fr", "de"], choices=["fr", "de"])
    parser.add_argument("--out", type=Path, default=RESULTS / "translation.json")
    args = parser.parse_args(argv)
    rows = []
    with dfl.torch_threads(1):
        for target in args.targets:
            data = dfl.get_dataset("number_words", target=target)
            for kind in RECIPES:
                for seed in range(args.seeds):
                    row = {"target": target} | run_one(kind, data, seed)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary = {f"{t}/{k}": summarise([r for r in rows if r["target"] == t and r["model"] == k])
               for t in args.targets for k in RECIPES}
    result = {
        "what": "BLEU/chrF (sacreBLEU, 0-100) and exact-match rate of greedy and beam search on the held-out test "
                "pairs and on longer numbers than any training pair; cross-attention monotonicity and diagonal mass "
                "on the first 200 test pairs (teacher forcing)",
        "command": "python benchmarks/translation.py " + " ".join(
            [f"--seeds {args.seeds}", "--targets", *args.targets]),
        "data": "number_words: English number words -> French/German number words, rule-generated; 3,000 train / "
                "300 val / 500 test pairs of <= 6 English words, 500 'long' pairs of 7-8 words",
        "recipes": RECIPES, "beam_size": BEAM, "length_penalty": 1.0, "torch_threads": 1,
        "torch": torch.__version__, "machine": f"{platform.machine()}, {torch.get_num_threads()} cores seen by torch",
        "summary": summary, "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
