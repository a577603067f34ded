"""The one training loop every notebook and every NAS evaluation uses: fit, evaluate, predict."""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..checkpoint import START_OVER, check_resumable, load_checkpoint, save_checkpoint
from ..errors import CheckpointError, UnknownNameError
from ..runtime import derive_seed, get_device, seed_everything
from .history import History

Data = DataLoader | Dataset
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("cosine",)
MONITORS = ("val_loss", "val_acc", "train_loss", "train_acc")
FORMAT = "dfl_toolkit.fit/2"


def _as_loader(data: Data, batch_size: int, shuffle: bool, name: str) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        gen = torch.Generator() if shuffle else None  # reseeded every epoch by fit
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=gen)
    hint = " (pass data.train / data.val, or the loaders from data.loaders())" if hasattr(data, "loaders") else ""
    raise TypeError(f"{name} must be a torch DataLoader or Dataset, got {type(data).__name__}{hint}")


def _to_device(x: torch.Tensor | Sequence[torch.Tensor], device: torch.device) -> torch.Tensor | tuple:
    """A batch's inputs on ``device``: one tensor, or a tuple of tensors (a model with several inputs)."""
    return tuple(t.to(device) for t in x) if isinstance(x, (tuple, list)) else x.to(device)


def _forward(model: nn.Module, x: torch.Tensor | tuple) -> Any:
    """``model(x)``, or ``model(*x)`` when the data yields several inputs (e.g. source and target tokens)."""
    return model(*x) if isinstance(x, tuple) else model(x)


def _default_loss(y: torch.Tensor) -> nn.Module:
    return nn.MSELoss() if y.is_floating_point() else nn.CrossEntropyLoss()


def run_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module | None, device: torch.device,
              optimizer: torch.optim.Optimizer | None = None, grad_clip: float | None = None,
              scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> dict[str, float]:
    """One pass over ``loader``: trains when an optimizer is given (stepping ``scheduler`` after every
    batch), else only measures.

    Each batch is ``(x, y)``: ``x`` a tensor, or a tuple of tensors passed as ``model(*x)``; ``y`` a
    tensor; the loss is ``loss_fn(model(x), y)``, so a model may return anything its loss understands.

    Returns mean ``loss`` and, for integer targets, ``acc``; ``loss`` is nan if training diverged.
    """
    training = optimizer is not None
    model.train(training)
    total_loss, correct, seen, classify = 0.0, 0, 0, False
    with torch.set_grad_enabled(training):
        for x, y in loader:
            x, y = _to_device(x, device), y.to(device)
            loss_fn = loss_fn or _default_loss(y)
            out = _forward(model, x)
            loss = loss_fn(out, y)
            if not torch.isfinite(loss):
                return {"loss": math.nan}
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
            n = len(y)
            total_loss += loss.item() * n
            seen += n
            if isinstance(out, torch.Tensor) and not y.is_floating_point() and out.dim() == 2:
                classify = True
                correct += (out.argmax(1) == y).sum().item()
    if seen == 0:
        raise ValueError("the data is empty: no batch to run")
    return {"loss": total_loss / seen, **({"acc": correct / seen} if classify else {})}


