"""The benchmark table format and its query API: every unique NAS-Bench-201 cell, trained and measured.

Reading a table needs no training code (``build.py`` writes tables; this module only reads them).

The toolkit's tables are gzipped JSON files with metadata (dataset, budget, seeds, torch version,
checksum of the rows) and one row per unique cell. Any of the 15,625 cells can be queried: it is
mapped to its isomorphism class first. The published NAS-Bench-201 results (``nb201_cifar10``, ...) are
column tables with a row for every cell (``published.py``); ``Benchmark.load`` reads both.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DFLError, NotInTableError, UnknownNameError, UsageError
from ..spaces.cell import EDGES, OPS, CellArch, CellSpace

if TYPE_CHECKING:
    from .published import PublishedBenchmark

DEFAULT_TABLE = "nb201_mnist14.json.gz"  # the toolkit's own benchmark, one of the shipped tables
PUBLISHED = ("nb201_cifar10", "nb201_cifar100", "nb201_imagenet16")  # shipped NAS-Bench-201 results (published.py)
TABLES = Path(__file__).resolve().parent / "tables"  # the shipped tables: package data, in every install
PER_SEED = ("train_acc", "val_acc", "test_acc", "train_time", "failed")
PER_CELL = ("params", "flops", "latency")
SIZES = ("params", "flops")  # costs a cell has itself (see Benchmark.costs); latency is the trained row's


def edge_counts(arch: CellArch, live_only: bool = False) -> list[float]:
    """1, then for each edge a one-hot of its operation: the terms a cell's size is a sum of. With ``live_only``,
    edges whose input node receives nothing count as none: a forward pass skips them (FLOPs), though their
    modules exist (parameters)."""
    live = {0: True}
    for j in (1, 2, 3):
        live[j] = any(op != "none" and live[i] for (to, i), op in zip(EDGES, arch, strict=True) if to == j)
    counts = [1.0]
    for (_, i), op in zip(EDGES, arch, strict=True):
        counts += [float(o == op and (live[i] or not live_only)) for o in OPS]
    return counts


def fit_sizes(archs: list[CellArch], sizes: dict[str, Iterable[float]]) -> dict[str, np.ndarray] | None:
    """A cost per term of :func:`edge_counts` for each of ``sizes`` (``params``, ``flops``: measured on ``archs``),
    or None unless every fit is determined and reproduces every measured value to the unit.

    Example:
        >>> fits = fit_sizes(archs, {"params": [count_params(space.build(a)) for a in archs]})
        >>> fitted_sizes(other_arch, fits)["params"]   # without building it
    """
    fits = {}
    for k, values in sizes.items():
        x = np.array([edge_counts(a, live_only=k == "flops") for a in archs])
        y = np.asarray(list(values), dtype=float)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        if np.linalg.matrix_rank(x) < 1 + len(EDGES) * (len(OPS) - 1) or np.abs(x @ coef - y).max() > 0.5:
            return None
        fits[k] = coef
    return fits


def fitted_sizes(arch: CellArch, fits: dict[str, np.ndarray]) -> dict[str, int]:
    """The sizes of ``arch`` from :func:`fit_sizes`' per-term costs (``flops`` counts live edges only)."""
    return {k: int(round(float(np.dot(edge_counts(arch, live_only=k == "flops"), coef)))) for k, coef in fits.items()}


def rows_checksum(rows: Any) -> str:
    """SHA-256 of a table's data (its rows, or a published table's columns) as sorted JSON: what ``meta`` records."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def shipped_tables() -> list[str]:
    """Names of the tables shipped inside the package, the toolkit's own first, then the published ones."""
    names = sorted(p.name.removesuffix(".json.gz") for p in TABLES.glob("*.json.gz"))
    return sorted(names, key=lambda n: n in PUBLISHED)


def _find_table(path: str | os.PathLike | None) -> Path:
    """A file as given, or a table's name looked up in ``data_dir()`` (``DFL_DATA_DIR``: tables you built), then
    among the tables shipped inside the package (:data:`TABLES`)."""
    from ...runtime import data_dir

    if path is not None and (Path(path).is_file() or Path(path).parent != Path(".")):
        return Path(path)
    name = DEFAULT_TABLE if path is None else str(path)
    name = name if name.endswith(".json.gz") else name + ".json.gz"
    places = [data_dir() / name, TABLES / name]
    return next((p for p in places if p.is_file()), places[-1])


