"""Sample quality of the VAE and the DCGAN on MNIST-5k, and the GAN's mode collapse and its fix over seeds.

    .venv/bin/python benchmarks/generation.py            # about 6 minutes on a 2-core CPU, one thread
    .venv/bin/python benchmarks/generation.py --quick    # a smoke test (1,000 digits, 1-2 epochs)

Judge: a ConvNet (16, 32 channels) trained with ``fit`` on MNIST-5k for 6 epochs. For 500 images of each kind it
reports the Fréchet distance in the judge's penultimate features to the 1,000 test digits, the judge's mean
confidence, the classes covered and the entropy of the class histogram, and the mean pixel distance to the nearest
training digit. Kinds: real validation digits (reference), VAE samples (15 epochs), DCGAN samples (width 32, lr 1e-3
for both players, 15 epochs), an untrained generator (floor). Then learning-rate settings (plus minibatch-std and label
smoothing on the collapsing one) for width-16 GANs, 8 epochs, seeds 0-2. One torch thread, so runs repeat exactly.
Writes benchmarks/results/generation.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import dfl_toolkit as dfl
from dfl_toolkit.applications import generation as gen

OUT = Path(__file__).parent / "results" / "generation.json"
SETTINGS = {
    "weak discriminator (lr_g 2e-3, lr_d 2e-5)": {"lr_g": 2e-3, "lr_d": 2e-5},
    "weak discriminator + minibatch-std + label smoothing 0.1": {"lr_g": 2e-3, "lr_d": 2e-5, "minibatch_std": True,
                                                                  "label_smoothing": 0.1},
    "DCGAN paper (2e-4, 2e-4)": {"lr_g": 2e-4, "lr_d": 2e-4},
    "balanced, faster (2e-3, 2e-3)": {"lr_g": 2e-3, "lr_d": 2e-3},
    "balanced, faster + label smoothing 0.1": {"lr_g": 2e-3, "lr_d": 2e-3, "label_smoothing": 0.1},
}


def brief(q: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in q.items()}


def main(quick: bool) -> dict:
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    n_train = 1000 if quick else None
    raw = dfl.get_dataset("mnist5k", normalize=False, train_size=n_train)
    x_train, x_val, x_test = (gen.image_tensor(s) for s in (raw.train, raw.val, raw.test))
    judge = gen.SampleJudge.train(dfl.get_dataset("mnist5k", train_size=n_train), epochs=2 if quick else 6,
                                  channels=(16, 32))
    judge_acc = dfl.evaluate(judge.classifier, dfl.get_dataset("mnist5k").test)["acc"]
    real_features = judge.features(x_test)

    timings = {}
    t0 = time.perf_counter()
    dfl.seed_everything(0)
    vae = gen.VAE(latent_dim=16)
    vae_h = dfl.fit(vae, gen.autoencoder_data(x_train), gen.autoencoder_data(x_val), epochs=2 if quick else 15,
                    lr=2e-3, scheduler="cosine", loss_fn=gen.ELBOLoss(),
                    callbacks=[gen.ELBOTerms(vae, gen.autoencoder_data(x_val))], progress=False)
    timings["vae_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dfl.seed_everything(0)
    g, d = gen.Generator(latent_dim=32, width=32), gen.Discriminator(width=32)
    gan_h = gen.train_gan(g, d, x_train, epochs=2 if quick else 15, lr_g=1e-3, lr_d=1e-3, seed=0)
    timings["dcgan_s"] = time.perf_counter() - t0
    dfl.seed_everything(0)
    untrained = gen.Generator(latent_dim=32, width=32)
    sets = {"real digits (validation)": x_val, "VAE samples": vae.sample(500, seed=1),
            "DCGAN samples": g.sample(500, seed=1), "untrained generator": untrained.sample(500, seed=1)}
    quality = {k: brief(judge.quality(v, real_features=real_features, train=x_train)) for k, v in sets.items()}
    for k, q in quality.items():
        print(f"{k:26s} FD {q['frechet']:8.1f} conf {q['confidence']:.3f} modes {q['modes']:2d} "
              f"H {q['entropy']:.2f} nn {q['nn_distance']:.2f}", flush=True)

    collapse = {}
    for name, opts in SETTINGS.items():
        runs = []
        for seed in (0, 1, 2):
            t0 = time.perf_counter()
            dfl.seed_everything(seed)
            g = gen.Generator(latent_dim=32, width=16)
            d = gen.Discriminator(width=16, minibatch_std=opts.get("minibatch_std", False))
            h = gen.train_gan(g, d, x_train, epochs=1 if quick else 8, seed=seed, lr_g=opts["lr_g"], lr_d=opts["lr_d"],
                              label_smoothing=opts.get("label_smoothing", 0.0))
            samples = g.sample(500, seed=1)
            q = judge.quality(samples, real_features=real_features)
            spread = float(torch.pdist(samples[:100].flatten(1)).mean())  # 0 when every sample is the same image
            runs.append(brief({"seed": seed, **q, "pairwise_distance": spread, "d_real": h.epochs[-1]["d_real"],
                               "d_fake": h.epochs[-1]["d_fake"], "seconds": time.perf_counter() - t0}))
            print(f"{name:58s} seed {seed}: modes {q['modes']:2d} H {q['entropy']:.2f} FD {q['frechet']:8.1f} "
                  f"spread {spread:.2f}", flush=True)
        collapse[name] = {"runs": runs, **{f"mean_{k}": round(float(np.mean([r[k] for r in runs])), 4)
                                           for k in ("modes", "entropy", "frechet", "pairwise_distance")}}
    return {
        "command": "python benchmarks/generation.py" + (" --quick" if quick else ""),
        "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread",
        "judge": {"model": "ConvNet(16, 32), fit 6 epochs, lr 2e-3 cosine", "test_acc": judge_acc,
                  "features": "head.relu (128)", "reference": "1,000 test digits"},
        "vae": {"epochs": len(vae_h), "last": {k: round(v, 3) for k, v in vae_h.last.items()}},
        "dcgan": {"epochs": len(gan_h.epochs), "last": {k: round(v, 3) for k, v in gan_h.epochs[-1].items()}},
        "quality": quality,
        "collapse": {"epochs": 1 if quick else 8, "width": 16, "seeds": [0, 1, 2], "settings": collapse},
        "timings_s": {**{k: round(v, 1) for k, v in timings.items()}, "total": round(time.perf_counter() - t_start)},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test; does not write the results file")
    args = parser.parse_args()
    result = main(args.quick)
    if not args.quick:
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", OUT)
    else:
        print(json.dumps(result["timings_s"]))
