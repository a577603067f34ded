"""Cost of `extract_features` as a ratio to a plain forward pass of the same model and batch.

Hooks on module names should cost almost nothing beyond the forward pass (target: ratio <= 1.1);
graph nodes that are not modules go through torch.fx, which traces the model on every call, so
that row shows what the tracing costs. Medians over repeats, interleaved, under torch.no_grad.

    python benchmarks/extractor_overhead.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import dfl_toolkit as dfl


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [
        ("ConvNet(32,64), MNIST 28x28", dfl.ConvNet(1, 10), torch.randn(256, 1, 28, 28),
         ["features.block1", "features.block2.relu2", "pool"]),
        ("resnet18, 112x112", torchvision.models.resnet18(), torch.randn(32, 3, 112, 112),
         ["layer1", "layer2", "layer3", "layer4"]),
        ("mobilenet_v3_small, 112x112", torchvision.models.mobilenet_v3_small(), torch.randn(32, 3, 112, 112),
         ["features.1", "features.3", "features.8", "avgpool"]),
        ("resnet18, 112x112, fx node", torchvision.models.resnet18(), torch.randn(32, 3, 112, 112),
         ["layer1.0.add", "layer4"]),
    ]
    print(f"{'model / batch':32s} {'layers':>6s} {'forward ms':>11s} {'extract ms':>11s} {'ratio':>6s}")
    for name, model, x, layers in cases:
        model.eval()
        with torch.no_grad():
            model(x)  # warm-up
        forward, extract = [], []
        for _ in range(args.repeats):
            with torch.no_grad():
                forward.append(median_time(lambda m=model, x=x: m(x), 1))
            extract.append(median_time(lambda m=model, x=x, ls=layers: dfl.extract_features(m, x, ls), 1))
        f, e = statistics.median(forward), statistics.median(extract)
        print(f"{name:32s} {len(layers):6d} {f * 1e3:11.1f} {e * 1e3:11.1f} {e / f:6.2f}")


if __name__ == "__main__":
    main()