def _make_optimizer(optimizer: str | torch.optim.Optimizer, model: nn.Module, lr: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = model.parameters()
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise UnknownNameError("optimizer", optimizer, OPTIMIZERS + ("a torch.optim.Optimizer",))


def _check_args(epochs: int, lr: float, monitor: str, early_stopping: int | None, scheduler: str | None,
                has_val: bool) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if monitor not in MONITORS:
        raise UnknownNameError("monitor", monitor, MONITORS)
    if monitor.startswith("val") and not has_val and early_stopping is not None:
        raise ValueError(f"early stopping on {monitor!r} needs val data; pass val=... or monitor='train_loss'")
    if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
        raise ValueError(f"early_stopping is the patience in epochs: a positive int or None, got {early_stopping!r}")
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise UnknownNameError("scheduler", scheduler, SCHEDULERS + ("None",))


def fit(model: nn.Module, train: Data, val: Data | None = None, *, epochs: int = 10, lr: float = 1e-3,
        optimizer: str | torch.optim.Optimizer = "adam", weight_decay: float = 0.0, scheduler: str | None = None,
        loss_fn: nn.Module | None = None, batch_size: int = 64, device: str | torch.device | None = None,
        seed: int = 0, early_stopping: int | None = None, monitor: str = "val_loss",
        checkpoint: str | os.PathLike | None = None, resume: bool = True, progress: bool = True,
        callbacks: Sequence[Callable[[History], bool | None]] = (), grad_clip: float | None = None) -> History:
    """Train ``model`` and return its per-epoch :class:`History`.

    - Device: ``device`` or automatic (cuda > mps > cpu).
    - Repeatable: each epoch's shuffling and dropout are seeded from ``(seed, epoch)``; seed the
      model's initialisation yourself with :func:`seed_everything` before building it.
    - Early stopping: ``early_stopping=patience`` watches ``monitor`` and restores the best weights.
    - Checkpoints: with ``checkpoint=path`` the state is saved after every epoch (atomically);
      calling ``fit`` again with the same path resumes where it stopped and ends exactly as an
      uninterrupted run would; a checkpoint made with other settings (epochs, lr, ...) is refused, naming
      them. ``resume=False`` starts over (the policy of :mod:`dfl_toolkit.checkpoint`).
    - Divergence: a non-finite loss stops training and sets ``history.diverged`` (no exception).
    - ``callbacks``: each is called with the history after every epoch; returning True stops.
    - Loss: cross-entropy for integer targets, MSE for float targets, unless ``loss_fn`` is given.

    Example:
        >>> seed_everything(0)
        >>> model = ConvNet(in_channels=1, num_classes=10)
        >>> train_dl, val_dl, _ = get_dataset("digits").loaders(64)
        >>> history = fit(model, train_dl, val_dl, epochs=5)
        >>> history.plot()
    """
    _check_args(epochs, lr, monitor, early_stopping, scheduler, val is not None)
    train_dl = _as_loader(train, batch_size, True, "train")
    val_dl = None if val is None else _as_loader(val, batch_size * 2, False, "val")
    dev = get_device(device)
    model.to(dev)
    opt = _make_optimizer(optimizer, model, lr, weight_decay)
    # cosine decay to zero, stepped after every batch so that even a 3-epoch run ends with small steps
    steps = epochs * len(train_dl)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if scheduler == "cosine" else None
    history = History(monitor=monitor)
    best: dict[str, Any] = {"value": None, "state": None, "bad": 0}
    start = 0

    opt_name = optimizer if isinstance(optimizer, str) else type(optimizer).__name__
    config = {"epochs": epochs, "lr": lr, "optimizer": opt_name,
              "weight_decay": weight_decay, "scheduler": scheduler, "batch_size": train_dl.batch_size, "seed": seed,
              "early_stopping": early_stopping, "monitor": monitor, "grad_clip": grad_clip,
              "loss_fn": None if loss_fn is None else type(loss_fn).__name__}
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        check_resumable(state, FORMAT, config, checkpoint, "training run")
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint {checkpoint} was written for a different model or optimizer "
                                  f"({str(err).splitlines()[0][:200]}); {START_OVER}") from err
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        history = History.from_dict(state["history"])
        best = state["best"]
        start = state["epoch"]
        if state["finished"]:
            if best["state"] is not None and early_stopping is not None:
                model.load_state_dict(best["state"])
            return history

    sign = -1.0 if monitor.endswith("acc") else 1.0  # lower is better after multiplying by sign
    finished = False
    bar = _progress(start, epochs, progress)
    for epoch in range(start, epochs):
        seed_everything(derive_seed(seed, epoch))
        if train_dl.generator is not None:
            train_dl.generator.manual_seed(derive_seed(seed, epoch))
        t0 = time.perf_counter()
        record: dict[str, float] = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
        trained = run_epoch(model, train_dl, loss_fn, dev, opt, grad_clip, sched)
        record.update({f"train_{k}": v for k, v in trained.items()})
        if not math.isnan(record["train_loss"]) and val_dl is not None:
            record.update({f"val_{k}": v for k, v in run_epoch(model, val_dl, loss_fn, dev).items()})
        record["time"] = time.perf_counter() - t0
        history.records.append(record)
        if any(math.isnan(v) for v in record.values()):
            history.diverged = finished = True
        elif monitor in record:
            value = sign * record[monitor]
            if best["value"] is None or value < best["value"]:
                kept = copy.deepcopy(model.state_dict()) if early_stopping else None
                best = {"value": value, "state": kept, "bad": 0}
                history.best_epoch = epoch + 1
            else:
                best["bad"] += 1
            if early_stopping is not None and best["bad"] >= early_stopping:
                history.stopped_early = finished = True
        if any(cb(history) for cb in callbacks):
            finished = True
        finished = finished or epoch + 1 == epochs
        if bar is not None:
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.endswith(("loss", "acc"))}, refresh=False)
            bar.update(1)
        if checkpoint is not None:
            save_checkpoint({"format": FORMAT, "config": config, "epoch": epoch + 1, "model": model.state_dict(),
                             "optimizer": opt.state_dict(), "scheduler": None if sched is None else sched.state_dict(),
                             "history": history.to_dict(), "best": best, "finished": finished}, checkpoint)
        if finished:
            break
    if bar is not None:
        _close(bar, history)
    if early_stopping is not None and best["state"] is not None:
        model.load_state_dict(best["state"])
    return history


def _progress(start: int, epochs: int, enabled: bool):
    """A bar counting epochs (from ``start`` when resuming), or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(desc="epochs", initial=start, total=epochs, leave=True)


def _close(bar, history: History) -> None:
    """End the bar full (green in a notebook) when training ended normally, early stopping included; a
    diverged run keeps its partial, red bar: that one did fail."""
    if history.diverged:
        bar.set_description("epochs (diverged)", refresh=False)
    elif bar.n < bar.total:
        bar.set_description(f"epochs (stopped at {bar.n} of {bar.total})", refresh=False)
        bar.total = bar.n
    bar.close()


def evaluate(model: nn.Module, data: Data, *, loss_fn: nn.Module | None = None,
             device: str | torch.device | None = None, batch_size: int = 256) -> dict[str, float]:
    """Mean loss and (for classification) accuracy of ``model`` on ``data``.

    Example:
        >>> evaluate(model, data.test)
        {'loss': 0.08, 'acc': 0.975}
    """
    dev = get_device(device)
    model.to(dev)
    return run_epoch(model, _as_loader(data, batch_size, False, "data"), loss_fn, dev)


def predict(model: nn.Module, data: Data, *, device: str | torch.device | None = None, batch_size: int = 256,
            return_targets: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Model outputs (e.g. logits) for every sample of ``data``, on the CPU, in order.

    Example:
        >>> logits, y = predict(model, data.test, return_targets=True)
        >>> (logits.argmax(1) == y).float().mean()
    """
    dev = get_device(device)
    model.to(dev).eval()
    outs, ys = [], []
    with torch.no_grad():
        for x, y in _as_loader(data, batch_size, False, "data"):
            outs.append(_forward(model, _to_device(x, dev)).cpu())
            ys.append(y)
    if not outs:
        raise ValueError("the data is empty: nothing to predict")
    return (torch.cat(outs), torch.cat(ys)) if return_targets else torch.cat(outs)
