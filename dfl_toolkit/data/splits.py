"""What every dataset loader returns: fixed train/val/test splits plus what is needed to use them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset

from ..errors import UsageError

SPLIT_SEED = 0  # splits never depend on the user's seed, so they are the same in every run


class TensorDataset(Dataset):
    """In-memory samples, normalised per item: ``(x - mean) / std``, then an optional transform.

    ``x`` is kept as stored (uint8 images stay uint8 and are scaled to [0, 1] on access),
    so even CIFAR-10 fits in memory on a laptop.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if len(x) != len(y):
            raise UsageError(f"x has {len(x)} samples but y has {len(y)}")
        self.x, self.y, self.transform = x, y, transform
        shape = (-1,) + (1,) * (x.dim() - 2) if x.dim() > 2 else (-1,)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(shape)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(shape)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return x, self.y[i]


@dataclass
class DatasetSplits:
    """Fixed train/val/test splits of one dataset, with what a notebook needs beside them.

    Attributes:
        name: registry name, e.g. ``"mnist5k"``.
        train, val, test: torch datasets yielding ``(x, y)``.
        task: ``"classification"`` or ``"regression"``.
        classes: class names (classification) or ``None``.
        input_shape: shape of one ``x``.
        mean, std: normalisation statistics (from the train split), already applied to ``x``
            when ``normalized`` is true; :meth:`denormalize` undoes it for plotting.
        source: where the data comes from and what to cite.
        info: dataset-specific extras (e.g. the raw series and its time axis for forecasting).

    Example:
        >>> data = get_dataset("digits")
        >>> train_dl, val_dl, test_dl = data.loaders(batch_size=64)
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    task: str
    classes: list[str] | None
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalized: bool
    source: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    def loaders(self, batch_size: int = 64, *, seed: int = 0, num_workers: int = 0,
                shuffle_train: bool = True) -> tuple[DataLoader, DataLoader, DataLoader]:
        """DataLoaders for (train, val, test); the train order is shuffled reproducibly from ``seed``."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
        gen = torch.Generator().manual_seed(seed)
        train = DataLoader(self.train, batch_size, shuffle=shuffle_train, generator=gen, num_workers=num_workers)
        val = DataLoader(self.val, batch_size * 2, num_workers=num_workers)
        test = DataLoader(self.test, batch_size * 2, num_workers=num_workers)
        return train, val, test

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation of a sample or batch (for plotting images or series in real units)."""
        if not self.normalized:
            return x
        c = len(self.mean)
        shape = [1] * x.dim()
        if c > 1:  # channel axis is the first of a sample, the second of a batch
            shape[x.dim() - len(self.input_shape)] = c
        mean = torch.tensor(self.mean, dtype=x.dtype).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype).view(shape)
        return x * std + mean

    def __repr__(self) -> str:
        kind = f"{len(self.classes)} classes" if self.classes else self.task
        return (f"DatasetSplits({self.name!r}: train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, x={tuple(self.input_shape)}, {kind})")


def stratified_split(labels: np.ndarray, test_size: int | float,
                     seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with class proportions preserved; fixed for a given seed."""
    idx = np.arange(len(labels))
    keep, held = train_test_split(idx, test_size=test_size, stratify=labels, random_state=seed)
    return np.sort(keep), np.sort(held)


def subsample(labels: np.ndarray, size: int | None, seed: int = SPLIT_SEED) -> np.ndarray:
    """Indices of a stratified subset of ``size`` samples (all indices when ``size`` is None)."""
    n = len(labels)
    if size is None:
        return np.arange(n)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= n:
        raise UsageError(f"train_size must be an int in 1..{n} (the full train split), got {size!r}")
    if size == n:
        return np.arange(n)
    counts = np.bincount(labels)
    if size < np.count_nonzero(counts):  # too few to hold every class: plain random subset
        return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    keep, _ = stratified_split(labels, n - size, seed)
    return keep


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) resized to (N, C, size, size) in [0, 1]: area averaging to shrink,
    bilinear to enlarge (e.g. 8x8 digits to 28x28 for a network trained on MNIST)."""
    if not isinstance(size, int) or isinstance(size, bool) or not 4 <= size <= 512:
        raise UsageError(f"image_size must be an int in 4..512, got {size!r}")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if size < x.shape[-1]:
        out = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    else:
        out = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return out.clamp(0.0, 1.0)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images (N, C, ...) scaled to [0, 1]."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    dims = [0] + list(range(2, x.dim()))
    return tuple(x.mean(dims).tolist()), tuple(x.std(dims).tolist())


def image_splits(name: str, x: torch.Tensor, y: torch.Tensor, parts: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                 classes: list[str], source: str, normalize: bool, augment: bool, train_size: int | None,
                 image_size: int | None = None, unused_to_val: bool = False,
                 info: dict[str, Any] | None = None) -> DatasetSplits:
    """Build a classification :class:`DatasetSplits` from (N, C, ...) samples and index arrays.

    ``unused_to_val`` appends the train images that ``train_size`` leaves out to the validation
    split: a larger, less noisy validation set for the same training cost.
    """
    if unused_to_val and train_size is None:
        raise UsageError("unused_to_val moves the train images that train_size leaves out to the validation split; "
                         f"{name} uses every train image unless you give train_size, so give one")
    train_idx, val_idx, test_idx = parts
    if image_size is not None:
        x = resize_images(x, image_size)
    keep = subsample(y[train_idx].numpy(), train_size)
    if unused_to_val:
        val_idx = np.concatenate([val_idx, np.delete(train_idx, keep)])
    train_idx = train_idx[keep]
    mean, std = channel_stats(x[train_idx])
    stats = (mean, std) if normalize else (None, None)
    transform = None
    if augment:
        from torchvision.transforms import v2

        transform = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
    return DatasetSplits(
        name=name,
        train=TensorDataset(x[train_idx], y[train_idx], *stats, transform=transform),
        val=TensorDataset(x[val_idx], y[val_idx], *stats),
        test=TensorDataset(x[test_idx], y[test_idx], *stats),
        task="classification", classes=classes, input_shape=tuple(x.shape[1:]),
        mean=mean, std=std, normalized=normalize, source=source,
        info={**(info or {}), "indices": {"train": train_idx, "val": val_idx, "test": test_idx}},
    )
