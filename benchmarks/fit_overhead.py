"""Time per epoch of `dfl.fit` against a bare PyTorch loop doing the same work.

Trains the notebook-00 ConvNet on MNIST-5k (3,500 images, batch 64, Adam) on the CPU and prints
the median epoch time over repeats and the ratio fit / bare loop (target: close to 1.0; fit adds
validation bookkeeping, seeding and a progress bar, not extra compute).

    python benchmarks/fit_overhead.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import dfl_toolkit as dfl


def bare_epoch(model: nn.Module, loader, opt: torch.optim.Optimizer) -> None:
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = dfl.get_dataset("mnist5k")
    train_dl, _, _ = data.loaders(64)
    bare, fitted = [], []
    for r in range(args.repeats):
        dfl.seed_everything(r)
        model = dfl.ConvNet(1, 10, channels=(32, 64))
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        t0 = time.perf_counter()
        bare_epoch(model, train_dl, opt)
        bare.append(time.perf_counter() - t0)
        dfl.seed_everything(r)
        model = dfl.ConvNet(1, 10, channels=(32, 64))
        t0 = time.perf_counter()
        dfl.fit(model, train_dl, epochs=1, progress=True, device="cpu")
        fitted.append(time.perf_counter() - t0)
    b, f = statistics.median(bare), statistics.median(fitted)
    print(f"\nMNIST-5k, ConvNet(32, 64), batch 64, {args.threads} threads, median of {args.repeats}")
    print(f"{'loop':<22}{'s / epoch':>10}{'ratio':>8}")
    print(f"{'bare PyTorch loop':<22}{b:>10.2f}{1.0:>8.2f}")
    print(f"{'dfl.fit':<22}{f:>10.2f}{f / b:>8.2f}")


if __name__ == "__main__":
    main()
