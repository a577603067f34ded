"""Time of each attribution method of `dfl.explain` on one batch, on the CPU.

A small ConvNet trained for a few epochs on MNIST-5k explains a batch of test digits (28x28) with
every method; the table gives the median over repeats, per batch and per image, and the ratio to
one saliency call (one backward pass), which is what each method multiplies.

    python benchmarks/attribution_timing.py [--batch 32] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import dfl_toolkit as dfl
from dfl_toolkit.explain import METHODS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = dfl.get_dataset("mnist5k", train_size=1000)
    dfl.seed_everything(0)
    model = dfl.ConvNet(1, 10, channels=(32, 64))
    train_dl, val_dl, test_dl = data.loaders(64)
    dfl.fit(model, train_dl, val_dl, epochs=3, progress=False)
    x, y = next(iter(data.loaders(args.batch)[2]))
    options = {"layer": "features.block2"}
    times = {}
    for method in METHODS:
        explain_once = lambda m=method: dfl.explain(model, x, y, m, **options)  # noqa: E731
        explain_once()  # warm-up
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            explain_once()
            runs.append(time.perf_counter() - t0)
        times[method] = statistics.median(runs)
    print(f"batch of {args.batch} MNIST test images, ConvNet(32,64), {args.threads} threads, "
          f"median of {args.repeats}; IG 50 steps, SmoothGrad 20 samples, occlusion 4x4 window stride 2")
    print(f"{'method':22s} {'s / batch':>10s} {'ms / image':>11s} {'x saliency':>11s}")
    for method, t in times.items():
        print(f"{method:22s} {t:10.3f} {t / args.batch * 1e3:11.1f} {t / times['saliency']:11.1f}")


if __name__ == "__main__":
    main()
