"""Where does the model look? Attribution maps through one call, with captum underneath.

``explain(model, x, target, method)`` returns a map with the shape of ``x`` (Grad-CAM is upsampled
to it). Methods: ``saliency`` (|gradient|, Simonyan et al. 2014), ``integrated_gradients``
(Sundararajan et al. 2017; its convergence delta comes back in ``info``), ``smoothgrad``
(Smilkov et al. 2017), ``gradcam`` (Selvaraju et al. 2017; needs ``layer``) and ``occlusion``
(Zeiler & Fergus 2014).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import UnknownNameError

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
    model.eval()
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
