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
import os
import platform
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...checkpoint import config_differences
from ...errors import CheckpointError, ClusterLostError, DFLError, UsageError
from ...runtime import check_seed
from ..evaluators.train import TrainBudget, TrainEvaluator
from ..executors import Executor, ProcessExecutor, SequentialExecutor
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


def pending_jobs(out: Path, seeds: list[int], limit: int | None = None) -> list[tuple[str, int]]:
    """(cell string, seed) pairs not yet in the results file, cell by cell with all its seeds together,
    so that any partial build is a uniform sample of cells with every seed (seed noise measurable early)."""
    space = CellSpace()
    cells = [space.to_str(a) for a in unique_cells(space)][:limit]
    done = {(r["arch"], r["seed"]) for r in read_results(out / RESULTS)}
    return [(c, s) for c in cells for s in seeds if (c, s) not in done]


def build(out: str | os.PathLike, budget: TrainBudget, seeds: list[int], workers: int = 1, threads: int = 1,
          limit: int | None = None, progress: bool = True,
          executor: Executor | None = None) -> Iterator[dict[str, Any]]:
    """Train the pending (cell, seed) pairs and append each result to ``out/results.jsonl``.

    Yields each result as it lands. ``limit`` restricts the build to the first ``limit`` cells of the
    fixed order (for tests and pilots). A budget different from the one ``out`` was started with is
    refused, so one table never mixes budgets. ``executor`` runs the trainings (default: ``workers`` processes
    on this machine, ``threads`` torch threads each; ``RayExecutor`` for a cluster). An evaluation that raises or
    whose worker is lost is not written, so the next run of the same build retries it; the build then ends with
    an error that counts them.

    Example:
        >>> rows = list(build("data/my_build", TrainBudget(), seeds=[0], limit=4))
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

    results_path = out / RESULTS
    if results_path.exists() and results_path.stat().st_size:
        with open(results_path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:  # a kill cut the last line: start the next one on a fresh line
            with open(results_path, "a") as f:
                f.write("\n")
    space = CellSpace()
    evaluator = TrainEvaluator(space, budget, threads=threads)
    own = executor is None  # made here, so closed here
    if own:
        executor = ProcessExecutor(workers, threads) if workers > 1 else SequentialExecutor()
    errors = []
    bar = tqdm(total=len(jobs), desc="benchmark", disable=not progress)
    try:
        with open(results_path, "a") as f:
            for i, (result, _) in executor.map(evaluator, [(space.from_str(a), seed, None) for a, seed in jobs]):
                bar.update(1)
                if "error" in result:  # raised, or its worker was lost: not written, so retried next time
                    errors.append(f"{jobs[i][0]} seed {jobs[i][1]}: {result['error']}")
                    continue
                row = {"arch": jobs[i][0], "seed": jobs[i][1], **result, "finished_at": time.time()}
                f.write(json.dumps(row) + "\n")
                f.flush()
                yield row
    except ClusterLostError as err:
        raise ClusterLostError(f"{err}; every finished evaluation is in {results_path}: run the same build again "
                               f"to resume") from err
    finally:
        bar.close()
        if own:
            executor.close()
    if errors:
        raise DFLError(f"{len(errors)} of {len(jobs)} evaluations failed and were not written (first: {errors[0]}); "
                       f"run the same build again to retry them")


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
