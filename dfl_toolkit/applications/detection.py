"""Object detection with one small single-stage detector, read beside its paper:
"Objects as Points" (CenterNet; Zhou, Wang and Krähenbühl 2019).

Every object is a point: the detector predicts, on a grid four times coarser than the image, one heatmap per
class whose peaks are object centres, and at each centre the box's width and height and the centre's sub-cell
offset. Decoding keeps the local maxima of the heatmaps (a 3x3 max-pool), reads the boxes there, and removes
leftover duplicates with non-maximum suppression from ``torchvision.ops``. Accuracy is COCO's mean average
precision from torchmetrics (pycocotools backend), not a hand-written metric.

Targets are the rows ``(class, x1, y1, x2, y2)`` of ``get_dataset("mnist_scenes", task="detection")`` (class -1
pads), so the detector trains with the toolkit's one loop: ``fit(model, data.train, data.val,
loss_fn=CenterNetLoss())``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ShapeError, UsageError
from ..train import predict
from .backbone import SceneBackbone, conv_block

STRIDE = 4  # the output grid is this many times coarser than the image


class CenterNet(nn.Module):
    """A CenterNet-style detector on :class:`SceneBackbone`: the stride-8 map is upsampled and joined to the
    stride-4 map, then two heads read the result.

    ``forward`` returns one tensor (B, num_classes + 4, H/4, W/4): the class heatmap logits, then the box
    width and height (in grid cells) and the centre's offset inside its cell (x, y). :func:`decode` turns it
    into boxes. Named layers for :func:`dfl_toolkit.extract_features`: ``backbone.stages.0`` ... ``.3``,
    ``neck``, ``heatmap``, ``box``.

    Example:
        >>> model = CenterNet(num_classes=10)
        >>> model(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 14, 16, 16])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 8, head: int = 32):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = SceneBackbone(in_channels, width)
        c4, c8 = self.backbone.channels[2:]
        self.neck = conv_block(c4 + c8, head, kernel=1)
        self.heatmap = nn.Sequential(conv_block(head, head), nn.Conv2d(head, num_classes, 1))
        self.box = nn.Sequential(conv_block(head, head), nn.Conv2d(head, 4, 1))
        nn.init.constant_(self.heatmap[-1].bias, -2.19)  # start every centre at probability 0.1 (the paper's prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ShapeError(f"CenterNet takes images (B, C, H, W) with H and W multiples of 8, got {tuple(x.shape)}")
        *_, f4, f8 = self.backbone(x)
        f = self.neck(torch.cat([f4, F.interpolate(f8, size=f4.shape[-2:], mode="nearest")], 1))
        return torch.cat([self.heatmap(f), self.box(f)], 1)


def _check_targets(y: torch.Tensor) -> None:
    if y.dim() != 3 or y.shape[-1] != 5:
        raise ShapeError(f"detection targets are (B, k, 5) rows (class, x1, y1, x2, y2) with class -1 padding, "
                         f"got shape {tuple(y.shape)}")


