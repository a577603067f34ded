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
- ``select="perturbation"`` (DARTS-PT, Wang et al. 2021) changes how the cell is read off the trained
  supernet instead of how it is trained: alpha's magnitude need not say how much an operation helps,
  so each edge keeps the operation whose *removal* hurts the supernet's accuracy most.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...checkpoint import START_OVER, check_resumable, load_checkpoint, save_checkpoint
from ...data import DatasetSplits
from ...errors import CheckpointError, UnknownNameError
from ...runtime import derive_seed, seed_everything
from ..evaluators.train import check_searchable
from ..spaces.cell import EDGES, OPS, CellArch, CellSpace, ResidualReduction, make_head, make_op, make_stem

FORMAT = "dfl_toolkit.darts/1"
MODES = ("darts", "gdas", "darts-")
SELECTIONS = ("alpha", "perturbation")


class MixedOp(nn.Module):
    """Every operation of the space on one edge, combined with given weights."""

    def __init__(self, channels: int, dims: int = 2):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels, dims) for name in OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        if hard:  # GDAS: only the sampled operation runs; its weight carries the gradient to alpha
            k = int(weights.argmax())
            return weights[k] * self.ops[k](x)
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class SearchCell(nn.Module):
    def __init__(self, channels: int, dims: int = 2):
        super().__init__()
        self.edges = nn.ModuleList(MixedOp(channels, dims) for _ in EDGES)

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
                 stages: int = 3, dims: int = 2):
        super().__init__()
        self.stem = make_stem(in_channels, channels, dims)
        self.layers = nn.ModuleList()
        c = channels
        for s in range(stages):
            if s > 0:
                self.layers.append(ResidualReduction(c, c * 2, dims))
                c *= 2
            self.layers.extend(SearchCell(c, dims) for _ in range(cells_per_stage))
        self.head = make_head(c, num_classes, dims)
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
    alpha_arch: CellArch | None = None  # the cell alpha's magnitudes pick (= arch unless select="perturbation")
    selection_seconds: float = 0.0  # of ``seconds``, the part spent reading the cell off (perturbation: tests, tuning)
    selection: list[dict[str, Any]] = field(default_factory=list)  # perturbation: per edge, acc without each op

    def skip_share(self) -> list[float]:
        """Mean softmax weight of ``skip_connect`` over the edges, per epoch: rising = collapsing."""
        k = OPS.index("skip_connect")
        return [sum(edge[k] for edge in epoch) / len(epoch) for epoch in self.alphas]


