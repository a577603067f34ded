"""Semantic segmentation, and architecture search applied to something other than a classifier.

- :class:`UNet`: the encoder-decoder with skip connections of Ronneberger, Fischer and Brox (2015), here on the
  shared :class:`SceneBackbone` as its encoder.
- :class:`FCN`: the fully convolutional head of Long, Shelhamer and Darrell (2015): per-class scores from the
  coarse maps, upsampled and summed with scores from finer ones (FCN-8s style), then upsampled to the image.
- :class:`DecoderSpace` and :class:`SegmentationEvaluator`: a search space over the decoder (per stage: skip
  connection, width, kernel, depth) and an evaluator that trains each decoder and reports validation mIoU, so
  the toolkit's one ``search`` loop and its strategies search decoders as they search classifiers. NAS-FPN
  (Ghiasi et al. 2019) and Auto-DeepLab (Liu et al. 2019) did this at scale for detection and segmentation.

IoU is torchmetrics' ``JaccardIndex`` (per class; mIoU its mean over the classes).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..data import DatasetSplits
from ..errors import ShapeError, UsageError
from ..nas.evaluators import count_flops, count_params
from ..nas.spaces import CategoricalSpace
from ..runtime import seed_everything, torch_threads
from ..train import fit, predict
from .backbone import SceneBackbone, conv_block

Stage = tuple[bool, int, int, int]  # (skip, width, kernel, depth) of one decoder stage
UNET_DECODER: tuple[Stage, ...] = ((True, 32, 3, 2), (True, 16, 3, 2), (True, 8, 3, 2))  # strides 4, 2, 1


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[-1] % 8 or x.shape[-2] % 8:
        raise ShapeError(f"segmentation models take images (B, C, H, W) with H and W multiples of 8, "
                         f"got {tuple(x.shape)}")


class UNet(nn.Module):
    """An encoder-decoder: :class:`SceneBackbone` down to stride 8, then one decoder stage per finer
    resolution (strides 4, 2, 1), each upsampling by 2, joining the encoder's map of that resolution when
    its ``skip`` is on, and applying ``depth`` conv blocks of ``width`` channels and ``kernel`` size. Class scores
    from the stride-8 map are added to the output (FCN's shortcut), so classes are learned in a few epochs.

    ``decoder`` is three ``(skip, width, kernel, depth)`` stages, coarsest first; the default is the
    hand-designed U-Net (skips everywhere, widths 32/16/8 mirroring the encoder, 3x3, two blocks each).
    Output: per-pixel class logits (B, num_classes, H, W), ready for ``nn.CrossEntropyLoss`` (``fit``'s default
    for integer masks).

    Example:
        >>> UNet(num_classes=11)(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 11, 64, 64])
    """

    def __init__(self, num_classes: int = 11, in_channels: int = 1, width: int = 8,
                 decoder: tuple[Stage, ...] = UNET_DECODER):
        super().__init__()
        if len(decoder) != 3:
            raise UsageError("decoder is three (skip, width, kernel, depth) stages for strides 4, 2, 1, "
                             f"got {decoder!r}")
        self.encoder = SceneBackbone(in_channels, width)
        self.decoder = tuple(tuple(stage) for stage in decoder)
        self.stages = nn.ModuleList()
        cin = self.encoder.channels[3]
        for (skip, w, k, depth), enc in zip(self.decoder, reversed(self.encoder.channels[:3]), strict=True):
            blocks = [conv_block(cin + (enc if skip else 0), w, k)] + [conv_block(w, w, k) for _ in range(depth - 1)]
            self.stages.append(nn.Sequential(*blocks))
            cin = w
        self.classify = nn.Conv2d(cin, num_classes, 1)
        # Class scores straight from the stride-8 map, upsampled and added to the decoder's (as in FCN): without
        # them this small U-Net separated digits from background but named no class after 4 epochs (test mIoU
        # 0.11 against 0.5 with them after 2; benchmarks/results/README.md).
        self.coarse = nn.Conv2d(self.encoder.channels[3], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        maps = self.encoder(x)
        y = maps[3]
        for (skip, *_), stage, enc in zip(self.decoder, self.stages, reversed(maps[:3]), strict=True):
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = stage(torch.cat([y, enc], 1) if skip else y)
        coarse = F.interpolate(self.coarse(maps[3]), size=y.shape[-2:], mode="bilinear", align_corners=False)
        return self.classify(y) + coarse


class FCN(nn.Module):
    """FCN-8s on :class:`SceneBackbone`: 1x1 class scores from the stride-8 map, upsampled and added to scores
    from the stride-4 and stride-2 maps, then bilinearly upsampled to the image. No decoder convolutions: the
    baseline a U-Net's decoder must beat.

    Example:
        >>> FCN(num_classes=11)(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 11, 64, 64])
    """

    def __init__(self, num_classes: int = 11, in_channels: int = 1, width: int = 8):
        super().__init__()
        self.encoder = SceneBackbone(in_channels, width)
        self.scores = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in self.encoder.channels[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        maps = self.encoder(x)[1:]  # strides 2, 4, 8
        y = self.scores[2](maps[2])
        for score, m in zip((self.scores[1], self.scores[0]), (maps[1], maps[0]), strict=True):
            y = F.interpolate(y, size=m.shape[-2:], mode="bilinear", align_corners=False) + score(m)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def iou_scores(pred: torch.Tensor, target: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """Per-class IoU and their mean (mIoU) of predicted masks against true ones, both (N, H, W) class ids, from
    torchmetrics' ``JaccardIndex``. A class absent from both is left out of the mean.

    Example:
        >>> iou_scores(logits.argmax(1), masks, data.classes)["miou"]
        0.86
    """
    from torchmetrics.classification import MulticlassJaccardIndex

    if pred.shape != target.shape:
        raise ShapeError(f"predicted and true masks must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    n = len(classes)
    per_class = MulticlassJaccardIndex(num_classes=n, average="none", zero_division=float("nan"))(pred, target)
    present = ~torch.isnan(per_class)
    return {"miou": float(per_class[present].mean()),
            "per_class": {c: float(v) for c, v, p in zip(classes, per_class, present, strict=True) if p}}


def evaluate_segmenter(model: nn.Module, data: torch.utils.data.Dataset, classes: list[str], *,
                       batch_size: int = 128) -> dict[str, Any]:
    """mIoU and per-class IoU of ``model`` on a segmentation split (e.g. ``data.test``).

    Example:
        >>> evaluate_segmenter(model, data.test, data.classes)["miou"]
    """
    logits, masks = predict(model, data, batch_size=batch_size, return_targets=True)
    return iou_scores(logits.argmax(1), masks, classes)


class DecoderSpace(CategoricalSpace):
    """Decoders for :class:`UNet`'s encoder: per stage (strides 4, 2, 1) a skip connection or not, a width, a
    kernel size and a depth: (2*4*3*2)**3 = 110,592 decoders, the hand-designed U-Net's among them.

    Example:
        >>> space = DecoderSpace()
        >>> space.to_str(space.unet())
        'skip-w32-k3-d2|skip-w16-k3-d2|skip-w8-k3-d2'
    """

    name = "unet_decoder"
    build_options = ("width",)
    input_ranks = (2,)

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64), kernels: tuple[int, ...] = (1, 3, 5),
                 depths: tuple[int, ...] = (1, 2)):
        self.choices = []
        for s in (4, 2, 1):
            self.choices += [(f"stride{s}.skip", (True, False)), (f"stride{s}.width", tuple(widths)),
                             (f"stride{s}.kernel", tuple(kernels)), (f"stride{s}.depth", tuple(depths))]

    def stages(self, arch: tuple) -> tuple[Stage, ...]:
        arch = self.validate(arch)
        return tuple(tuple(arch[4 * i: 4 * i + 4]) for i in range(3))

    def unet(self) -> tuple:
        """The hand-designed U-Net's decoder as an architecture of this space."""
        return self.validate(tuple(v for stage in UNET_DECODER for v in stage))

    def to_str(self, arch: tuple) -> str:
        return "|".join(f"{'skip' if s else 'noskip'}-w{w}-k{k}-d{d}" for s, w, k, d in self.stages(arch))

    def from_str(self, text: str) -> tuple:
        try:
            arch = []
            for part in text.split("|"):
                skip, w, k, d = part.split("-")
                if skip not in ("skip", "noskip"):
                    raise ValueError(skip)
                arch += [skip == "skip", int(w[1:]), int(k[1:]), int(d[1:])]
        except (ValueError, AttributeError) as err:
            raise UsageError(f"cannot parse {text!r}: expected three stages like 'skip-w32-k3-d2|noskip-w16-k5-d1|"
                             "skip-w8-k3-d1'") from err
        return self.validate(tuple(arch))

    def build(self, arch: tuple, *, in_channels: int = 1, num_classes: int = 11, width: int = 8) -> UNet:
        return UNet(num_classes, in_channels, width, self.stages(arch))