class Table:
    """What both kinds of table share: loading by name or path with the checksum checked, and parsing cells."""

    meta: dict[str, Any]
    space: CellSpace

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Benchmark | PublishedBenchmark:
        """Read a table, checking its checksum. ``path`` is a file, or the name of a table in the data folder
        (``DFL_DATA_DIR``) or shipped with the package (``"nb201_digits"``, ``"nb201_cifar10"``: see
        :func:`shipped_tables`); by default the toolkit's benchmark, ``nb201_mnist14``. A published table
        (written by ``tools/pack_nb201.py``) loads as a :class:`~.published.PublishedBenchmark`.

        Example:
            >>> Benchmark.load("nb201_cifar10").query("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        """
        found = _find_table(path)
        if not found.is_file():
            raise DFLError(f"no benchmark table {str(path or DEFAULT_TABLE)!r}: neither a file nor a table in the data "
                           "folder (DFL_DATA_DIR) nor a shipped one. Shipped tables, loaded by name: "
                           f"{', '.join(shipped_tables()) or 'none (the install is broken: reinstall dfl_toolkit)'}. "
                           "Make your own with `python -m dfl_toolkit benchmark build`, then `benchmark pack`")
        path = found
        try:
            with gzip.open(path, "rt") as f:
                data = json.load(f)
            meta, published = data["meta"], "columns" in data
            body = {k: data[k] for k in ("columns", "proxies")} if published else data["rows"]
            checksum = meta["sha256"]
        except (OSError, EOFError, ValueError, KeyError, TypeError) as err:  # not gzip, cut short, not a table
            raise DFLError(f"{path} is not a benchmark table ({type(err).__name__}: {err}); pack one with "
                           "`python -m dfl_toolkit benchmark pack`") from err
        if rows_checksum(body) != checksum:
            raise DFLError(f"{path} is damaged: its {'columns' if published else 'rows'} do not match the checksum "
                           "in its metadata (a shipped table: reinstall dfl_toolkit; your own: pack it again)")
        if published:
            from .published import PublishedBenchmark

            return PublishedBenchmark(meta, body["columns"], body["proxies"])
        return Benchmark(meta, body)

    def _parse(self, arch: CellArch | str) -> CellArch:
        return self.space.from_str(arch) if isinstance(arch, str) else self.space.validate(arch)


