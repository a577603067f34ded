"""Published NAS-Bench-201 results for every one of the 15,625 cells, with the toolkit's query API.

Three shipped tables, one per dataset: ``nb201_cifar10``, ``nb201_cifar100``, ``nb201_imagenet16`` (ImageNet16-120).
Each holds what NAS-Bench-201 / NATS-Bench (Dong & Yang, ICLR 2020; Dong et al., TPAMI 2021) measured, as
extracted by NASLib, NAS-Landscapes and mini-NAS-Bench-201, plus the toolkit's own parameter and FLOP counts of
NAS-Bench-201's network. ``tools/pack_nb201.py`` writes them from the CSV and JSON sources; ``meta["columns"]``
says what each column is and where it comes from, ``tables/NOTICE`` the credits and licences.

A table is columns in :meth:`CellSpace.enumerate` order (the row of a cell is its :meth:`CellSpace.index` read as
a base-5 number), so isomorphic cells are separate rows, each with its own published values. There is one value
per cell, not one per seed: ``val_acc`` is one training run, ``test_acc`` the mean over NATS-Bench's seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DFLError, UnknownNameError, UsageError
from ..spaces.cell import EDGES, OPS, CellArch, CellSpace
from .table import SIZES, Table

FORMAT = "nb201-published-columns/1"  # meta["format"] of a published table


def row_number(space: CellSpace, arch: CellArch) -> int:
    """The row of a validated ``arch`` in a published table: its operation indices as a base-5 number."""
    number = 0
    for i in space.index(arch):
        number = number * len(OPS) + i
    return number


class PublishedBenchmark(Table):
    """Published results of one dataset for all 15,625 cells; load it with ``Benchmark.load("nb201_cifar10")``.

    ``query`` gives every column (``meta["columns"]``) and, for the 491 cells NASLib scored, the zero-cost proxies
    (``meta["proxies"]``); ``metric`` and ``full_space`` give one column for every cell (proxies: NaN where absent).

    Example:
        >>> bench = Benchmark.load("nb201_cifar10")
        >>> bench.query(("nor_conv_3x3",) * 6)          # or its string form, |nor_conv_3x3~0|+|...|
        {'val_acc': ..., 'val_acc_12ep': ..., 'test_acc': ..., 'train_time': ..., 'params': ..., ...}
        >>> bench.full_space("test_acc").max()          # the best cell's test accuracy (%)
    """

    seeds: tuple[int, ...] = ()  # no per-seed values (TabularEvaluator reads this): one value per cell

    def __init__(self, meta: dict[str, Any], columns: dict[str, list[float]], proxies: dict[str, list[float]]):
        self.meta, self.space = meta, CellSpace()
        if meta.get("format") != FORMAT or tuple(meta.get("ops", ())) != OPS or \
                [tuple(e) for e in meta.get("edges", ())] != list(EDGES):
            raise DFLError(f"{meta.get('name', 'this table')} is not a {FORMAT} table for this toolkit's cell order "
                           f"(format {meta.get('format')!r}, ops {meta.get('ops')}); repack it with "
                           "tools/pack_nb201.py")
        self.columns = {k: np.asarray(v, dtype=np.int64 if k in SIZES else float) for k, v in columns.items()}
        self.proxy_rows = {int(row): j for j, row in enumerate(proxies["cells"])}  # row -> index in proxies
        self.proxies = {k: np.asarray(v, dtype=float) for k, v in proxies.items() if k != "cells"}
        wrong = [k for k, v in self.columns.items() if len(v) != len(self)]
        wrong += [k for k, v in self.proxies.items() if len(v) != len(self.proxy_rows)]
        if wrong:
            raise DFLError(f"{meta.get('name')}: columns {wrong} do not have one value per cell; repack it")

    def __len__(self) -> int:
        return len(self.space)

    def query(self, arch: CellArch | str, seed: int | None = None) -> dict[str, Any]:
        """Every column of ``arch`` (a cell or its string form), plus NASLib's proxies where it has them."""
        self._no_seed(seed)
        i = row_number(self.space, self._parse(arch))
        out = {k: v[i].item() for k, v in self.columns.items()}
        j = self.proxy_rows.get(i)
        if j is not None:
            out.update({k: v[j].item() for k, v in self.proxies.items()})
        return out

    def metric(self, name: str, seed: int | None = None) -> np.ndarray:
        """One column for every cell, in :meth:`archs` order; a proxy is NaN where NASLib has no score."""
        self._no_seed(seed)
        if name in self.columns:
            return self.columns[name].astype(float)
        if name not in self.proxies:
            raise UnknownNameError(f"metric of {self.meta['name']}", name, [*self.columns, *self.proxies])
        out = np.full(len(self), np.nan)
        out[list(self.proxy_rows)] = self.proxies[name]
        return out

    def full_space(self, name: str = "test_acc", seed: int | None = None) -> np.ndarray:
        """One metric for each of the 15,625 cells, the population random search draws from (= :meth:`metric`)."""
        return self.metric(name, seed)

    def costs(self, arch: CellArch | str) -> dict[str, int]:
        """``params`` and ``flops`` of ``arch`` in NAS-Bench-201's network, as the toolkit counts them."""
        i = row_number(self.space, self._parse(arch))
        return {k: int(self.columns[k][i]) for k in SIZES}

    def archs(self) -> list[CellArch]:
        """Every cell, in row order."""
        return list(self.space.enumerate())

    def _no_seed(self, seed: int | None) -> None:
        if seed is not None:
            raise UsageError(f"{self.meta['name']} holds one value per cell, not one per training seed (val_acc is "
                             f"one training run, test_acc the mean over NATS-Bench's seeds); leave the seed out")
