"""Datasets that need one download (MNIST, Fashion-MNIST, CIFAR-10), cached in the data folder.

Files already on disk are used without any network. Otherwise the download host is probed
first with a hard deadline, so that without a network the call fails within seconds with a
message naming the offline datasets, instead of hanging. Set ``DFL_OFFLINE=1`` to never try.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetUnavailableError
from ..network import NetworkUnavailable, fetch
from ..runtime import data_dir
from .splits import DatasetSplits, image_splits, stratified_split

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR10_RECORD = 1 + 3 * 32 * 32  # one label byte, then 3x32x32 pixels, channel-major
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def _unavailable(name: str, root: Path, reason: str) -> DatasetUnavailableError:
    from .registry import list_datasets  # the registry imports this module's loaders

    offline = ", ".join(d.name for d in list_datasets(offline=True))
    return DatasetUnavailableError(
        f"cannot download {name!r} into {root}: {reason}.\n"
        f"Offline datasets that need no network: {offline}.\n"
        f"Or download it where you have a network (or on Colab) and copy the files into {root}, "
        f"or set DFL_DATA_DIR to a folder that already holds them.")


def ensure_files(name: str, root: Path, present: Callable[[], bool], url: str, download: Callable[[], None]) -> None:
    """Download with ``download()`` unless ``present()``; fail fast and clearly without a network."""
    if present():
        return
    try:
        fetch(url, download)
    except NetworkUnavailable as err:
        raise _unavailable(name, root, str(err)) from err
    if not present():
        raise _unavailable(name, root, "the download finished but the expected files are missing")


def _torchvision_mnist(cls_name: str, name: str, classes: list[str] | None, *, normalize: bool,
                       augment: bool, train_size: int | None, image_size: int | None) -> DatasetSplits:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    root = data_dir()
    raw = root / cls_name / "raw"

    def present() -> bool:
        return all((raw / os.path.splitext(f)[0]).exists() for f, _ in cls.resources)

    def download() -> None:
        cls(root, train=True, download=True)

    ensure_files(name, root, present, cls.mirrors[0], download)
    train, test = cls(root, train=True), cls(root, train=False)
    x = torch.cat([train.data, test.data]).unsqueeze(1)
    y = torch.cat([train.targets, test.targets]).long()
    n = len(train.targets)
    tr, va = stratified_split(train.targets.numpy(), 0.1)
    classes = classes or [str(i) for i in range(10)]
    return image_splits(name, x, y, (tr, va, np.arange(n, len(y))), classes=classes,
                        source=f"torchvision {cls_name}, downloaded to {root}", normalize=normalize,
                        augment=augment, train_size=train_size, image_size=image_size)


def load_mnist(*, normalize: bool = True, augment: bool = False, train_size: int | None = None,
                image_size: int | None = None) -> DatasetSplits:
    """Full MNIST via torchvision (download, ~12 MB). Splits: 54,000 / 6,000 (stratified) / official 10,000."""
    return _torchvision_mnist("MNIST", "mnist", None, normalize=normalize, augment=augment,
                              train_size=train_size, image_size=image_size)


def load_fashion_mnist(*, normalize: bool = True, augment: bool = False,
                       train_size: int | None = None, image_size: int | None = None) -> DatasetSplits:
    """Fashion-MNIST via torchvision (download, ~30 MB). Splits: 54,000 / 6,000 / official 10,000."""
    return _torchvision_mnist("FashionMNIST", "fashion_mnist", FASHION_CLASSES, normalize=normalize,
                              augment=augment, train_size=train_size, image_size=image_size)


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one file of the CIFAR-10 *binary* version: records of 1 label byte + 3,072 pixel bytes.

    The binary version is used because the Python version is pickled.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD:
        raise DatasetUnavailableError(
            f"{path} is not a CIFAR-10 binary batch (size {raw.size} is not a multiple of {CIFAR10_RECORD}); "
            f"delete {path.parent} and load again to re-download")
    raw = raw.reshape(-1, CIFAR10_RECORD)
    labels = raw[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DatasetUnavailableError(f"{path} has labels above 9: not a CIFAR-10 batch; delete it and re-download")
    return raw[:, 1:].reshape(-1, 3, 32, 32), labels


def load_cifar10(*, normalize: bool = True, augment: bool = False, train_size: int | None = None,
                image_size: int | None = None) -> DatasetSplits:
    """CIFAR-10 (binary version, download ~162 MB, MD5 checked). Splits: 45,000 / 5,000 / official 10,000."""
    from torchvision.datasets.utils import download_and_extract_archive

    root = data_dir()
    folder = root / CIFAR10_DIR
    files = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]

    def present() -> bool:
        return all((folder / f).exists() for f in files)

    def download() -> None:
        download_and_extract_archive(CIFAR10_URL, str(root), md5=CIFAR10_MD5, remove_finished=True)

    ensure_files("cifar10", root, present, CIFAR10_URL, download)
    parts = [read_cifar10_batch(folder / f) for f in files]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    n_train = sum(len(p[1]) for p in parts[:-1])
    tr, va = stratified_split(y[:n_train].numpy(), 0.1)
    return image_splits("cifar10", x, y, (tr, va, np.arange(n_train, len(y))), classes=CIFAR10_CLASSES,
                        source=f"CIFAR-10 (Krizhevsky 2009), binary version, downloaded to {root}",
                        normalize=normalize, augment=augment, train_size=train_size, image_size=image_size)