class Benchmark(Table):
    """A table the toolkit built (one row per unique cell, one value per training seed) with a query API.

    Example:
        >>> bench = Benchmark.load()                    # the shipped table nb201_mnist14
        >>> bench.query(("nor_conv_3x3",) * 6)
        {'params': ..., 'flops': ..., 'latency': ..., 'val_acc': ..., 'test_acc': ..., ...}
    """

    def __init__(self, meta: dict[str, Any], rows: list[dict[str, Any]]):
        self.meta, self.rows = meta, rows
        self.space = CellSpace()
        # The seeds every row has. Means are taken over these only, so that while a later seed is still
        # being built, every cell's mean is over the same seeds and the cells stay comparable.
        self.seeds: list[int] = [s for s in meta["seeds"] if all(str(s) in r["val_acc"] for r in rows)]
        if not self.seeds:
            raise DFLError(f"no seed is complete in this table (seeds {meta['seeds']}); pack it again when "
                           "one seed has every cell")
        self._index = {self.space.canonical(self.space.from_str(r["arch"])): i for i, r in enumerate(rows)}

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, arch: CellArch | str) -> dict[str, Any]:
        """The raw row of ``arch`` (any cell, or its string form)."""
        arch = self._parse(arch)
        i = self._index.get(self.space.canonical(arch))
        if i is None:
            raise NotInTableError(f"{self.space.to_str(arch)} is not in this table ({len(self)} of "
                                  f"{self.meta['unique_cells']} cells built)")
        return self.rows[i]

    def query(self, arch: CellArch | str, seed: int | None = None) -> dict[str, Any]:
        """Metrics of ``arch``: one seed's, or the mean over :attr:`seeds` when ``seed`` is None."""
        arch = self._parse(arch)
        row = self.row(arch)
        seeds = [str(s) for s in self.seeds] if seed is None else [str(seed)]
        if seeds[0] not in row["val_acc"]:
            raise UnknownNameError("seed of this table:", seed, row["val_acc"])
        out: dict[str, Any] = {"latency": row["latency"], **self._sizes(arch, row)}
        for k in ("train_acc", "val_acc", "test_acc", "train_time"):
            out[k] = statistics.fmean(row[k][s] for s in seeds)
        out["failed"] = any(row["failed"][s] for s in seeds)
        return out

    def metric(self, name: str, seed: int | None = None) -> np.ndarray:
        """One metric for every row, in row order (mean over :attr:`seeds` by default)."""
        if name in PER_CELL:
            return np.array([r[name] for r in self.rows], dtype=float)
        if name not in PER_SEED:
            raise UnknownNameError("metric", name, PER_CELL + PER_SEED[:-1])
        if seed is not None:
            self._check_seeds([seed])
            return np.array([r[name][str(seed)] for r in self.rows], dtype=float)
        seeds = [str(s) for s in self.seeds]
        return np.array([statistics.fmean(r[name][s] for s in seeds) for r in self.rows], dtype=float)

    def costs(self, arch: CellArch | str) -> dict[str, int]:
        """``params`` and ``flops`` of ``arch`` itself, not of the isomorphic cell its row was trained as.

        Isomorphic cells share a row, so an accuracy, but not always a size: one may hold a convolution whose
        output the other reuses. Both sizes are sums over the cell's edges (:func:`edge_counts`), so a cost per
        edge and operation, fitted to the table's rows and exact to the unit there, gives any cell's own.
        A table with too few rows to fit gives the row's values.

        Example:
            >>> cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"
            >>> bench.costs(cell), bench.row(cell)["params"]  # its row was trained as a smaller twin
            ({'params': 56674, 'flops': 3161280}, 44466)
        """
        arch = self._parse(arch)
        return self._sizes(arch, self.row(arch))

    def _sizes(self, arch: CellArch, row: dict[str, Any]) -> dict[str, int]:
        """:meth:`costs` of a parsed ``arch`` whose row is ``row``."""
        if self._size_fits is None:
            return {k: row[k] for k in SIZES}
        return fitted_sizes(arch, self._size_fits)

    @functools.cached_property
    def _size_fits(self) -> dict[str, np.ndarray] | None:
        """Per-term costs for :meth:`costs`, fitted once; None unless the fit is determined and exact."""
        return fit_sizes(self.archs(), {k: self.metric(k) for k in SIZES})

    def full_space(self, name: str = "test_acc", seed: int | None = None) -> np.ndarray:
        """One metric for each of the 15,625 cells, the population random search draws from: isomorphic cells
        share their row's accuracy, latency and time; ``params`` and ``flops`` are each cell's own
        (:meth:`costs`). One seed's value, or the mean over seeds (default). Needs a complete table."""
        if len(self) < self.meta["unique_cells"]:
            raise UsageError(f"the table holds {len(self)} of {self.meta['unique_cells']} cells; "
                             f"the full space needs all of them")
        if name in SIZES:
            return np.array([self.costs(a)[name] for a in self.space.enumerate()], dtype=float)
        values = self.metric(name, seed)
        return np.array([values[self._index[self.space.canonical(a)]] for a in self.space.enumerate()])

    def archs(self) -> list[CellArch]:
        return [self.space.from_str(r["arch"]) for r in self.rows]

    def seed_noise(self, metric: str = "test_acc", seeds: Iterable[int] | None = None) -> float:
        """Seed-to-seed standard deviation of one cell's accuracy, pooled over the cells that have every
        one of ``seeds`` (all the table's seeds by default)."""
        if metric not in PER_SEED[:-1]:
            raise UnknownNameError("metric measured per seed", metric, PER_SEED[:-1])
        seeds = list(seeds or self.meta["seeds"])
        self._check_seeds(seeds, complete=False)
        keys = [str(s) for s in seeds]
        values = np.array([[r[metric][s] for s in keys] for r in self.rows if all(s in r[metric] for s in keys)])
        if len(keys) < 2 or values.size == 0:
            raise UsageError(f"seed noise needs at least two seeds per cell; no cell has all of seeds {seeds}")
        return float(np.sqrt(values.var(axis=1, ddof=1).mean()))

    def _check_seeds(self, seeds: Iterable[int], complete: bool = True) -> None:
        """A clear error for a seed the table does not have (or, with ``complete``, has only for some cells)."""
        for seed in seeds:
            if seed not in self.meta["seeds"]:
                raise UnknownNameError("seed of this table:", seed, [str(s) for s in self.meta["seeds"]])
            if complete and seed not in self.seeds:
                raise UsageError(f"seed {seed} is only partly built in this table; complete seeds: {self.seeds}")
