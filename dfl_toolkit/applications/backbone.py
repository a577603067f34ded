"""The small CNN backbone the detector and the segmenters share: four stages at strides 1, 2, 4 and 8."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv, batch norm, ReLU: the unit every application model is built from."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SceneBackbone(nn.Module):
    """Four stages of two conv blocks; stage ``i`` halves the resolution (except the first) and has
    ``width * 2**i`` channels. ``forward`` returns every stage's map (strides 1, 2, 4, 8), finest first,
    so a detector can read the stride-4 map and a U-Net can take skips from all of them.

    Named layers for :func:`dfl_toolkit.extract_features`: ``stages.0`` ... ``stages.3``.

    Example:
        >>> maps = SceneBackbone(in_channels=1, width=8)(torch.zeros(2, 1, 64, 64))
        >>> [tuple(m.shape[1:]) for m in maps]
        [(8, 64, 64), (16, 32, 32), (32, 16, 16), (64, 8, 8)]
    """

    def __init__(self, in_channels: int = 1, width: int = 8):
        super().__init__()
        chans = [width * 2**i for i in range(4)]
        self.channels = tuple(chans)
        self.stages = nn.ModuleList()
        cin = in_channels
        for i, c in enumerate(chans):
            self.stages.append(nn.Sequential(conv_block(cin, c, stride=1 if i == 0 else 2), conv_block(c, c)))
            cin = c

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps
