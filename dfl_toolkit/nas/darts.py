"""Gradient-based NAS on the cell space: DARTS (Liu et al. 2019), first order, and two fixes.

One *supernet* holds every operation on every edge; edge (j<-i) outputs the mixture
``sum_k softmax(alpha[e])_k * op_k(node_i)``. Network weights w and architecture logits alpha are
trained in alternation: w on one half of the training data, alpha on the other (first-order: the
alpha gradient ignores how w would react). At the end each edge keeps its strongest operation.

Known failure: parameter-free ``skip_connect`` wins the softmax because it makes the supernet train
fast, not because the derived cell is good (skip collapse; NAS-Bench-201 reports DARTS at 54%).
Fixes implemented here:

- ``mode="gdas"`` (Dong & Yang 2019): each step samples ONE operation per edge with hard
  Gumbel-softmax (straight-through gradients), so operations must be good on their own.
- ``mode="darts-"`` (Chu et al. 2021): an auxiliary skip connection beside every edge, its weight
  decaying from 1 to 0, takes away skip's unfair advantage during training.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data import DatasetSplits
from ..errors import UnknownNameError
from ..runtime import seed_everything
from ..train.checkpoint import load_checkpoint, save_checkpoint
from .spaces.cell import EDGES, OPS, CellArch, ResidualReduction, make_op

MODES = ("darts", "gdas", "darts-")


class MixedOp(nn.Module):
    """Every operation of the space on one edge, combined with given weights."""

    def __init__(self, channels: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels) for name in OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        if hard:  # GDAS: only the sampled operation runs; its weight carries the gradient to alpha
            k = int(weights.argmax())
            return weights[k] * self.ops[k](x)
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class SearchCell(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(MixedOp(channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, aux_skip: float = 0.0,
                hard: bool = False) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[i], weights[e], hard) + aux_skip * nodes[i]
                             for e, (to, i) in enumerate(EDGES) if to == j))
        return nodes[3]


class SuperNet(nn.Module):
    """The NAS-Bench-201 skeleton with search cells that share one ``alpha`` (6 edges x 5 ops)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 8, cells_per_stage: int = 1,
                 stages: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.layers = nn.ModuleList()
        c = channels
        for s in range(stages):
            if s > 0:
                self.layers.append(ResidualReduction(c, c * 2))
                c *= 2
            self.layers.extend(SearchCell(c) for _ in range(cells_per_stage))
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(c, num_classes))
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS)))

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alpha"]

    def forward(self, x: torch.Tensor, weights: torch.Tensor, aux_skip: float = 0.0,
                hard: bool = False) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights, aux_skip, hard) if isinstance(layer, SearchCell) else layer(x)
        return self.head(x)


def derive(alpha: torch.Tensor) -> CellArch:
    """The discrete cell: on each edge the operation with the largest alpha, ``none`` excluded."""
    scores = alpha.detach().clone()
    scores[:, OPS.index("none")] = float("-inf")
    return tuple(OPS[i] for i in scores.argmax(1).tolist())


@dataclass
class DartsResult:
    """What a gradient-based search found, with the softmax of alpha after every epoch."""

    mode: str
    arch: CellArch
    alphas: list[list[list[float]]] = field(default_factory=list)  # epochs+1 x 6 edges x 5 ops (softmax)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def skip_share(self) -> list[float]:
        """Mean softmax weight of ``skip_connect`` over the edges, per epoch: rising = collapsing."""
        k = OPS.index("skip_connect")
        return [sum(edge[k] for edge in epoch) / len(epoch) for epoch in self.alphas]


