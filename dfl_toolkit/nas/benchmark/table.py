"""Query the toolkit's own NAS benchmark: every unique NAS-Bench-201 cell, trained and measured.

The shipped table is a gzipped JSON file with metadata (dataset, budget, seeds, torch version,
checksum of the rows) and one row per unique cell. Any of the 15,625 cells can be queried: it is
mapped to its isomorphism class first.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DFLError
from ..spaces.cell import CellArch, CellSpace
from .build import CONFIG, RESULTS, read_results, unique_cells

DEFAULT_TABLE = "nb201_mnist14.json.gz"  # the table the toolkit ships in data/
PER_SEED = ("train_acc", "val_acc", "test_acc", "train_time", "failed")
PER_CELL = ("params", "flops", "latency")


def rows_checksum(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def pack(build_dir: str | os.PathLike, dest: str | os.PathLike, note: str = "") -> Path:
    """Turn a build folder (config + results.jsonl) into the shipped table ``dest`` (.json.gz).

    Cells with no result yet are left out; ``meta["complete"]`` says whether every cell has every seed.
    """
    import torch

    build_dir = Path(build_dir)
    config = json.loads((build_dir / CONFIG).read_text())
    space = CellSpace()
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for r in read_results(build_dir / RESULTS):
        results.setdefault(r["arch"], {})[r["seed"]] = r
    seeds = sorted({s for per in results.values() for s in per})
    rows = []
    for arch in unique_cells(space):
        key = space.to_str(arch)
        if key not in results:
            continue
        per = results[key]
        first = per[min(per)]
        rows.append({"arch": key, **{k: first[k] for k in PER_CELL},
                     **{k: {str(s): per[s][k] for s in sorted(per)} for k in PER_SEED}})
    total = len(unique_cells(space))
    meta = {"space": config["space"], "budget": config["budget"], "seeds": seeds, "cells": len(rows),
            "unique_cells": total,
            "complete": len(rows) == total and all(len(r["val_acc"]) == len(seeds) for r in rows),
            "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "sha256": rows_checksum(rows), "note": note}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(dest, "wt") as f:
        json.dump({"meta": meta, "rows": rows}, f, separators=(",", ":"))
    return dest


def _find_table(path: str | os.PathLike | None) -> Path:
    """A file as given, or a table's name looked up in ``DFL_DATA_DIR`` (or the cache), then in the
    repository's ``data/`` folder."""
    from ...runtime import data_dir

    if path is not None and (Path(path).is_file() or Path(path).parent != Path(".")):
        return Path(path)
    name = DEFAULT_TABLE if path is None else str(path)
    name = name if name.endswith(".json.gz") else name + ".json.gz"
    places = [data_dir() / name, Path(__file__).resolve().parents[3] / "data" / name]
    return next((p for p in places if p.is_file()), places[0])


class Benchmark:
    """A packed benchmark table with a query API.

    Example:
        >>> bench = Benchmark.load()                    # the shipped table, data/nb201_mnist14.json.gz
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

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Benchmark:
        """Read a table written by :func:`pack`, checking its checksum. ``path`` is a file, or the name of a
        shipped table (``"nb201_digits"``); by default the toolkit's benchmark, ``nb201_mnist14``."""
        path = _find_table(path)
        if not path.is_file():
            raise DFLError(f"no benchmark table at {path}. The repository ships {DEFAULT_TABLE} in data/: run from "
                           "a clone of it, or copy the file into DFL_DATA_DIR; or build one with "
                           "`python -m dfl_toolkit benchmark build`")
        try:
            with gzip.open(path, "rt") as f:
                data = json.load(f)
            meta, rows = data["meta"], data["rows"]
        except (OSError, ValueError, KeyError) as err:
            raise DFLError(f"{path} is not a benchmark table ({type(err).__name__}: {err})") from err
        if rows_checksum(rows) != meta["sha256"]:
            raise DFLError(f"{path} is damaged: its rows do not match the checksum in its metadata")
        return cls(meta, rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, arch: CellArch | str) -> dict[str, Any]:
        """The raw row of ``arch`` (any cell, or its string form)."""
        arch = self.space.from_str(arch) if isinstance(arch, str) else self.space.validate(arch)
        i = self._index.get(self.space.canonical(arch))
        if i is None:
            raise KeyError(f"{self.space.to_str(arch)} is not in this table ({len(self)} of "
                           f"{self.meta['unique_cells']} cells built)")
        return self.rows[i]

    def query(self, arch: CellArch | str, seed: int | None = None) -> dict[str, Any]:
        """Metrics of ``arch``: one seed's, or the mean over :attr:`seeds` when ``seed`` is None."""
        row = self.row(arch)
        seeds = [str(s) for s in self.seeds] if seed is None else [str(seed)]
        if seeds[0] not in row["val_acc"]:
            raise KeyError(f"seed {seed} not in this table; seeds: {', '.join(row['val_acc'])}")
        out: dict[str, Any] = {k: row[k] for k in PER_CELL}
        for k in ("train_acc", "val_acc", "test_acc", "train_time"):
            out[k] = statistics.fmean(row[k][s] for s in seeds)
        out["failed"] = any(row["failed"][s] for s in seeds)
        return out

    def metric(self, name: str, seed: int | None = None) -> np.ndarray:
        """One metric for every row, in row order (mean over :attr:`seeds` by default)."""
        if name in PER_CELL:
            return np.array([r[name] for r in self.rows], dtype=float)
        if name not in PER_SEED:
            raise KeyError(f"unknown metric {name!r}; accepted: {', '.join(PER_CELL + PER_SEED[:-1])}")
        if seed is not None:
            return np.array([r[name][str(seed)] for r in self.rows], dtype=float)
        seeds = [str(s) for s in self.seeds]
        return np.array([statistics.fmean(r[name][s] for s in seeds) for r in self.rows], dtype=float)

    def full_space(self, name: str = "test_acc", seed: int | None = None) -> np.ndarray:
        """One metric for each of the 15,625 cells (isomorphic cells share their class's value):
        the population random search draws from. One seed's value, or the mean over seeds (default).
        Needs a complete table."""
        values = self.metric(name, seed)
        try:
            return np.array([values[self._index[self.space.canonical(a)]] for a in self.space.enumerate()])
        except KeyError as err:
            raise ValueError(f"the table holds {len(self)} of {self.meta['unique_cells']} cells; "
                             f"the full space needs all of them") from err

    def archs(self) -> list[CellArch]:
        return [self.space.from_str(r["arch"]) for r in self.rows]

    def seed_noise(self, metric: str = "test_acc", seeds: Iterable[int] | None = None) -> float:
        """Seed-to-seed standard deviation of one cell's accuracy, pooled over the cells that have every
        one of ``seeds`` (all the table's seeds by default)."""
        seeds = [str(s) for s in (seeds or self.meta["seeds"])]
        values = np.array([[r[metric][s] for s in seeds] for r in self.rows if all(s in r[metric] for s in seeds)])
        if values.shape[1] < 2:
            raise ValueError("seed noise needs at least two seeds per cell")
        return float(np.sqrt(values.var(axis=1, ddof=1).mean()))
