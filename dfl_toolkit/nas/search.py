"""One search loop that every strategy plugs into (ask-and-tell).

A strategy proposes architectures with ``ask()`` and learns from results with ``tell()``. The loop
asks for a batch, evaluates it (sequentially, in a process pool or on a Ray cluster: ``executors``), tells the
results in ask order, records every trial, and writes a JSON checkpoint after every finished evaluation.

Resume works by *replay*: the checkpoint holds every finished trial; on resume the strategy is
rebuilt from the same seed and asked again, and each trial already in the checkpoint is told its
recorded result instead of being re-evaluated. A strategy that draws all its randomness from the
``rng`` it is given therefore ends exactly as an uninterrupted run would, and no finished
evaluation is ever redone or lost.

A search stops after ``budget`` evaluations, or when its summed cost would pass ``max_cost`` (a simulated
time budget, as NAS-Bench-201's 12,000 s), whichever comes first.

Multi-fidelity: an evaluator may declare ``fidelities`` (names, cheapest first; the last is the full one, what
a call without ``fidelity`` gives) and accept ``evaluator(arch, seed, fidelity=name)``, which returns that
fidelity's metrics under the usual names and its own ``cost``. A strategy that declares ``multi_fidelity = True``
gets them in ``setup(..., fidelities=...)`` and asks ``(arch, fidelity)`` pairs. Each trial records its fidelity
(None: the full one); only full-fidelity trials count for ``best`` and ``incumbent``.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..checkpoint import START_OVER, as_json, check_resumable, read_json, write_json
from ..errors import CheckpointError, ClusterLostError, UnknownNameError, UsageError
from ..runtime import check_seed, check_threads, derive_seed, torch_threads
from .executors import Evaluator, Executor, ProcessExecutor, RayExecutor, SequentialExecutor
from .spaces.base import Arch, SearchSpace

FORMAT = "dfl_toolkit.search/1"
__all__ = ["ProcessExecutor", "RayExecutor", "SearchResult", "SequentialExecutor", "Strategy", "Trial", "fitness",
           "search"]


def fitness(result: dict[str, Any], objective: str) -> float:
    """The score a strategy maximises: ``result[objective]``, or minus infinity for a failed evaluation.

    Example:
        >>> fitness({"val_acc": 0.9}, "val_acc"), fitness({"failed": True}, "val_acc")
        (0.9, -inf)
    """
    value = result.get(objective)
    return float("-inf") if result.get("failed") or value is None else float(value)


class Strategy(Protocol):
    """What the search loop needs from a strategy.

    ``setup`` is called once with the space, the objective's name and a seeded ``random.Random``;
    all randomness must come from it (or from torch generators seeded from it). A strategy with
    ``multi_fidelity = True`` is also given ``fidelities=`` (the evaluator's, cheapest first; ``(None,)`` for an
    evaluator with one) and its ``ask()`` returns ``(arch, fidelity)``; results are told in ask order.
    """

    name: str

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None: ...
    def ask(self) -> Arch: ...
    def tell(self, arch: Arch, result: dict[str, Any]) -> None: ...
    def config(self) -> dict[str, Any]: ...


@dataclass
class Trial:
    """One evaluated architecture."""

    number: int
    arch: str
    result: dict[str, Any]
    cost: float  # seconds the evaluation took (or its simulated cost, for tabular evaluators)
    fidelity: str | None = None  # None: the full fidelity; else the cheaper fidelity it was evaluated at

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))


@dataclass
class SearchResult:
    """Every trial of a search in order, and what they add up to."""

    space: SearchSpace
    objective: str
    trials: list[Trial] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def score(self, trial: Trial, metric: str | None = None) -> float:
        return fitness(trial.result, metric or self.objective)

    @property
    def best(self) -> Trial:
        """The full-fidelity trial with the highest objective (the earliest among ties)."""
        full = [t for t in self.trials if t.fidelity is None]
        if not full:
            raise ValueError("the search has no full-fidelity trials yet")
        return max(full, key=lambda t: (self.score(t), -t.number))

    @property
    def best_arch(self) -> Arch:
        return self.space.from_str(self.best.arch)

    def incumbent(self, metric: str | None = None) -> list[float]:
        """Best objective so far after each trial (the curve search progress plots show).

        With ``metric`` (e.g. ``"test_acc"``), the value of that metric for the incumbent chosen
        by the objective: the honest "what would I report" curve. Only full-fidelity trials count; minus
        infinity until the first one.
        """
        out, best = [], None
        for t in self.trials:
            if t.fidelity is None and (best is None or self.score(t) > self.score(best)):
                best = t
            out.append(float("-inf") if best is None else self.score(best, metric))
        return out

    def cumulative_cost(self) -> list[float]:
        total, out = 0.0, []
        for t in self.trials:
            total += t.cost
            out.append(total)
        return out


def _read_checkpoint(path: Path, config: dict[str, Any]) -> dict[int, Trial]:
    """The finished trials of a search checkpoint made with ``config``, or a clear CheckpointError."""
    data = read_json(path)
    if data.get("format") == FORMAT and "evaluator" in config and "evaluator" not in data.get("config", {}):
        raise CheckpointError(f"search checkpoint {path} was made by an older toolkit that did not record the "
                              f"evaluator (training budget or table), so it cannot be checked; {START_OVER}")
    check_resumable(data, FORMAT, config, path, "search")
    trials = {}
    for i, t in enumerate(data.get("trials") if isinstance(data.get("trials"), list) else [None]):
        ok = (isinstance(t, dict) and isinstance(t.get("number"), int) and isinstance(t.get("arch"), str)
              and isinstance(t.get("result"), dict) and isinstance(t.get("cost"), (int, float))
              and isinstance(t.get("fidelity", ""), str))
        if not ok or set(t) - {"fidelity"} != {"number", "arch", "result", "cost"}:
            raise CheckpointError(f"search checkpoint {path} is damaged: trial entry {i} is not "
                                  f"{{number, arch, result: {{...}}, cost[, fidelity]}} (got {str(t)[:120]}); "
                                  f"{START_OVER}")
        trials[t["number"]] = Trial(**t)
    return trials


def _entry(trial: Trial) -> dict[str, Any]:
    """A trial as the checkpoint stores it (``fidelity`` only when it is not the full one)."""
    out = {"number": trial.number, "arch": trial.arch, "result": trial.result, "cost": trial.cost}
    return out if trial.fidelity is None else {**out, "fidelity": trial.fidelity}


def _query(space: SearchSpace, asked: Any, strategy: Strategy, fidelities: tuple[str, ...]) -> tuple[Arch, str | None]:
    """What a strategy asked, as (validated arch, fidelity or None for the full one)."""
    if not getattr(strategy, "multi_fidelity", False):
        return space.validate(asked), None
    if not (isinstance(asked, tuple) and len(asked) == 2):
        raise UsageError(f"strategy {strategy.name} is multi_fidelity, so its ask() returns (arch, fidelity); "
                         f"got {asked!r}")
    arch, fidelity = asked
    ladder = fidelities or (None,)
    if fidelity not in ladder:
        raise UsageError(f"strategy {strategy.name} asked for fidelity {fidelity!r}; the evaluator offers "
                         f"{', '.join(map(repr, ladder))}")
    return space.validate(arch), None if fidelity == ladder[-1] else fidelity


def search(space: SearchSpace, strategy: Strategy, evaluator: Evaluator, budget: int | None = None, *,
           max_cost: float | None = None, seed: int = 0, objective: str = "val_acc", batch_size: int = 1,
           executor: Executor | None = None,
           checkpoint: str | os.PathLike | None = None, resume: bool = True, progress: bool = True,
           callbacks: Sequence[Callable[[SearchResult], None]] = (), threads: int | None = 1) -> SearchResult:
    """Run ``strategy`` on ``space`` for ``budget`` evaluations, or until their summed cost would pass
    ``max_cost``, and return every trial.

    - ``budget``: the number of evaluations (at any fidelity, each counts one). ``max_cost``: the compute the
      search may spend, in the unit of the evaluator's ``cost`` (a table's: simulated training seconds;
      NAS-Bench-201's protocol is 12,000 s on CIFAR-10). Rule: trials are counted in ask order while their
      summed cost stays <= ``max_cost``; the first one that would take it past ends the search and is not
      counted or told (a real run would have been stopped when the time ran out). It stays in the checkpoint,
      so a resume with a larger ``max_cost`` does not evaluate it again. Give either or both (then whichever
      comes first).
    - ``evaluator(arch, seed) -> dict`` returns metrics including ``objective`` (maximised; an evaluator that
      declares ``metrics``, as the toolkit's do, has the objective checked against them before any evaluation);
      ``failed=True`` (or an exception) marks a failed trial, ranked last. An evaluator with a
      ``config() -> dict`` method (the toolkit's have one) has it stored in the checkpoint, so a
      checkpoint made with another training budget or table is refused instead of replayed. An evaluator
      that declares ``fidelities`` serves multi-fidelity strategies (see the module's docstring).
    - ``batch_size`` architectures are asked before their results are told, and evaluated at once by a parallel
      ``executor`` (``ProcessExecutor``, ``RayExecutor``): the trials are the same whatever the executor.
    - ``checkpoint``: a JSON file updated after each evaluation; re-running resumes from it.
    - ``callbacks`` are called with the result so far after each batch (e.g. a live plot).
    - ``threads``: torch threads for the strategy's own computation (a predictor's fitting, a policy's
      update): 1 by default, faster for such small models and repeatable on any machine; None leaves
      torch's setting. Evaluators choose their own (``TrainEvaluator(threads=1)``).

    Example:
        >>> space = CellSpace()
        >>> result = search(space, RegularizedEvolution(), TabularEvaluator(bench), budget=100, seed=0)
        >>> space.to_str(result.best_arch), result.best.result["test_acc"]
        >>> timed = search(space, LocalSearch(), TabularEvaluator(bench), max_cost=12000.0)  # simulated seconds
    """
    if budget is None and max_cost is None:
        raise UsageError("give budget (the number of evaluations), max_cost (the summed cost the search may spend, "
                         "e.g. 12000.0 simulated seconds on a table), or both")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise UsageError(f"budget is the number of evaluations: a positive int (or None with max_cost), got {budget!r}")
    if max_cost is not None and (isinstance(max_cost, bool) or not isinstance(max_cost, (int, float))
                                 or not 0 < max_cost < math.inf):
        raise UsageError(f"max_cost is the summed cost a search may spend, in its evaluator's cost unit (simulated "
                         f"seconds for a table): a positive finite number, got {max_cost!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
    check_seed(seed)
    check_threads(threads)
    metrics = getattr(evaluator, "metrics", None)  # what the evaluator declares it returns
    if metrics is not None and objective not in metrics:
        raise UnknownNameError(f"objective for the {getattr(evaluator, 'name', type(evaluator).__name__)} evaluator:",
                               objective, metrics)
    for method in ("setup", "ask", "tell", "config"):
        if not callable(getattr(strategy, method, None)):
            raise TypeError(f"strategy {type(strategy).__name__} has no {method}(); a strategy implements "
                            f"setup, ask, tell and config")
    fidelities = tuple(getattr(evaluator, "fidelities", None) or ())  # cheapest first; the last is the full one
    config = {"space": space.name, "strategy": strategy.name, "strategy_config": strategy.config(),
              "objective": objective, "seed": seed, "batch_size": batch_size}
    if callable(getattr(evaluator, "config", None)):  # so a checkpoint of another budget or table is refused
        config["evaluator"] = evaluator.config()
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None:
        config = as_json(config)
        try:  # fail now, not after the first evaluation
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CheckpointError(f"cannot write the search checkpoint {path}: {err}") from err
        if path.is_dir():
            raise CheckpointError(f"search checkpoint {path} is a folder; give a file path, e.g. "
                                  f"{path / 'search.json'}")
    recorded = _read_checkpoint(path, config) if path is not None and resume and path.exists() else {}
    with torch_threads(threads):
        if getattr(strategy, "multi_fidelity", False):
            strategy.setup(space, objective, random.Random(seed), fidelities=fidelities or (None,))
        else:
            strategy.setup(space, objective, random.Random(seed))
    result = SearchResult(space, objective, config=config)
    executor = executor or SequentialExecutor()
    from tqdm.auto import tqdm

    by_cost = max_cost is not None  # the bar counts the summed cost, else evaluations
    bar = tqdm(total=max_cost if by_cost else budget, disable=not progress,
               desc=f"{strategy.name} search" + (f" (max_cost {max_cost:g})" if by_cost else ""),
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} cost [{elapsed}{postfix}]" if by_cost else None)
    spent, best, done = 0.0, float("-inf"), False  # summed cost; best full-fidelity objective, for the bar
    try:
        while not done:
            start = len(result.trials)
            with torch_threads(threads):
                queries = [_query(space, strategy.ask(), strategy, fidelities)
                           for _ in range(batch_size if budget is None else min(batch_size, budget - start))]
            todo = []
            for k, (arch, fidelity) in enumerate(queries):
                old = recorded.get(start + k)
                if old is not None and (old.arch, old.fidelity) != (space.to_str(arch), fidelity):
                    raise CheckpointError(f"checkpoint {path} does not replay: trial {start + k} was {old.arch} "
                                          f"(fidelity {old.fidelity or 'full'}), the strategy now asks "
                                          f"{space.to_str(arch)} (fidelity {fidelity or 'full'}); {START_OVER}")
                if old is None:
                    todo.append((start + k, arch, fidelity))
            jobs = [(arch, derive_seed(seed, n), fidelity) for n, arch, fidelity in todo]
            try:
                for i, (res, cost) in executor.map(evaluator, jobs):
                    n, arch, fidelity = todo[i]
                    recorded[n] = Trial(n, space.to_str(arch), res, cost, fidelity)
                    if path is not None:  # saved as soon as it finishes, even before it is told
                        write_json(path, {"format": FORMAT, "config": config, "budget": budget, "max_cost": max_cost,
                                          "trials": [_entry(recorded[k]) for k in sorted(recorded)]})
            except ClusterLostError as err:
                saved = (f"the finished evaluations ({len(recorded)}) are saved in the checkpoint {path}: run the "
                         f"same search again (the same command) to resume from it" if path is not None else
                         "no checkpoint was given, so nothing was saved: give checkpoint= (--checkpoint) to make a "
                         "search resumable")
                raise ClusterLostError(f"{err}; {saved}") from err
            for k, (arch, _) in enumerate(queries):
                trial = recorded[start + k]
                if by_cost and budget is None and not trial.cost > 0:
                    raise UsageError(f"max_cost without a budget needs evaluations that cost something; trial "
                                     f"{trial.number} cost {trial.cost}: give a budget (evaluations) too")
                if by_cost and spent + trial.cost > max_cost:
                    done = True  # the first trial that does not fit ends the search
                    break
                if not trial.failed and objective not in trial.result:
                    raise UsageError(f"objective {objective!r} is not among the evaluator's results; they hold "
                                     f"{', '.join(sorted(trial.result))}")
                result.trials.append(trial)
                spent += trial.cost
                with torch_threads(threads):
                    strategy.tell(arch, trial.result)
                bar.update(trial.cost if by_cost else 1)
                if trial.fidelity is None:
                    best = max(best, result.score(trial))
            done = done or (budget is not None and len(result.trials) >= budget)
            if progress:
                bar.set_postfix({"evaluations": len(result.trials), f"best {objective}": f"{best:.4f}"})
            for cb in callbacks:
                cb(result)
        if by_cost:  # stopped short of max_cost (the next trial did not fit): a finished bar, not a broken one
            bar.total = bar.n
            bar.refresh()
    finally:
        bar.close()
    return result
