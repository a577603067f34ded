"""A configurable, readable CNN whose layers have names worth printing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn


class ConvNet(nn.Module):
    """Blocks of ``convs_per_block`` x (conv -> batch norm -> ReLU), each block ending in 2x2 max-pool,
    then global average pooling and a small MLP head.

    Layer names read like ``features.block2.relu1`` so feature extraction and plots can name them.
    Global pooling makes the same network work on 8x8 digits, 28x28 MNIST and 32x32 CIFAR.

    Example:
        >>> model = ConvNet(in_channels=1, num_classes=10, channels=(32, 64))
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (32, 64),
                 convs_per_block: int = 2, kernel_size: int = 3, batch_norm: bool = True, hidden: int = 128,
                 dropout: float = 0.25, pool_last: bool = True):
        super().__init__()
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (so 'same' padding keeps the size), got {kernel_size}")
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = in_channels
        for b, c_out in enumerate(channels, start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for i in range(1, convs_per_block + 1):
                layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
                if batch_norm:
                    layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
                layers[f"relu{i}"] = nn.ReLU()
                c_in = c_out
            if pool_last or b < len(channels):
                layers["pool"] = nn.MaxPool2d(2)
            blocks[f"block{b}"] = nn.Sequential(layers)
        self.features = nn.Sequential(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(), dropout=nn.Dropout(dropout), fc1=nn.Linear(c_in, hidden), relu=nn.ReLU(),
            fc2=nn.Linear(hidden, num_classes)))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))
