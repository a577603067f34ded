"""Linear probes: how linearly separable the classes are in each layer's representation.

For each layer, a logistic regression is fitted on that layer's (frozen) activations of the train split and
scored on the test split. Rising accuracy with depth shows the network turning pixels into features that a
linear classifier can use (Alain & Bengio 2016, "Understanding intermediate layers using linear classifier probes").

Example:
    >>> data = get_dataset("digits")
    >>> result = linear_probe(model, data, ["input", "features.block1", "features.block2", "pool"])
    >>> result.accuracy["input"], result.chance
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from ..data.splits import DatasetSplits, subsample
from .backbones import Backbone, collect_features, dataset_stats


@dataclass
class ProbeResult:
    """Test accuracy of a linear probe per layer.

    Attributes:
        accuracy: ``{layer: test accuracy}`` in the order asked.
        dims: ``{layer: number of features the probe saw}`` (after pooling, see :func:`probe_features`).
        chance: accuracy of always predicting the most frequent training class.
        train_size, test_size: items used to fit and to score the probes.
    """

    accuracy: dict[str, float]
    dims: dict[str, int]
    chance: float
    train_size: int
    test_size: int

    def __repr__(self) -> str:
        width = max(len(name) for name in self.accuracy)
        rows = [f"  {name:<{width}}  {acc:.3f}  ({self.dims[name]} features)" for name, acc in self.accuracy.items()]
        return (f"ProbeResult(train={self.train_size}, test={self.test_size}, chance={self.chance:.3f}):\n"
                + "\n".join(rows))


def probe_features(t: Any, max_dim: int = 2048) -> torch.Tensor:
    """One layer's output flattened to (N, D), average-pooled so that D stays near ``max_dim``.

    Rule: a map (N, C, H, W) with C*H*W > ``max_dim`` is average-pooled to an s x s grid, s the largest size with
    C*s*s <= ``max_dim`` (at least 1x1, i.e. global pooling); (N, C, L) likewise to L' <= ``max_dim`` / C.
    Smaller outputs are kept whole (8x8 digits: 64 pixels; 28x28 MNIST: 784). A tuple output: its first item.
    """
    t = t[0] if isinstance(t, (tuple, list)) else t
    if t.dim() > 2 and t[0].numel() > max_dim:
        c = t.shape[1]
        if t.dim() == 4:
            s = max(1, int((max_dim / c) ** 0.5))
            t = F.adaptive_avg_pool2d(t, (min(s, t.shape[2]), min(s, t.shape[3])))
        elif t.dim() == 3:
            t = F.adaptive_avg_pool1d(t, max(1, min(max_dim // c, t.shape[2])))
    return t.reshape(len(t), -1)


def _labels(ds: Dataset) -> np.ndarray:
    y = getattr(ds, "y", None)
    if y is not None:
        return torch.as_tensor(y).cpu().numpy()
    return np.array([int(ds[i][1]) for i in range(len(ds))])


def linear_probe(model: nn.Module | Backbone, data: DatasetSplits, layers: Sequence[str], *,
                 train_size: int | None = None, max_items: int | None = None, seed: int = 0, max_dim: int = 2048,
                 batch_size: int = 128, device: str | torch.device | None = None) -> ProbeResult:
    """Fit one logistic regression per layer on frozen activations and report its test accuracy.

    ``layers`` are names from ``list_layers(model)``, plus ``"input"`` for the raw input (the pixel baseline).
    Features are pooled by the rule of :func:`probe_features`, standardised with the train statistics, and fitted
    with scikit-learn's ``LogisticRegression`` (lbfgs, deterministic). ``train_size`` fits on a stratified subset
    of ``data.train`` and ``max_items`` scores on a stratified subset of ``data.test`` (both chosen with ``seed``).
    A :class:`~dfl_toolkit.features.Backbone` gets its ``adapt`` step (grey -> RGB, resize) first; its
    ``"input"`` is then the adapted image. The model is used frozen, in eval mode, on ``get_device(device)``.

    Example:
        >>> model = ConvNet(1, 10, channels=(8, 16))              # untrained: random features
        >>> linear_probe(model, get_dataset("digits"), ["input", "features.block1", "pool"]).accuracy
        {'input': 0.96..., 'features.block1': 0.97..., 'pool': 0.66...}
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if not isinstance(data, DatasetSplits):
        raise TypeError(f"linear_probe needs a DatasetSplits (from get_dataset), got {type(data).__name__}")
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("give at least one layer name (or 'input')")
    if max_items is not None and (not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1):
        raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
    y_train, y_test = _labels(data.train), _labels(data.test)
    train_idx = subsample(y_train, train_size, seed)
    test_idx = subsample(y_test, None if max_items is None else min(max_items, len(y_test)), seed)

    prepare = None
    if isinstance(model, Backbone):
        backbone, model = model, model.model
        mean, std = dataset_stats(data.test)
        prepare = partial(backbone.adapt, mean=mean, std=std)
    options = dict(reduce=partial(probe_features, max_dim=max_dim), prepare=prepare, batch_size=batch_size,
                   device=device)
    train, y_tr = collect_features(model, Subset(data.train, train_idx.tolist()), layers, **options)
    test, y_te = collect_features(model, Subset(data.test, test_idx.tolist()), layers, **options)

    accuracy, dims = {}, {}
    with threadpool_limits(1, user_api="blas"):  # BLAS threads fighting torch's OpenMP threads make lbfgs ~10x slower
        for name in layers:
            scaler = StandardScaler().fit(train[name])
            clf = LogisticRegression(max_iter=1000, random_state=seed).fit(scaler.transform(train[name]), y_tr)
            accuracy[name] = float(clf.score(scaler.transform(test[name]), y_te))
            dims[name] = int(train[name].shape[1])
    majority = np.bincount(y_tr).argmax()
    return ProbeResult(accuracy, dims, chance=float(np.mean(y_te == majority)), train_size=len(y_tr),
                       test_size=len(y_te))
