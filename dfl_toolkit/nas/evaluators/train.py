"""Evaluate an architecture the honest way: build it, train it from scratch with ``fit``, measure it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ...data import DatasetSplits, get_dataset
from ...errors import UsageError
from ...runtime import check_threads, seed_everything, torch_threads
from ...train import evaluate, fit
from ..spaces.base import Arch, SearchSpace
from .cost import count_flops, count_params, measure_latency

DATA_DEFAULTS: dict[str, dict[str, Any]] = {"mnist5k": {"train_size": 2000, "image_size": 14}}  # the table's


@dataclass(frozen=True)
class TrainBudget:
    """How an architecture is trained: the same for every architecture of a search, so results compare.

    The defaults are the budget of the toolkit's benchmark table: MNIST-5k at 14x14, 2,000 training
    images, 3 epochs of SGD (lr 0.2, batch 128, cosine), a skeleton of 8 channels and 1 cell per stage.
    Chosen with ``benchmarks/benchmark_budget.py``: among the budgets tried that cost about 3-4 s per
    cell on one CPU core, it ranks good cells most consistently from one seed to the next.

    ``data_options`` left out means the dataset's own defaults (:data:`DATA_DEFAULTS`: the table's sizes for
    MNIST-5k, none for other datasets), so ``TrainBudget("digits")`` trains on all of digits at 8x8.

    Example:
        >>> TrainBudget("digits", epochs=5).data_options
        {}
    """

    dataset: str = "mnist5k"
    data_options: dict[str, Any] | None = None
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.2
    optimizer: str = "sgd"
    weight_decay: float = 5e-4
    skeleton: dict[str, Any] = field(default_factory=lambda: {"channels": 8, "cells_per_stage": 1})

    def __post_init__(self) -> None:
        """Bad values fail when the budget is made, not later as one failed trial per architecture."""
        if self.data_options is None:
            object.__setattr__(self, "data_options", dict(DATA_DEFAULTS.get(self.dataset, {})))
        if self.data_options.get("unused_to_val") and self.data_options.get("train_size") is None:
            raise UsageError(f"unused_to_val moves the train images that train_size leaves out to the validation "
                             f"split; {self.dataset} uses every train image unless you give train_size, so give one")
        counts = {"epochs": self.epochs, "batch_size": self.batch_size,
                  **{k: self.skeleton[k] for k in ("channels", "cells_per_stage") if k in self.skeleton}}
        for name, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not self.lr > 0:
            raise UsageError(f"lr must be a positive number, got {self.lr!r}")

    @classmethod
    def for_dataset(cls, dataset: str, **settings: Any) -> TrainBudget:
        """The budget for ``dataset`` with that dataset's default data options and any ``settings`` changed.

        Example:
            >>> TrainBudget.for_dataset("mnist1d", epochs=5)
        """
        return cls(dataset=dataset, **settings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainEvaluator:
    """Trains ``space.build(arch, **skeleton)`` on ``budget.dataset`` for ``budget.epochs`` and returns
    val/test accuracy, parameters, FLOPs, CPU latency and wall time. A run whose loss diverges is
    reported with ``failed=True`` instead of raising.

    Training uses ``threads`` torch threads (1 by default, as the benchmark build does), so a cell
    gives the same numbers on any machine and a real search can be checked against the table;
    ``threads=None`` uses the current setting (faster on a many-core machine, not repeatable across them).

    Example:
        >>> ev = TrainEvaluator(CellSpace(), TrainBudget(epochs=2))
        >>> ev(("nor_conv_3x3",) * 6, seed=0)["val_acc"]
    """

    name = "train"
    metrics = ("val_acc", "test_acc", "train_acc", "params", "flops", "latency", "train_time", "epochs")

    def __init__(self, space: SearchSpace, budget: TrainBudget | None = None, data: DatasetSplits | None = None,
                 threads: int | None = 1):
        check_threads(threads)  # here, not at the first evaluation
        self.space, self.budget, self.threads = space, budget or TrainBudget(), threads
        self.data = evaluation_data(space, self.budget, data)

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records about this evaluator: the budget and the data it trains on."""
        return {"evaluator": self.name, "budget": self.budget.to_dict(), "data": self.data.name,
                "threads": self.threads, "split_sizes": [len(self.data.train), len(self.data.val), len(self.data.test)]}

    def build(self, arch: Arch) -> torch.nn.Module:
        return build_network(self.space, arch, self.data, self.budget.skeleton)

    def __call__(self, arch: Arch, seed: int = 0) -> dict[str, Any]:
        with torch_threads(self.threads):
            return self._train(arch, seed)

    def _train(self, arch: Arch, seed: int) -> dict[str, Any]:
        b = self.budget
        seed_everything(seed)
        model = self.build(arch)
        train_dl, val_dl, test_dl = self.data.loaders(b.batch_size, seed=seed)
        t0 = time.perf_counter()
        history = fit(model, train_dl, val_dl, epochs=b.epochs, lr=b.lr, optimizer=b.optimizer,
                      weight_decay=b.weight_decay, scheduler="cosine", seed=seed, device="cpu", progress=False)
        train_time = time.perf_counter() - t0
        result = {"failed": history.diverged, "train_time": train_time, "epochs": len(history),
                  "params": count_params(model), "flops": count_flops(model, self.data.input_shape),
                  "latency": measure_latency(model, self.data.input_shape)}
        if history.diverged:
            return {**result, "val_acc": 0.0, "test_acc": 0.0, "train_acc": 0.0}
        return {**result, "train_acc": history.last["train_acc"], "val_acc": history.last["val_acc"],
                "test_acc": evaluate(model, test_dl, device="cpu")["acc"]}


