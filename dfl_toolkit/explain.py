"""Where does the model look? Attribution maps through one call, with captum underneath.

``explain(model, x, target, method)`` returns a map with the shape of ``x`` (Grad-CAM is upsampled
to it). Methods: ``saliency`` (``|gradient|``, Simonyan et al. 2014), ``integrated_gradients``
(Sundararajan et al. 2017; its convergence delta comes back in ``info``), ``smoothgrad``
(Smilkov et al. 2017), ``gradcam`` (Selvaraju et al. 2017; needs ``layer``) and ``occlusion``
(Zeiler & Fergus 2014).

Two sanity checks say whether a map can be trusted: :func:`randomization_test` (Adebayo et al.
2018: a faithful map must change when the model's weights are randomised) and
:func:`deletion_insertion` (Petsiuk et al. 2018: deleting the pixels a faithful map ranks first
must hurt the prediction sooner than deleting pixels in random order).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import UnknownNameError
from .runtime import eval_mode

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")


def explain(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor, method: str = "saliency", *,
            layer: str | None = None, baseline: torch.Tensor | float = 0.0, n_steps: int = 50, samples: int = 20,
            noise: float = 0.15, window: int = 4, seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Attribution of ``model``'s ``target`` logit to each input element of ``x`` (a batch).

    Returns ``(attribution, info)``; ``info["delta"]`` is integrated gradients' completeness error
    (sum of attributions minus (F(x) - F(baseline))) per sample.

    Example:
        >>> attr, info = explain(model, images, target=labels, method="integrated_gradients")
        >>> attr.shape == images.shape, info["delta"].abs().max()
    """
    from captum.attr import (
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )

    if method not in METHODS:
        raise UnknownNameError("attribution method", method, METHODS)
    with eval_mode(model):
        info: dict[str, Any] = {}
        x = x.detach().clone().requires_grad_()
        with torch.enable_grad():
            if method == "saliency":
                attr = Saliency(model).attribute(x, target=target, abs=True)
            elif method == "integrated_gradients":
                base = torch.full_like(x, baseline) if isinstance(baseline, (int, float)) else baseline
                attr, delta = IntegratedGradients(model).attribute(x, baselines=base, target=target, n_steps=n_steps,
                                                                   return_convergence_delta=True)
                info["delta"] = delta.detach()
            elif method == "smoothgrad":
                torch.manual_seed(seed)
                sigma = noise * float(x.detach().max() - x.detach().min())
                attr = NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=samples,
                                                              stdevs=sigma, target=target, abs=True)
            elif method == "gradcam":
                modules = dict(model.named_modules())
                if layer not in modules or not layer:
                    raise UnknownNameError("layer", layer, [n for n in modules if n])
                cam = LayerGradCam(model, modules[layer]).attribute(x, target=target, relu_attributions=True)
                info["cam"] = cam.detach()
                attr = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
                attr = attr.expand_as(x)
            else:
                c = x.shape[1]
                attr = Occlusion(model).attribute(x, target=target, sliding_window_shapes=(c, window, window),
                                                  strides=(c, max(1, window // 2), max(1, window // 2)), baselines=0.0)
    return attr.detach(), info


def _heat(attr: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) attribution -> (N, H*W) importance per pixel (absolute value summed over channels)."""
    return attr.abs().sum(dim=1).flatten(1) if attr.dim() == 4 else attr.abs().flatten(1)


def randomization_test(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor, method: str = "saliency", *,
                       seed: int = 0, **options: Any) -> list[tuple[str, float]]:
    """Model-randomization sanity check (Adebayo et al. 2018), cascading from the output layer down.

    Re-initialises the weights of one more conv/linear layer at a time, from the top, and reports
    the Spearman rank correlation between the original map and the map of the randomised model
    (mean over the batch). A map that explains the *model* falls well below 1 as layers are
    randomised; one that stays near 1 only shows the input (like an edge detector would).
    The model itself is not changed (a copy is randomised).

    Example:
        >>> for layer, rho in randomization_test(model, images, labels, "saliency"):
        ...     print(f"{layer:20s} {rho:.2f}")
    """
    from scipy.stats import spearmanr

    def mean_rank_corr(a: torch.Tensor, b: torch.Tensor) -> float:
        with warnings.catch_warnings():  # an all-zero map (e.g. Grad-CAM of a dead class) has no ranks: skip it
            warnings.simplefilter("ignore")
            rhos = [spearmanr(u.numpy(), v.numpy()).statistic for u, v in zip(_heat(a), _heat(b), strict=True)]
            return float(np.nanmean(rhos)) if not np.isnan(rhos).all() else float("nan")

    original, _ = explain(model, x, target, method, seed=seed, **options)
    randomized = copy.deepcopy(model)
    layers = [(n, m) for n, m in randomized.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear))]
    torch.manual_seed(seed)
    result = []
    for name, module in reversed(layers):
        module.reset_parameters()
        attr, _ = explain(randomized, x, target, method, seed=seed, **options)
        result.append((name, mean_rank_corr(original, attr)))
    return result


@dataclass
class DeletionInsertion:
    """Curves of the target probability as pixels are deleted (or inserted) in a map's order.

    ``fractions`` of pixels changed; ``deletion``/``insertion`` follow the map, ``random_*`` a random
    order (mean over the batch and ``repeats`` random orders). AUCs are the mean of each curve:
    a faithful map has a *lower* deletion AUC and a *higher* insertion AUC than random.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray

    def auc(self, curve: str) -> float:
        y = getattr(self, curve)
        return float(((y[1:] + y[:-1]) / 2 * np.diff(self.fractions)).sum())  # trapezoid rule

    def summary(self) -> dict[str, float]:
        return {name: round(self.auc(name), 4) for name in
                ("deletion", "random_deletion", "insertion", "random_insertion")}


def deletion_insertion(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor, attribution: torch.Tensor, *,
                       steps: int = 20, baseline: float = 0.0, repeats: int = 3, seed: int = 0) -> DeletionInsertion:
    """Deletion and insertion curves (Petsiuk et al. 2018) of ``attribution`` against a random order.

    Deletion replaces the most important pixels first by ``baseline`` and watches the target
    probability fall; insertion starts from the baseline image and puts the most important pixels
    back first. Pixels are ranked by the absolute attribution summed over channels.

    Example:
        >>> attr, _ = explain(model, images, labels, "integrated_gradients")
        >>> deletion_insertion(model, images, labels, attr).summary()
    """
    if attribution.shape[0] != x.shape[0] or attribution.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"attribution must match the images in batch size and height/width: "
                         f"got {tuple(attribution.shape)} for images {tuple(x.shape)}")
    n, pixels = x.shape[0], x.shape[-2] * x.shape[-1]
    targets = torch.as_tensor(target).expand(n) if torch.as_tensor(target).dim() == 0 else torch.as_tensor(target)
    fractions = np.linspace(0, 1, steps + 1)

    def curves(order: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(pixels).expand(n, -1))  # rank[i, p] = position of pixel p
        deletion, insertion = [], []
        with torch.no_grad(), eval_mode(model):
            for f in fractions:
                first = (rank < round(f * pixels)).view(n, 1, *x.shape[-2:])  # the top-f pixels
                for images, out in ((torch.where(first, baseline, x), deletion),
                                    (torch.where(first, x, baseline), insertion)):
                    probs = model(images).softmax(dim=1)[torch.arange(n), targets]
                    out.append(probs.mean().item())
        return np.array(deletion), np.array(insertion)

    deletion, insertion = curves(_heat(attribution.detach()).argsort(dim=1, descending=True))
    generator = torch.Generator().manual_seed(seed)
    random = [curves(torch.stack([torch.randperm(pixels, generator=generator) for _ in range(n)]))
              for _ in range(repeats)]
    return DeletionInsertion(fractions, deletion, insertion, np.mean([r[0] for r in random], axis=0),
                             np.mean([r[1] for r in random], axis=0))
