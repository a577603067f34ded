"""A macro search space of MobileNetV2 / EfficientNet-style networks, and compound scaling.

Per stage the search picks depth (blocks), width (channels), kernel size and expansion ratio of
inverted-residual (MBConv) blocks (Sandler et al. 2018; Tan & Le 2019). The first block of every
stage after the first halves the resolution. ``build`` also takes ``width_mult`` and
``depth_mult``, so a found network can be scaled up the EfficientNet way (:func:`compound_scaling`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ...errors import UsageError
from .base import Arch, CategoricalSpace

DEPTHS, WIDTHS, KERNELS, EXPANSIONS = (1, 2, 3), (8, 16, 24, 32), (3, 5), (1, 3, 6)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, with a skip when shapes allow."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int):
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(), nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MacroSpace(CategoricalSpace):
    """Per stage: depth, width, kernel, expansion. Three stages: (3*4*2*3)**3 = 373,248 networks.

    Example:
        >>> space = MacroSpace()
        >>> arch = space.sample(random.Random(0))
        >>> space.to_str(arch)
        'd3-w24-k3-e1|d1-w8-k3-e6|d2-w32-k5-e3'
    """

    name = "macro_mbconv"
    build_options = ("width_mult", "depth_mult", "stem")
    input_ranks = (2,)

    def __init__(self, stages: int = 3, depths: Sequence[int] = DEPTHS, widths: Sequence[int] = WIDTHS,
                 kernels: Sequence[int] = KERNELS, expansions: Sequence[int] = EXPANSIONS):
        self.stages = stages
        self.choices = []
        for s in range(1, stages + 1):
            self.choices += [(f"stage{s}.depth", tuple(depths)), (f"stage{s}.width", tuple(widths)),
                             (f"stage{s}.kernel", tuple(kernels)), (f"stage{s}.expansion", tuple(expansions))]

    def stage_settings(self, arch: Arch) -> list[tuple[int, int, int, int]]:
        arch = self.validate(arch)
        return [tuple(arch[4 * s: 4 * s + 4]) for s in range(self.stages)]

    def to_str(self, arch: Arch) -> str:
        return "|".join(f"d{d}-w{w}-k{k}-e{e}" for d, w, k, e in self.stage_settings(arch))

    def from_str(self, text: str) -> Arch:
        try:
            parts = [p.split("-") for p in text.split("|")]
            arch = tuple(int(item[1:]) for part in parts for item in part)
        except (ValueError, IndexError, AttributeError) as err:
            raise UsageError(f"cannot parse {text!r}: expected stages like 'd2-w16-k3-e6|d1-w24-k5-e3|...'") from err
        return self.validate(arch)

    def build(self, arch: Arch, *, in_channels: int = 3, num_classes: int = 10, width_mult: float = 1.0,
              depth_mult: float = 1.0, stem: int = 8) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem),
                                   nn.ReLU6()]
        c = stem
        for s, (depth, width, kernel, expansion) in enumerate(self.stage_settings(arch)):
            c_out = max(4, int(round(width * width_mult / 4)) * 4)
            for b in range(math.ceil(depth * depth_mult)):
                layers.append(MBConv(c, c_out, kernel, expansion, stride=2 if (b == 0 and s > 0) else 1))
                c = c_out
        layers += [nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
                   nn.Flatten(), nn.Linear(4 * c, num_classes)]
        return nn.Sequential(*layers)


def compound_scaling(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> dict[str, float]:
    """EfficientNet's compound rule: depth x alpha**phi, width x beta**phi, resolution x gamma**phi.

    With alpha * beta**2 * gamma**2 ~ 2, each step of phi roughly doubles the FLOPs (FLOPs grow with
    depth, width squared and resolution squared). The defaults are EfficientNet's grid-searched values.

    Example:
        >>> compound_scaling(1)
        {'depth_mult': 1.2, 'width_mult': 1.1, 'resolution_mult': 1.15, 'flops_mult': 1.92...}
    """
    return {"depth_mult": alpha ** phi, "width_mult": beta ** phi, "resolution_mult": gamma ** phi,
            "flops_mult": (alpha * beta ** 2 * gamma ** 2) ** phi}
