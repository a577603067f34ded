"""One entry point for every dataset: ``get_dataset(name, **options)`` and ``list_datasets()``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import DataLoader

from ..errors import UnknownNameError
from . import bundled, online, pairs, scenes, text, timeseries
from .splits import DatasetSplits


@dataclass(frozen=True)
class DatasetInfo:
    """One row of :func:`list_datasets`."""

    name: str
    task: str
    input_shape: tuple[int, ...]
    sizes: tuple[int, int, int]
    offline: bool
    description: str


_LOADERS: dict[str, tuple[Callable[..., DatasetSplits], DatasetInfo]] = {}


def _register(loader: Callable[..., DatasetSplits], name: str, task: str, shape: tuple[int, ...],
              sizes: tuple[int, int, int], offline: bool) -> None:
    doc = (loader.__doc__ or "").strip().splitlines()[0]
    _LOADERS[name] = (loader, DatasetInfo(name, task, shape, sizes, offline, doc))


_register(bundled.load_mnist5k, "mnist5k", "classification", (1, 28, 28), (3500, 500, 1000), True)
_register(bundled.load_digits, "digits", "classification", (1, 8, 8), (1257, 180, 360), True)
_register(bundled.load_mnist1d, "mnist1d", "classification", (1, 40), (3500, 500, 1000), True)
_register(timeseries.load_sunspots, "sunspots", "regression", (20, 1), (202, 43, 44), True)
_register(timeseries.load_co2, "co2", "regression", (52, 1), (1562, 334, 336), True)
_register(text.load_rotten_tomatoes, "rotten_tomatoes", "classification", (48,), (6530, 1000, 1000), True)
_register(text.dependency_task, "dependency", "classification", (21,), (2800, 600, 600), True)
_register(scenes.load_mnist_scenes, "mnist_scenes", "detection", (1, 64, 64), (3000, 500, 1000), True)
_register(pairs.load_number_words, "number_words", "translation", (9,), (3000, 300, 500), True)
_register(online.load_mnist, "mnist", "classification", (1, 28, 28), (54000, 6000, 10000), False)
_register(online.load_fashion_mnist, "fashion_mnist", "classification", (1, 28, 28), (54000, 6000, 10000), False)
_register(online.load_cifar10, "cifar10", "classification", (3, 32, 32), (45000, 5000, 10000), False)


def list_datasets(offline: bool | None = None) -> list[DatasetInfo]:
    """Every dataset :func:`get_dataset` accepts; ``offline=True`` keeps those needing no download.

    Sizes are (train, val, test) with default options.

    Example:
        >>> [d.name for d in list_datasets(offline=True)]
        ['mnist5k', 'digits', 'mnist1d', 'sunspots', 'co2', 'rotten_tomatoes', 'dependency', 'mnist_scenes',
         'number_words']
    """
    return [info for _, info in _LOADERS.values() if offline is None or info.offline == offline]


def dataset_options(name: str) -> dict[str, object]:
    """The options ``get_dataset(name, ...)`` accepts, with their defaults."""
    loader = _lookup(name)
    return {p.name: p.default for p in inspect.signature(loader).parameters.values()}


def _lookup(name: str) -> Callable[..., DatasetSplits]:
    if not isinstance(name, str) or name.lower() not in _LOADERS:
        raise UnknownNameError("dataset", name, _LOADERS)
    return _LOADERS[name.lower()][0]


def get_dataset(name: str, **options: object) -> DatasetSplits:
    """Load a dataset by name as fixed train/val/test splits (see :func:`list_datasets`).

    Common options: ``normalize`` (default True), ``train_size`` (a stratified subset of the
    train split, e.g. for quick mode or label-efficiency curves), ``augment`` (random affine on
    train images); time series take ``window`` and ``horizon``.

    Example:
        >>> data = get_dataset("mnist5k", train_size=1000)
        >>> data.classes[:3], len(data.train)
        (['0', '1', '2'], 1000)
    """
    loader = _lookup(name)
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UnknownNameError(f"option for dataset {name!r}:", unknown[0], accepted)
    return loader(**options)


def get_loaders(name: str, batch_size: int = 64, *, seed: int = 0,
                **options: object) -> tuple[DataLoader, DataLoader, DataLoader]:
    """``get_dataset(name, **options).loaders(batch_size, seed=seed)`` in one call.

    Example:
        >>> train_dl, val_dl, test_dl = get_loaders("digits", batch_size=32)
    """
    return get_dataset(name, **options).loaders(batch_size, seed=seed)
