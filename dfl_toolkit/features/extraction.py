"""Named activations from any model: what each layer computes for a given input.

``extract_features(model, x, ["layer1", "layer4"])`` runs one forward pass and returns the outputs of
those layers. Module names (see :func:`list_layers`) are captured with forward hooks, which works for
every model (CNNs, ``nn.LSTM``, transformers); names of other operations in the traced graph (e.g. the
``add`` of a residual block) are captured with ``torchvision.models.feature_extraction`` when the model
can be traced by torch.fx. Hooks are always removed, also on error, and in-place operations (``ReLU(inplace=True)``)
are switched off during extraction so a captured tensor is never overwritten afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..errors import UnknownNameError, UsageError

CONTAINERS = (nn.ModuleList, nn.ModuleDict)  # they hold modules but are never called, so no hook on them fires


def list_layers(model: nn.Module, graph: bool = False) -> list[str]:
    """Names of the model's submodules in definition order (what :func:`extract_features` accepts);
    with ``graph=True``, the torch.fx node names too (only for traceable models).

    Example:
        >>> list_layers(torchvision.models.resnet18())[:4]
        ['conv1', 'bn1', 'relu', 'maxpool']
    """
    names = [name for name, _ in model.named_modules() if name]
    if graph:
        from torchvision.models.feature_extraction import get_graph_node_names

        _, nodes = get_graph_node_names(model)
        names += [n for n in nodes if n not in names]
    return names


@contextmanager
def _no_inplace(model: nn.Module) -> Iterator[None]:
    switched = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in switched:
        m.inplace = False
    try:
        yield
    finally:
        for m in switched:
            m.inplace = True



def extract_features(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *,
                     detach: bool = True) -> dict[str, Any]:
    """Outputs of ``layers`` for input ``x`` in one forward pass, as ``{name: tensor}`` in the order asked.

    A module whose output is a tuple (``nn.LSTM`` gives ``(output, (h, c))``) is returned as that tuple.
    ``detach=False`` keeps the autograd graph (for gradient-based explanations).

    Example:
        >>> feats = extract_features(model, images, ["features.block1", "features.block2"])
        >>> {k: v.shape for k, v in feats.items()}
    """
    if isinstance(layers, str):
        layers = [layers]
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules or not name]
    graph_names = []
    if unknown:
        try:
            graph_names = list_layers(model, graph=True)
        except Exception:  # noqa: BLE001 - untraceable model: only module names are valid
            graph_names = list_layers(model)
        bad = [name for name in unknown if name not in graph_names]
        if bad:
            raise UnknownNameError("layer", bad[0], graph_names, see="dfl.list_layers(model, graph=True)")
        return _extract_fx(model, x, layers, detach)
    captured: dict[str, Any] = {}

    def keep(name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            captured[name] = _copy(output, detach)
        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in layers]
    try:
        with _no_inplace(model), torch.set_grad_enabled(not detach):
            model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [name for name in layers if name not in captured]
    if missing:
        name = missing[0]
        children = [f"{name}.{child}" for child, _ in modules[name].named_children()][:3]
        why = (f"{type(modules[name]).__name__} only holds modules and is never called itself"
               if isinstance(modules[name], CONTAINERS) else "model.forward never calls it")
        raise UsageError(f"layer {name!r} did not run in model(x): {why}; ask for a layer that runs"
                         + (f", e.g. {', '.join(map(repr, children))}" if children else ""))
    return {name: captured[name] for name in layers}


def _copy(output: Any, detach: bool) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach().clone() if detach else output.clone()
    if isinstance(output, (tuple, list)):
        return type(output)(_copy(o, detach) for o in output)
    return output


def _extract_fx(model: nn.Module, x: torch.Tensor, layers: Sequence[str], detach: bool) -> dict[str, Any]:
    from torchvision.models.feature_extraction import create_feature_extractor

    with _no_inplace(model):
        extractor = create_feature_extractor(model, return_nodes=list(layers))
        out = extractor(x)
    return {name: _copy(out[name], detach) for name in layers}