def centernet_targets(y: torch.Tensor, num_classes: int, grid: tuple[int, int],
                      stride: int = STRIDE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the detector should output for boxes ``y`` (B, k, 5): a Gaussian peak per object on its class's
    heatmap (B, num_classes, h, w), the box targets (B, 4, h, w) and a mask (B, h, w) of the centre cells.

    The Gaussian's spread follows the box (sigma = 0.54 * size / 6 per axis, TTFNet's rule), so a big digit
    tolerates a centre guessed one cell off and a small one less.
    """
    _check_targets(y)
    h, w = grid
    heat = torch.zeros(len(y), num_classes, h, w)
    boxes = torch.zeros(len(y), 4, h, w)
    centres = torch.zeros(len(y), h, w, dtype=torch.bool)
    xs, ys = torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32)
    for b, k in (y[..., 0] >= 0).nonzero().tolist():
        cls, x1, y1, x2, y2 = y[b, k].tolist()
        cx, cy, bw, bh = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride, (x2 - x1) / stride, (y2 - y1) / stride
        px, py = min(int(cx), w - 1), min(int(cy), h - 1)
        sx, sy = max(0.54 * bw / 6, 0.25), max(0.54 * bh / 6, 0.25)
        g = torch.exp(-((xs - px) ** 2 / (2 * sx**2))[None, :] - ((ys - py) ** 2 / (2 * sy**2))[:, None])
        heat[b, int(cls)] = torch.maximum(heat[b, int(cls)], g)
        boxes[b, :, py, px] = torch.tensor([bw, bh, cx - px, cy - py])
        centres[b, py, px] = True
    return heat, boxes, centres


class CenterNetLoss(nn.Module):
    """CenterNet's training loss: the penalty-reduced focal loss on the heatmaps (alpha 2, beta 4), plus L1 on
    box size (weight 0.1) and centre offset (weight 1) at the object centres, each divided by the number of
    objects. ``forward(output, y)`` with ``y`` the (B, k, 5) box rows, so it plugs into ``fit``.

    Example:
        >>> history = fit(CenterNet(), data.train, data.val, loss_fn=CenterNetLoss(), epochs=20)
    """

    def __init__(self, size_weight: float = 0.1, offset_weight: float = 1.0):
        super().__init__()
        self.size_weight, self.offset_weight = size_weight, offset_weight

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = out.shape[1] - 4
        heat, boxes, centres = (t.to(out.device) for t in centernet_targets(y.cpu(), c, out.shape[-2:]))
        logits = out[:, :c]
        pos = heat.eq(1.0)
        n = pos.sum().clamp(min=1)
        pos_loss = (F.logsigmoid(logits) * (1 - logits.sigmoid()) ** 2)[pos].sum()
        neg_loss = (F.logsigmoid(-logits) * logits.sigmoid() ** 2 * (1 - heat) ** 4)[~pos].sum()
        focal = -(pos_loss + neg_loss) / n
        pred = out[:, c:].permute(0, 2, 3, 1)[centres]  # (objects, 4)
        true = boxes.permute(0, 2, 3, 1)[centres]
        size = F.l1_loss(pred[:, :2], true[:, :2], reduction="sum") / n
        offset = F.l1_loss(pred[:, 2:], true[:, 2:], reduction="sum") / n
        return focal + self.size_weight * size + self.offset_weight * offset


def decode(out: torch.Tensor, *, stride: int = STRIDE, top_k: int = 20, score_threshold: float = 0.05,
           iou_threshold: float = 0.5) -> list[dict[str, torch.Tensor]]:
    """Detections from the detector's output (B, C + 4, h, w): one dict per image with ``boxes`` (n, 4) in
    pixels (x1, y1, x2, y2), ``scores`` (n,) and ``labels`` (n,), best first.

    Peaks are cells that are the maximum of their 3x3 neighbourhood (CenterNet's replacement for NMS); the
    ``top_k`` best above ``score_threshold`` are kept, then ``torchvision.ops.batched_nms`` removes any box
    overlapping a better one of its class by IoU > ``iou_threshold``.

    Example:
        >>> dets = decode(model(images))
        >>> dets[0]["boxes"].shape, dets[0]["labels"][:3]
    """
    from torchvision.ops import batched_nms

    if out.dim() != 4 or out.shape[1] < 5:
        raise ShapeError(f"decode takes the detector's output (B, classes + 4, h, w), got {tuple(out.shape)}")
    c, (h, w) = out.shape[1] - 4, out.shape[-2:]
    heat = out[:, :c].sigmoid()
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    results = []
    for b in range(len(out)):
        scores, idx = peaks[b].flatten().topk(min(top_k, peaks[b].numel()))
        keep = scores > score_threshold
        scores, idx = scores[keep], idx[keep]
        labels, cell = idx // (h * w), idx % (h * w)
        py, px = cell // w, cell % w
        bw, bh, dx, dy = out[b, c:, py, px]
        cx, cy = (px + dx) * stride, (py + dy) * stride
        boxes = torch.stack([cx - bw * stride / 2, cy - bh * stride / 2, cx + bw * stride / 2, cy + bh * stride / 2], 1)
        kept = batched_nms(boxes, scores, labels, iou_threshold)
        results.append({"boxes": boxes[kept].detach(), "scores": scores[kept].detach(), "labels": labels[kept]})
    return results


def target_dicts(y: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Box rows (B, k, 5) as the list of ``{"boxes", "labels"}`` dicts torchmetrics and torchvision use."""
    _check_targets(y)
    out = []
    for rows in y:
        rows = rows[rows[:, 0] >= 0]
        out.append({"boxes": rows[:, 1:].float(), "labels": rows[:, 0].long()})
    return out


def mean_average_precision(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                           classes: list[str] | None = None) -> dict[str, Any]:
    """COCO mAP from torchmetrics' ``MeanAveragePrecision`` (pycocotools backend): ``map`` (IoU 0.5:0.95),
    ``map_50``, ``map_75`` and, with ``classes``, ``per_class`` AP@[.5:.95] by class name.

    Example:
        >>> mean_average_precision(decode(out), target_dicts(y))["map_50"]
        0.97
    """
    from torchmetrics.detection import MeanAveragePrecision

    if len(preds) != len(targets):
        raise UsageError(f"one prediction per image: got {len(preds)} predictions for {len(targets)} targets")
    metric = MeanAveragePrecision(iou_type="bbox", backend="pycocotools", class_metrics=classes is not None)
    metric.update(preds, targets)
    r = metric.compute()
    out: dict[str, Any] = {k: float(r[k]) for k in ("map", "map_50", "map_75")}
    if classes is not None:
        out["per_class"] = {classes[int(c)]: float(ap) for c, ap in zip(r["classes"], r["map_per_class"], strict=True)}
    return out


def evaluate_detector(model: nn.Module, data: torch.utils.data.Dataset, *, classes: list[str] | None = None,
                      batch_size: int = 128, **decode_options: Any) -> dict[str, Any]:
    """mAP of ``model`` on a detection split (e.g. ``data.test``), through :func:`decode` and
    :func:`mean_average_precision`.

    Example:
        >>> evaluate_detector(model, data.test, classes=data.classes)["map_50"]
    """
    out, y = predict(model, data, batch_size=batch_size, return_targets=True)
    return mean_average_precision(decode(out, **decode_options), target_dicts(y), classes)


def draw_detections(ax, image: torch.Tensor, det: dict[str, torch.Tensor] | None = None,
                    target: torch.Tensor | None = None, classes: list[str] | None = None,
                    min_score: float = 0.3) -> None:
    """Draw ``image`` (1, H, W) on ``ax`` with the true boxes (green, dashed) and detections scoring at least
    ``min_score`` (red, with class and score).

    Example:
        >>> fig, ax = plt.subplots()
        >>> draw_detections(ax, x[0], decode(model(x))[0], target=y[0], classes=data.classes)
    """
    import matplotlib.patches as patches

    ax.imshow(image.squeeze(0).cpu(), cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])
    name = (lambda c: classes[c]) if classes else str
    if target is not None:
        for cls, x1, y1, x2, y2 in target.tolist():
            if cls >= 0:
                ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="lime", ls="--"))
    if det is not None:
        for (x1, y1, x2, y2), s, c in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist(),
                                         strict=True):
            if s >= min_score:
                ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="red"))
                ax.text(x1, y1 - 1, f"{name(c)} {s:.2f}", color="red", fontsize=7, va="bottom")


class PeakScores(nn.Module):
    """The detector seen as a classifier: each class's highest heatmap logit in the image, (B, num_classes).

    So the classification explainers work on the detector: ``explain(PeakScores(model), x, target=c,
    method="gradcam", layer="detector.backbone.stages.2")`` shows where the evidence for a class-``c`` centre
    comes from.

    Example:
        >>> PeakScores(CenterNet())(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(self, detector: CenterNet):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.detector(x)[:, : self.detector.num_classes].flatten(2).amax(2)