class SegmentationEvaluator:
    """Trains ``space.build(arch)`` on a segmentation dataset for ``epochs`` and reports validation and test
    mIoU, parameters, FLOPs and training time, so that ``search(DecoderSpace(), strategy,
    SegmentationEvaluator(data), objective="val_miou")`` searches decoders.

    Example:
        >>> data = get_dataset("mnist_scenes", task="segmentation", sizes=(1000, 300, 500))
        >>> ev = SegmentationEvaluator(data, epochs=3)
        >>> ev(DecoderSpace().unet(), seed=0)["val_miou"]
    """

    name = "segmentation"
    metrics = ("val_miou", "test_miou", "params", "flops", "train_time")

    def __init__(self, data: DatasetSplits, *, epochs: int = 3, lr: float = 3e-3, batch_size: int = 32,
                 width: int = 8, threads: int | None = 1):
        if data.task != "segmentation":
            raise UsageError(f"SegmentationEvaluator trains segmenters; {data.name!r} is {data.task} "
                             "(use get_dataset('mnist_scenes', task='segmentation'))")
        self.data, self.epochs, self.lr, self.batch_size, self.width, self.threads = (
            data, epochs, lr, batch_size, width, threads)
        self.space = DecoderSpace()

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records about this evaluator."""
        return {"evaluator": self.name, "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "width": self.width, "data": self.data.name, "options": self.data.info.get("options"),
                "threads": self.threads}

    def __call__(self, arch: tuple, seed: int = 0) -> dict[str, Any]:
        with torch_threads(self.threads):
            seed_everything(seed)
            model = self.space.build(arch, in_channels=self.data.input_shape[0],
                                     num_classes=len(self.data.classes), width=self.width)
            train_dl, val_dl, _ = self.data.loaders(self.batch_size, seed=seed)
            t0 = time.perf_counter()
            history = fit(model, train_dl, epochs=self.epochs, lr=self.lr, scheduler="cosine", seed=seed,
                          device="cpu", progress=False)
            train_time = time.perf_counter() - t0
            result = {"failed": history.diverged, "train_time": train_time, "params": count_params(model),
                      "flops": count_flops(model, self.data.input_shape)}
            if history.diverged:
                return {**result, "val_miou": 0.0, "test_miou": 0.0}
            classes = self.data.classes
            return {**result, "val_miou": evaluate_segmenter(model, self.data.val, classes)["miou"],
                    "test_miou": evaluate_segmenter(model, self.data.test, classes)["miou"]}
