"""Optuna's samplers as strategies of our loop: the peer a user would pick instead of writing NAS code.

Optuna's ask-and-tell interface maps one to one onto ours: ``study.ask()`` gives a trial, each
choice of the space becomes ``trial.suggest_categorical``, and ``study.tell`` returns the score.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from ..search import fitness
from ..spaces.base import Arch, SearchSpace


class OptunaSampler:
    """Wrap an Optuna sampler (default TPE, Bergstra et al. 2011) as a search strategy.

    Example:
        >>> search(CellSpace(), OptunaSampler("tpe"), evaluator, budget=100)
    """

    name = "optuna-tpe"

    def __init__(self, sampler: str = "tpe", n_startup_trials: int = 10):
        if sampler not in ("tpe", "random"):
            raise ValueError(f"sampler must be 'tpe' or 'random', got {sampler!r}")
        self.sampler, self.n_startup_trials = sampler, n_startup_trials
        self.name = f"optuna-{sampler}"

    def setup(self, space: SearchSpace, objective: str, rng: random.Random) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = rng.randrange(2**31)
        sampler = (optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials)
                   if self.sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed))
        self.space, self.objective = space, objective
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.pending: deque = deque()

    def ask(self) -> Arch:
        trial = self.study.ask()
        index = [options.index(trial.suggest_categorical(name, list(options))) if _plain(options)
                 else trial.suggest_int(name, 0, len(options) - 1) for name, options in self.space.choices]
        self.pending.append(trial)
        return self.space.from_index(index)

    def tell(self, arch: Arch, result: dict[str, Any]) -> None:
        trial = self.pending.popleft()
        score = fitness(result, self.objective)
        if score == float("-inf"):
            import optuna

            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, score)

    def config(self) -> dict[str, Any]:
        return {"sampler": self.sampler, "n_startup_trials": self.n_startup_trials}


def _plain(options: tuple[Any, ...]) -> bool:
    """Optuna's categorical choices must be None, bool, int, float or str."""
    return all(o is None or isinstance(o, (bool, int, float, str)) for o in options)