def darts_search(data: DatasetSplits, *, mode: str = "darts", epochs: int = 20, channels: int = 8,
                 cells_per_stage: int = 1, batch_size: int = 64, w_lr: float = 0.025, alpha_lr: float = 3e-4,
                 tau: tuple[float, float] = (10.0, 0.1), warmup: int = 0, seed: int = 0,
                 checkpoint: str | os.PathLike | None = None,
                 progress: bool = True, callbacks: Sequence[Callable[[DartsResult], bool | None]] = ()) -> DartsResult:
    """Search the cell space by gradient descent on ``data.train`` (split in two halves: weights
    train on one, alpha on the other). For the first ``warmup`` epochs only the weights train (alpha
    stays uniform), so that alpha is judged on trained operations, not on random ones (PC-DARTS and
    others warm up for 15 of 50 epochs). ``checkpoint`` saves after every epoch and resumes;
    ``callbacks`` are called with the result after every epoch (True stops, e.g. early stopping).

    Example:
        >>> res = darts_search(get_dataset("mnist5k", image_size=14, train_size=1000), mode="gdas", epochs=10)
        >>> res.arch, res.skip_share()[-1]
    """
    if mode not in MODES:
        raise UnknownNameError("DARTS mode", mode, MODES)
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(warmup, int) or not 0 <= warmup < epochs:
        raise ValueError(f"warmup must be an int from 0 to epochs - 1 = {epochs - 1}, got {warmup!r}")
    seed_everything(seed)
    net = SuperNet(data.input_shape[0], data.num_classes, channels, cells_per_stage)
    n = len(data.train)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    w_part = torch.utils.data.Subset(data.train, perm[: n // 2].tolist())
    a_part = torch.utils.data.Subset(data.train, perm[n // 2:].tolist())
    w_dl = torch.utils.data.DataLoader(w_part, batch_size, shuffle=True, generator=gen, drop_last=True)
    a_dl = torch.utils.data.DataLoader(a_part, batch_size, shuffle=True, generator=gen, drop_last=True)
    w_opt = torch.optim.SGD(net.weight_parameters(), w_lr, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam([net.alpha], alpha_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, epochs, eta_min=1e-3)
    result = DartsResult(mode, derive(net.alpha), [torch.softmax(net.alpha, 1).tolist()])
    start = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        net.load_state_dict(state["net"])
        w_opt.load_state_dict(state["w_opt"])
        a_opt.load_state_dict(state["a_opt"])
        sched.load_state_dict(state["sched"])
        result = DartsResult(mode, tuple(state["arch"]), state["alphas"], state["history"], state["seconds"])
        start = len(result.history)
    loss_fn = nn.CrossEntropyLoss()
    from tqdm.auto import tqdm

    for epoch in tqdm(range(start, epochs), desc=f"{mode} search", disable=not progress, initial=start, total=epochs):
        t0 = time.perf_counter()
        seed_everything(seed * 100_003 + epoch)
        gen.manual_seed(seed * 100_003 + epoch)
        aux = max(0.0, 1.0 - epoch / epochs) if mode == "darts-" else 0.0
        hard = mode == "gdas"
        temp = tau[0] * (tau[1] / tau[0]) ** (epoch / max(1, epochs - 1))
        net.train()
        total, correct, seen = 0.0, 0, 0
        for (xw, yw), (xa, ya) in zip(w_dl, a_dl, strict=False):
            if epoch >= warmup:
                weights = _edge_weights(net.alpha, mode, temp)
                a_opt.zero_grad()
                loss_fn(net(xa, weights, aux, hard), ya).backward()
                a_opt.step()
            weights = _edge_weights(net.alpha, mode, temp).detach()
            w_opt.zero_grad()
            out = net(xw, weights, aux, hard)
            loss = loss_fn(out, yw)
            loss.backward()
            nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
            w_opt.step()
            total += loss.item() * len(yw)
            correct += (out.argmax(1) == yw).sum().item()
            seen += len(yw)
        sched.step()
        result.seconds += time.perf_counter() - t0
        result.alphas.append(torch.softmax(net.alpha, 1).tolist())
        result.history.append({"epoch": epoch + 1, "train_loss": total / seen, "train_acc": correct / seen,
                               "aux_skip": aux, "tau": temp})
        result.arch = derive(net.alpha)
        if checkpoint is not None:
            save_checkpoint({"net": net.state_dict(), "w_opt": w_opt.state_dict(), "a_opt": a_opt.state_dict(),
                             "sched": sched.state_dict(), "arch": list(result.arch), "alphas": result.alphas,
                             "history": result.history, "seconds": result.seconds}, checkpoint)
        if any(cb(result) for cb in callbacks):
            break
    return result


def _edge_weights(alpha: torch.Tensor, mode: str, temp: float) -> torch.Tensor:
    if mode == "gdas":
        return nn.functional.gumbel_softmax(alpha, tau=temp, hard=True)
    return torch.softmax(alpha, dim=1)


def darts_config(**kwargs: Any) -> dict[str, Any]:
    """The defaults of :func:`darts_search` updated with ``kwargs`` (for reports)."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(darts_search).parameters.items() if k != "data"}
    return {**defaults, **kwargs}