def evaluation_data(space: SearchSpace, budget: TrainBudget, data: DatasetSplits | None = None) -> DatasetSplits:
    """The data an evaluator builds ``space``'s networks for: ``data``, or the budget's dataset. Checks, when the
    evaluator is made rather than as failed trials later, that the skeleton suits the space and the task is
    classification."""
    check_skeleton(space, budget.skeleton)
    data = data or get_dataset(budget.dataset, **budget.data_options)
    check_searchable(space, budget.skeleton, data)
    return data


def check_searchable(space: SearchSpace, skeleton: dict[str, Any], data: DatasetSplits) -> None:
    """A clear error unless ``data`` is a classification task whose inputs ``space`` builds networks for (its
    declared ``input_ranks``: images (C, H, W) for every space, 1-D signals (C, L) for the cell space). Used by
    every evaluator and by DARTS."""
    if data.task != "classification":
        raise UsageError(f"architecture search evaluates classifiers; {data.name!r} is {data.task}")
    rank = len(data.input_shape) - 1
    ranks = tuple(getattr(space, "input_ranks", (2,)))
    if rank not in ranks:
        names = {2: "images (C, H, W)", 1: "1-D signals (C, L)"}
        kinds = " or ".join(names.get(r, f"rank-{r} inputs") for r in sorted(ranks, reverse=True))
        hint = ": use an image dataset or the cell space" if rank == 1 else ""
        raise UsageError(f"the {space.name} space builds networks for {kinds}; {data.name!r} has inputs of shape "
                         f"{tuple(data.input_shape)}{hint}")
    if len(ranks) > 1 and skeleton.get("dims", rank) != rank:
        raise UsageError(f"skeleton dims={skeleton['dims']} does not fit {data.name!r}, whose inputs have shape "
                         f"{tuple(data.input_shape)} (dims={rank}); leave dims out and it follows the data")


def check_skeleton(space: SearchSpace, skeleton: dict[str, Any]) -> None:
    """A clear error for a skeleton option the space's ``build`` does not declare (``space.build_options``; e.g.
    the cell space's ``channels`` on the macro space), raised when an evaluator is made, not as failed trials."""
    accepted = getattr(space, "build_options", None)
    if accepted is None:
        return  # a space that declares nothing checks its own options
    unknown = sorted(set(skeleton) - set(accepted))
    if unknown:
        hint = (" (TrainBudget's default skeleton is the cell space's: pass TrainBudget(skeleton={}) or this "
                "space's own options)" if set(unknown) <= {"channels", "cells_per_stage"} else "")
        raise UsageError(f"unknown skeleton option {unknown[0]!r} for the {space.name} space; accepted: "
                         f"{', '.join(sorted(accepted))}{hint}")


def build_network(space: SearchSpace, arch: Arch, data: DatasetSplits, skeleton: dict[str, Any]) -> torch.nn.Module:
    """``space.build(arch, **skeleton)`` for ``data``'s input channels and number of classes, and for its input
    rank where the space builds for more than one (``dims``: 1-D signals such as MNIST-1D, or images)."""
    if len(getattr(space, "input_ranks", (2,))) > 1 and "dims" not in skeleton:
        skeleton = {**skeleton, "dims": len(data.input_shape) - 1}
    return space.build(arch, in_channels=data.input_shape[0], num_classes=data.num_classes, **skeleton)
