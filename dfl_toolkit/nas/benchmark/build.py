"""Build the toolkit's own NAS benchmark: train every unique cell of the NAS-Bench-201 space.

Results are appended, one JSON line per (cell, seed), to a results file as they finish, so a build
that is stopped at any point resumes where it stopped and never loses a finished evaluation.
Cells are visited in a fixed shuffled order, each with all its seeds, so a partial build is a uniform
sample of the space with every seed.

    python -m dfl_toolkit benchmark build --out data/nb201_mnist14 --seeds 0 1 --workers 2   # the shipped table
"""

from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import os
import platform
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...checkpoint import config_differences
from ...errors import CheckpointError, DFLError, UsageError
from ...runtime import check_seed
from ..evaluators.train import TrainBudget, TrainEvaluator
from ..spaces.cell import CellArch, CellSpace
from .table import PER_CELL, PER_SEED, rows_checksum

RESULTS = "results.jsonl"
CONFIG = "config.json"
ORDER_SEED = 2026


def unique_cells(space: CellSpace | None = None) -> list[CellArch]:
    """One representative (the first in enumeration order) of each of the 6,466 isomorphism classes,
    in a fixed shuffled order."""
    space = space or CellSpace()
    first: dict[str, CellArch] = {}
    for arch in space.enumerate():
        first.setdefault(space.canonical(arch), arch)
    cells = list(first.values())
    random.Random(ORDER_SEED).shuffle(cells)
    return cells


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a results file (a line cut by a kill is ignored)."""
    if not path.exists():
        return []
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def read_config(build_dir: Path) -> dict[str, Any]:
    """A build folder's config.json (space and budget), or a clear error."""
    try:
        return json.loads((build_dir / CONFIG).read_text())
    except FileNotFoundError as err:
        raise DFLError(f"{build_dir} is not a benchmark build: it has no {CONFIG}") from err
    except (OSError, ValueError) as err:
        raise DFLError(f"{build_dir / CONFIG} cannot be read ({err}); restore it, or start the build in another "
                       "folder") from err


_EVALUATOR: TrainEvaluator | None = None


def _init_worker(budget: dict[str, Any], threads: int) -> None:
    import torch

    global _EVALUATOR
    torch.set_num_threads(threads)
    _EVALUATOR = TrainEvaluator(CellSpace(), TrainBudget(**budget), threads=threads)


def _evaluate(job: tuple[str, int]) -> dict[str, Any]:
    arch_str, seed = job
    space = _EVALUATOR.space
    result = _EVALUATOR(space.from_str(arch_str), seed)
    return {"arch": arch_str, "seed": seed, **result}


def pending_jobs(out: Path, seeds: list[int], limit: int | None = None) -> list[tuple[str, int]]:
    """(cell string, seed) pairs not yet in the results file, cell by cell with all its seeds together,
    so that any partial build is a uniform sample of cells with every seed (seed noise measurable early)."""
    space = CellSpace()
    cells = [space.to_str(a) for a in unique_cells(space)][:limit]
    done = {(r["arch"], r["seed"]) for r in read_results(out / RESULTS)}
    return [(c, s) for c in cells for s in seeds if (c, s) not in done]


def build(out: str | os.PathLike, budget: TrainBudget, seeds: list[int], workers: int = 1, threads: int = 1,
          limit: int | None = None, progress: bool = True) -> Iterator[dict[str, Any]]:
    """Train the pending (cell, seed) pairs and append each result to ``out/results.jsonl``.

    Yields each result as it lands. ``limit`` restricts the build to the first ``limit`` cells of the
    fixed order (for tests and pilots). A budget different from the one ``out`` was started with is
    refused, so one table never mixes budgets.
    """
    for seed in seeds:
        check_seed(seed, "each build seed")
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be one or more distinct training seeds, got {list(seeds)}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit is a number of cells: a positive int or None (all), got {limit!r}")
    if not isinstance(workers, int) or workers < 1:
        raise UsageError(f"workers is a number of processes: a positive int, got {workers!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; a build is a folder (config.json and results.jsonl)")
    out.mkdir(parents=True, exist_ok=True)
    config = {"space": CellSpace.name, "budget": budget.to_dict()}
    config_path = out / CONFIG
    if config_path.exists():
        old = read_config(out)
        if old != config:
            raise CheckpointError(f"{out} was built with another budget ({config_differences(old, config)}); use "
                                  "another folder for another budget")
    else:
        config_path.write_text(json.dumps(config, indent=1))
    jobs = pending_jobs(out, seeds, limit)
    if not jobs:
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="benchmark", disable=not progress)
    results_path = out / RESULTS
    if results_path.exists() and results_path.stat().st_size:
        with open(results_path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:  # a kill cut the last line: start the next one on a fresh line
            with open(results_path, "a") as f:
                f.write("\n")
    with open(results_path, "a") as f:
        if workers <= 1:
            _init_worker(budget.to_dict(), threads)
            results = map(_evaluate, jobs)
            yield from _write_all(results, f, bar)
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, _init_worker, (budget.to_dict(), threads)) as pool:
                yield from _write_all(pool.imap_unordered(_evaluate, jobs), f, bar)
    bar.close()


def _write_all(results, f, bar) -> Iterator[dict[str, Any]]:
    for r in results:
        r["finished_at"] = time.time()
        f.write(json.dumps(r) + "\n")
        f.flush()
        bar.update(1)
        yield r


def pack(build_dir: str | os.PathLike, dest: str | os.PathLike, note: str = "") -> Path:
    """Turn a build folder (config + results.jsonl) into the shipped table ``dest`` (.json.gz).

    Cells with no result yet are left out; ``meta["complete"]`` says whether every cell has every seed.
    """
    import torch

    build_dir = Path(build_dir)
    config = read_config(build_dir)
    space = CellSpace()
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for r in read_results(build_dir / RESULTS):
        results.setdefault(r["arch"], {})[r["seed"]] = r
    if not results:
        raise DFLError(f"no results in {build_dir / RESULTS} yet: build some cells first")
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
