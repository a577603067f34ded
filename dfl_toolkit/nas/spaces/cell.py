"""The NAS-Bench-201 cell search space (Dong & Yang, ICLR 2020).

A cell is a small DAG: nodes 0 (input), 1, 2, 3 (output). Every node sums one operation applied to
each earlier node, so there are 6 edges, each choosing one of 5 operations: 5**6 = 15,625 cells,
6,466 of them unique once isomorphic duplicates are removed.

Networks are built for images (``dims=2``, as published) or for 1-D signals such as MNIST-1D
(``dims=1``: the same cells with Conv1d, BatchNorm1d and AvgPool1d).

An architecture is a tuple of 6 operation names in edge order
(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2); its string form is NAS-Bench-201's:
``|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...errors import UnknownNameError, UsageError
from .base import CategoricalSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in the order of the string form
CellArch = tuple[str, str, str, str, str, str]


def layer_types(dims: int) -> tuple[type[nn.Module], ...]:
    """(convolution, batch norm, average pool, global average pool) for 1-D signals or 2-D images."""
    if dims == 1:
        return nn.Conv1d, nn.BatchNorm1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d
    if dims == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d
    raise UsageError(f"dims must be 1 (signals, input (C, L)) or 2 (images, input (C, H, W)), not {dims!r}")


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's convolution: ReLU -> Conv -> BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dims: int = 2):
        conv, bn, *_ = layer_types(dims)
        super().__init__(nn.ReLU(), conv(c_in, c_out, kernel, stride, kernel // 2, bias=False), bn(c_out))


class Zero(nn.Module):
    """The ``none`` operation: the edge is absent, its output is zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int, dims: int = 2) -> nn.Module:
    """One operation of the cell space, mapping ``channels`` to ``channels`` at stride 1
    (``dims=1``: the 1-D version, e.g. ``nor_conv_3x3`` is a convolution of width 3)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, dims=dims)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, dims=dims)
    if name == "avg_pool_3x3":
        return layer_types(dims)[2](3, stride=1, padding=1, count_include_pad=False)
    raise UnknownNameError("operation", name, OPS)


class Cell(nn.Module):
    """One cell: node j = sum over i < j of op_(j<-i)(node i); the output is node 3.

    ``none`` edges are simply left out (adding zeros changes nothing and costs time); a node with
    no live input is zero, and so is the output of a cell with no path from input to output.
    """

    def __init__(self, arch: Sequence[str], channels: int, dims: int = 2):
        super().__init__()
        self.edges = nn.ModuleDict({f"{j}<-{i}": make_op(op, channels, dims)
                                    for (j, i), op in zip(EDGES, arch, strict=True) if op != "none"})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        for j in (1, 2, 3):
            terms = [self.edges[f"{j}<-{i}"](nodes[i]) for i in range(j)
                     if nodes[i] is not None and f"{j}<-{i}" in self.edges]
            nodes.append(sum(terms[1:], terms[0]) if terms else None)
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class ResidualReduction(nn.Module):
    """The stride-2 block between stages: a ResNet basic block with an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, dims: int = 2):
        super().__init__()
        conv, _, pool, _ = layer_types(dims)
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2, dims=dims)
        self.b = ReLUConvBN(c_out, c_out, 3, dims=dims)
        self.shortcut = nn.Sequential(pool(2, 2, ceil_mode=True), conv(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


def make_stem(in_channels: int, channels: int, dims: int = 2) -> nn.Sequential:
    """The skeleton's stem: a 3x3 (or width-3) convolution and batch norm."""
    conv, bn, *_ = layer_types(dims)
    return nn.Sequential(conv(in_channels, channels, 3, padding=1, bias=False), bn(channels))


def make_head(channels: int, num_classes: int, dims: int = 2) -> nn.Sequential:
    """The skeleton's classifier: BN-ReLU, global average pool, linear."""
    _, bn, _, global_pool = layer_types(dims)
    return nn.Sequential(bn(channels), nn.ReLU(), global_pool(1), nn.Flatten(), nn.Linear(channels, num_classes))


class CellNetwork(nn.Module):
    """The NAS-Bench-201 skeleton: stem -> stages of cells (channels C, 2C, 4C, ...) with a residual
    reduction block between stages -> BN-ReLU -> global average pool -> linear."""

    def __init__(self, arch: Sequence[str], in_channels: int = 3, num_classes: int = 10, channels: int = 16,
                 cells_per_stage: int = 5, stages: int = 3, dims: int = 2):
        super().__init__()
        self.stem = make_stem(in_channels, channels, dims)
        layers: list[nn.Module] = []
        c = channels
        for s in range(stages):
            if s > 0:
                layers.append(ResidualReduction(c, c * 2, dims))
                c *= 2
            layers += [Cell(arch, c, dims) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*layers)
        self.head = make_head(c, num_classes, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


class CellSpace(CategoricalSpace):
    """The NAS-Bench-201 cell space: 15,625 cells, 6,466 unique.

    Example:
        >>> space = CellSpace()
        >>> arch = space.sample(random.Random(0))
        >>> space.from_str(space.to_str(arch)) == arch
        True
        >>> len({space.canonical(a) for a in space.enumerate()})
        6466
    """

    name = "nb201_cell"
    build_options = ("channels", "cells_per_stage", "stages", "dims")
    input_ranks = (1, 2)
    ops = OPS
    edges = EDGES
    choices = [(f"edge {j}<-{i}", OPS) for j, i in EDGES]

    def to_str(self, arch: CellArch) -> str:
        arch = self.validate(arch)
        nodes = []
        for j in (1, 2, 3):
            nodes.append("|" + "|".join(f"{op}~{i}" for (to, i), op in zip(EDGES, arch, strict=True) if to == j) + "|")
        return "+".join(nodes)

    def from_str(self, text: str) -> CellArch:
        expected = "a string like |nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
        parts = text.strip().split("+") if isinstance(text, str) else []
        if len(parts) != 3:
            raise UsageError(f"cannot parse {text!r}: expected {expected}")
        arch = []
        for j, part in enumerate(parts, start=1):
            items = [p.strip() for p in part.split("|") if p.strip()]
            if len(items) != j:
                raise UsageError(f"cannot parse {text!r}: node {j} needs {j} inputs; expected {expected}")
            for i, item in enumerate(items):
                op, _, src = item.partition("~")
                if src != str(i):
                    raise UsageError(f"cannot parse {text!r}: {item!r} should read from node {i}")
                arch.append(op)
        return self.validate(tuple(arch))

    def canonical(self, arch: CellArch) -> str:
        """The function the cell computes, as a string: ``none`` is zero, ``skip_connect`` is identity and
        sums are unordered. Two cells with equal keys are isomorphic (NAS-Bench-201's de-duplication)."""
        arch = self.validate(arch)
        nodes = {0: "0"}
        for j in (1, 2, 3):
            terms = []
            for (to, i), op in zip(EDGES, arch, strict=True):
                if to != j:
                    continue
                if op == "none" or nodes[i] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(nodes[i])
                else:
                    terms.append(f"({nodes[i]})@{op}")
            nodes[j] = "+".join(sorted(terms))
        return nodes[3]

    def is_dead(self, arch: CellArch) -> bool:
        """True when no path carries the input to the output (the cell outputs zeros)."""
        return set(self.canonical(arch).split("+")) == {"#"}

    def build(self, arch: CellArch, *, in_channels: int = 3, num_classes: int = 10, channels: int = 16,
              cells_per_stage: int = 5, stages: int = 3, dims: int = 2) -> CellNetwork:
        """The cell inside the NAS-Bench-201 skeleton (defaults: the published one, for CIFAR-10 images;
        ``dims=1`` for signals of shape (in_channels, length))."""
        return CellNetwork(self.validate(arch), in_channels, num_classes, channels, cells_per_stage, stages, dims)