def darts_search(data: DatasetSplits, *, mode: str = "darts", epochs: int = 20, channels: int = 8,
                 cells_per_stage: int = 1, batch_size: int = 64, w_lr: float = 0.025, alpha_lr: float = 3e-4,
                 tau: tuple[float, float] = (10.0, 0.1), warmup: int = 0, select: str = "alpha",
                 tune_epochs: int | None = None, seed: int = 0, checkpoint: str | os.PathLike | None = None,
                 resume: bool = True, progress: bool = True,
                 callbacks: Sequence[Callable[[DartsResult], bool | None]] = ()) -> DartsResult:
    """Search the cell space by gradient descent on ``data.train`` (split in two halves: weights
    train on one, alpha on the other). For the first ``warmup`` epochs only the weights train (alpha
    stays uniform), so that alpha is judged on trained operations, not on random ones (PC-DARTS and
    others warm up for 15 of 50 epochs). ``select`` reads the cell off the trained supernet: ``"alpha"``
    keeps each edge's largest alpha, ``"perturbation"`` the operation whose removal costs the most
    accuracy on the alpha half (see :func:`perturbation_select`), tuning the weights for ``tune_epochs``
    (default ``epochs // 20``, as the paper's 5 after 100) after each edge is fixed. ``checkpoint`` saves
    the supernet after every epoch and resumes (a supernet trained with other settings is refused;
    ``resume=False`` starts over; the selection may differ, so one supernet can be read both ways);
    ``callbacks`` are called with the result after every epoch (True stops,
    e.g. early stopping).

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
    if select not in SELECTIONS:
        raise UnknownNameError("DARTS selection", select, SELECTIONS)
    if tune_epochs is not None and (not isinstance(tune_epochs, int) or tune_epochs < 0):
        raise ValueError(f"tune_epochs must be an int >= 0 (epochs of tuning per fixed edge), got {tune_epochs!r}")
    if select == "perturbation" and mode == "gdas":
        raise ValueError("select='perturbation' needs a supernet trained on the mixture of all operations; GDAS "
                         "trains one sampled operation at a time, so use select='alpha' with mode='gdas'")
    check_searchable(CellSpace(), {}, data)
    seed_everything(seed)
    net = SuperNet(data.input_shape[0], data.num_classes, channels, cells_per_stage, dims=len(data.input_shape) - 1)
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
    config = {"mode": mode, "epochs": epochs, "channels": channels, "cells_per_stage": cells_per_stage,
              "batch_size": batch_size, "w_lr": w_lr, "alpha_lr": alpha_lr, "tau": list(tau), "warmup": warmup,
              "seed": seed, "data": data.name, "train_size": n, "input_shape": list(data.input_shape)}
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        check_resumable(state, FORMAT, config, checkpoint, "DARTS search")
        try:
            net.load_state_dict(state["net"])
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(f"checkpoint {checkpoint} holds another supernet; {START_OVER}") from err
        w_opt.load_state_dict(state["w_opt"])
        a_opt.load_state_dict(state["a_opt"])
        sched.load_state_dict(state["sched"])
        result = DartsResult(mode, tuple(state["arch"]), state["alphas"], state["history"], state["seconds"])
        start = len(result.history)
    from tqdm.auto import tqdm

    bar = tqdm(desc=f"{mode} search", disable=not progress, initial=start, total=epochs)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        seed_everything(derive_seed(seed, epoch))
        gen.manual_seed(derive_seed(seed, epoch))
        aux = max(0.0, 1.0 - epoch / epochs) if mode == "darts-" else 0.0
        hard = mode == "gdas"
        temp = tau[0] * (tau[1] / tau[0]) ** (epoch / max(1, epochs - 1))
        net.train()
        total, correct, seen = 0.0, 0, 0
        for (xw, yw), (xa, ya) in zip(w_dl, a_dl, strict=False):
            if epoch >= warmup:
                weights = _edge_weights(net.alpha, mode, temp)
                a_opt.zero_grad()
                nn.functional.cross_entropy(net(xa, weights, aux, hard), ya).backward()
                a_opt.step()
            weights = _edge_weights(net.alpha, mode, temp).detach()
            out, loss = _weight_step(net, w_opt, xw, yw, weights, aux, hard)
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
            save_checkpoint({"format": FORMAT, "config": config, "net": net.state_dict(),
                             "w_opt": w_opt.state_dict(), "a_opt": a_opt.state_dict(),
                             "sched": sched.state_dict(), "arch": list(result.arch), "alphas": result.alphas,
                             "history": result.history, "seconds": result.seconds}, checkpoint)
        bar.update(1)
        if any(cb(result) for cb in callbacks):
            bar.total = bar.n  # stopped by a callback (e.g. early stopping): a normal end, not a failure
            break
    bar.close()
    result.alpha_arch = result.arch
    if select == "perturbation":
        seed_everything(derive_seed(seed, epochs))  # as if one more epoch: a resumed run reselects the same cell
        gen.manual_seed(derive_seed(seed, epochs))
        tune_opt = torch.optim.SGD(net.weight_parameters(), w_lr / 10, momentum=0.9, weight_decay=3e-4)

        def tune(weights: torch.Tensor) -> None:  # DARTS-PT: 5 epochs per step after a 100-epoch search
            for _ in range(max(1, epochs // 20) if tune_epochs is None else tune_epochs):
                for x, y in w_dl:
                    _weight_step(net, tune_opt, x, y, weights)

        t0 = time.perf_counter()
        result.arch, result.selection = perturbation_select(net, torch.utils.data.DataLoader(a_part, 250), tune,
                                                            seed)
        result.selection_seconds = time.perf_counter() - t0
        result.seconds += result.selection_seconds  # the selection's evaluations and tuning are search cost too
    return result


def _weight_step(net: SuperNet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                 weights: torch.Tensor, aux: float = 0.0, hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    net.train()
    opt.zero_grad()
    out = net(x, weights, aux, hard)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
    opt.step()
    return out, loss


def perturbation_select(net: SuperNet, data: torch.utils.data.DataLoader,
                        tune: Callable[[torch.Tensor], None] | None = None, seed: int = 0
                        ) -> tuple[CellArch, list[dict[str, Any]]]:
    """DARTS-PT's selection (Wang et al. 2021, simplified: alpha stays fixed while the weights are tuned,
    where the paper keeps training it, and ``none`` is never kept): visit the edges in a random order; on
    each, remove one operation at a time from the mixture and measure the supernet's accuracy on
    ``data``; keep the operation whose removal hurts most (ties: the larger loss) and fix the edge to it.
    Fixing an edge changes what the layers after it receive, so ``tune(weights)`` retrains the network
    weights with the new edge weights before the next edge is decided (without it, the later decisions
    are made on a broken supernet). Changes ``net``. Returns the cell and, per edge, the accuracy without
    each operation. On small held-out data these accuracies differ by a few images: the choice is noisy.

    Example:
        >>> arch, log = perturbation_select(supernet, DataLoader(held_out, 250), tune=retrain_weights)
    """
    weights = torch.softmax(net.alpha.detach(), 1)
    candidates = [k for k, name in enumerate(OPS) if name != "none"]
    order = torch.randperm(len(EDGES), generator=torch.Generator().manual_seed(seed)).tolist()
    chosen: dict[int, int] = {}
    log = []
    for e in order:
        scores = {}
        for k in candidates:
            w = weights.clone()
            w[e, k] = 0.0
            scores[OPS[k]] = _accuracy_and_loss(net, data, w)
        best = min(scores, key=lambda name: (scores[name][0], -scores[name][1]))
        chosen[e] = OPS.index(best)
        weights[e] = nn.functional.one_hot(torch.tensor(chosen[e]), len(OPS)).float()
        log.append({"edge": e, "chosen": best, "acc_without": {name: acc for name, (acc, _) in scores.items()}})
        if tune is not None and len(chosen) < len(EDGES):
            tune(weights)
    return tuple(OPS[chosen[e]] for e in range(len(EDGES))), log


@torch.no_grad()
def _accuracy_and_loss(net: SuperNet, data: torch.utils.data.DataLoader, weights: torch.Tensor) -> tuple[float, float]:
    # train-mode BN (batch statistics), as DARTS-PT does: the running statistics were collected for the
    # full mixture and do not fit a supernet with an operation taken out (they still update: harmless,
    # since the supernet only ever runs in train mode)
    net.train()
    correct, loss, seen = 0, 0.0, 0
    for x, y in data:
        out = net(x, weights)
        correct += (out.argmax(1) == y).sum().item()
        loss += nn.functional.cross_entropy(out, y, reduction="sum").item()
        seen += len(y)
    return correct / seen, loss / seen


def _edge_weights(alpha: torch.Tensor, mode: str, temp: float) -> torch.Tensor:
    if mode == "gdas":
        return nn.functional.gumbel_softmax(alpha, tau=temp, hard=True)
    return torch.softmax(alpha, dim=1)
