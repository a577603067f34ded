"""Zero-cost proxies: score an *untrained* network from one batch, in milliseconds instead of a training run.

Each proxy takes a freshly initialised model and a batch ``(x, y)`` and returns a float where
higher should mean "will train to higher accuracy". How far to trust them is an empirical question:
compare each with the plain parameter count (``params``), which few proxies beat reliably
(Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"; ZiCo, Li et al. 2023).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import UnknownNameError

Batch = tuple[torch.Tensor, torch.Tensor]


def params(model: nn.Module, batch: Batch) -> float:
    """Number of trainable parameters: the baseline every proxy must beat."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _weights(model: nn.Module) -> list[nn.Parameter]:
    """Conv and linear weights (what the proxies of the paper score)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear))]


def _loss_grads(model: nn.Module, batch: Batch) -> list[nn.Parameter]:
    x, y = batch
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    return [w for w in _weights(model) if w.grad is not None]


def grad_norm(model: nn.Module, batch: Batch) -> float:
    """Sum over layers of the L2 norm of the loss gradient."""
    model.train()
    return float(sum(w.grad.norm() for w in _loss_grads(model, batch)))


def snip(model: nn.Module, batch: Batch) -> float:
    """SNIP saliency (Lee et al. 2019): sum of ``|weight x gradient|`` of the loss."""
    model.train()
    return float(sum((w.detach() * w.grad).abs().sum() for w in _loss_grads(model, batch)))


def synflow(model: nn.Module, batch: Batch) -> float:
    """SynFlow (Tanaka et al. 2020): with all weights made positive and an all-ones input, the sum of
    ``|weight x d(sum of outputs)/d(weight)|``, in float64. Data-free; batch norm is used in eval mode (at init:
    identity, as NASLib's batch norm switched off) and the model is restored afterwards: weights, mode, precision."""
    x, _ = batch
    state = {k: v.clone() for k, v in model.state_dict().items()}
    training, dtype = model.training, next((p.dtype for p in model.parameters()), torch.float32)
    model.eval().double()
    try:
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        model.zero_grad(set_to_none=True)
        model(torch.ones((1, *x.shape[1:]), dtype=torch.float64)).sum().backward()
        return float(sum((w.detach() * w.grad).abs().sum() for w in _weights(model) if w.grad is not None))
    finally:
        model.to(dtype).train(training)
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)


def naswot(model: nn.Module, batch: Batch) -> float:
    """NASWOT (Mellor et al. 2021): how differently the ReLUs of the untrained network split the
    samples of a batch. Each sample gets a binary code (which units are active: input > 0; for ReLU6
    the saturation at 6 is ignored); the score is log|det K| where K counts the units on which two samples
    agree. Hooks are removed afterwards."""
    x, _ = batch
    n = len(x)
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    relus = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    if not relus:
        raise ValueError(f"NASWOT reads the on/off pattern of ReLU (or ReLU6) modules; {type(model).__name__} "
                         f"has none (a functional relu inside forward is not seen)")
    handles = [m.register_forward_pre_hook(hook) for m in relus]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


PROXIES: dict[str, Callable[[nn.Module, Batch], float]] = {
    "params": params, "grad_norm": grad_norm, "snip": snip, "synflow": synflow, "naswot": naswot}


def score(name: str, model: nn.Module, batch: Batch) -> float:
    """Compute proxy ``name`` (one of :data:`PROXIES`) of ``model`` on ``batch``.

    Example:
        >>> x, y = next(iter(train_dl))
        >>> score("synflow", space.build(arch, in_channels=1), (x, y))
    """
    if name not in PROXIES:
        raise UnknownNameError("proxy", name, PROXIES)
    return PROXIES[name](model, batch)
