"""The search loop and the strategies, on a synthetic objective that is fast and has a known optimum."""

import json
import statistics
from pathlib import Path

import pytest

from dfl_toolkit.errors import CheckpointError, UsageError
from dfl_toolkit.nas import (
    CellSpace,
    OptunaSampler,
    PredictorSearch,
    ProcessExecutor,
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    search,
)
from dfl_toolkit.nas.strategies import STRATEGIES as REGISTRY

SPACE = CellSpace()
TARGET = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3", "skip_connect")


class MatchTarget:
    """val_acc = fraction of edges equal to TARGET (optimum 1.0 at TARGET); counts its calls."""

    def __init__(self, fail_op: str | None = None):
        self.calls, self.fail_op = 0, fail_op

    def __call__(self, arch, seed):
        self.calls += 1
        if self.fail_op is not None and arch[0] == self.fail_op:
            if arch[1] == "none":
                raise RuntimeError("this architecture crashes")
            return {"failed": True}
        score = sum(a == t for a, t in zip(arch, TARGET, strict=True)) / 6
        return {"val_acc": score, "test_acc": score, "cost": 1.0}


STRATEGIES = {**REGISTRY, "predictor": lambda: PredictorSearch(epochs=30, ensemble=3)}  # every registered one


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_and_records_every_trial(name):
    result = search(SPACE, STRATEGIES[name](), MatchTarget(), budget=40, seed=0, progress=False)
    assert len(result.trials) == 40 and [t.number for t in result.trials] == list(range(40))
    assert result.best.result["val_acc"] == max(t.result["val_acc"] for t in result.trials)
    curve = result.incumbent()
    assert curve == sorted(curve) and curve[-1] == result.best.result["val_acc"]
    assert result.cumulative_cost()[-1] == 40.0
    assert SPACE.to_str(result.best_arch) == result.best.arch


def mean_best(strategy_cls, budget=100, seeds=range(8)):
    return statistics.mean(search(SPACE, strategy_cls(), MatchTarget(), budget, seed=s, progress=False)
                           .best.result["val_acc"] for s in seeds)


def test_evolution_and_reinforce_beat_random_search_on_a_learnable_objective():
    random_best = mean_best(RandomSearch)
    assert mean_best(RegularizedEvolution) > random_best + 0.1
    assert mean_best(Reinforce, budget=150) > random_best
    assert mean_best(lambda: PredictorSearch(epochs=30, ensemble=3), budget=60, seeds=range(4)) > random_best
    assert mean_best(OptunaSampler, budget=100, seeds=range(4)) > random_best


def test_predictor_warm_start_from_a_related_task_finds_the_optimum_sooner():
    import random

    rng = random.Random(9)
    prior = [(a, MatchTarget()(a, 0)["val_acc"]) for a in (SPACE.sample(rng) for _ in range(60))]

    def first_hit(strategy):
        result = search(SPACE, strategy, MatchTarget(), 60, seed=0, progress=False)
        return next((t.number for t in result.trials if t.result["val_acc"] == 1.0), 60)

    warm = first_hit(PredictorSearch(epochs=30, ensemble=3, prior=prior))
    assert warm < first_hit(PredictorSearch(epochs=30, ensemble=3))


def test_reinforce_policy_concentrates_on_the_target():
    strategy = Reinforce()
    search(SPACE, strategy, MatchTarget(), budget=200, seed=0, progress=False)
    probs = strategy.probabilities()
    target_probs = [probs[i, SPACE.ops.index(op)].item() for i, op in enumerate(TARGET)]
    assert min(target_probs) > 0.3 and statistics.mean(target_probs) > 0.6
    assert len(strategy.history) == 200


def test_reinforce_baseline_turns_a_constant_reward_into_no_signal():
    import random

    arch = SPACE.sample(random.Random(0))
    moved = {}
    for use_baseline in (True, False):
        strategy = Reinforce(entropy_weight=0.0, use_baseline=use_baseline)
        strategy.setup(SPACE, "val_acc", random.Random(0))
        for _ in range(3):  # every sample earns the same reward: nothing to learn
            strategy.tell(arch, {"val_acc": 0.9})
        moved[use_baseline] = (strategy.probabilities() - 0.2).abs().max().item()
    assert moved[True] < 1e-6 < 0.05 < moved[False]  # without a baseline, whatever was sampled is reinforced


def test_aging_evolution_removes_the_oldest_not_the_worst():
    import random

    evo = RegularizedEvolution(population_size=3, sample_size=2)
    evo.setup(SPACE, "val_acc", random.Random(0))
    archs = [SPACE.sample(random.Random(i)) for i in range(4)]
    for arch, score in zip(archs, [0.9, 0.1, 0.2, 0.3], strict=True):
        evo.tell(arch, {"val_acc": score})
    assert [a for a, _ in evo.population] == archs[1:]  # the best (0.9) was the oldest: it died


def test_same_seed_same_search():
    a = search(SPACE, RegularizedEvolution(), MatchTarget(), 50, seed=3, progress=False)
    b = search(SPACE, RegularizedEvolution(), MatchTarget(), 50, seed=3, progress=False)
    c = search(SPACE, RegularizedEvolution(), MatchTarget(), 50, seed=4, progress=False)
    assert [t.arch for t in a.trials] == [t.arch for t in b.trials] != [t.arch for t in c.trials]


class Killed(Exception):
    pass


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("batch_size", [1, 4])
def test_killed_search_resumes_to_the_same_result_without_re_evaluating(tmp_path, name, batch_size):
    full = search(SPACE, STRATEGIES[name](), MatchTarget(), 60, seed=1, batch_size=batch_size, progress=False)

    def kill_after_half(result):
        if len(result.trials) >= 30:
            raise Killed

    path = tmp_path / "search.json"
    first = MatchTarget()
    with pytest.raises(Killed):
        search(SPACE, STRATEGIES[name](), first, 60, seed=1, batch_size=batch_size, checkpoint=path,
               progress=False, callbacks=[kill_after_half])
    saved = len(json.loads(path.read_text())["trials"])
    assert saved == first.calls >= 30  # every finished evaluation is in the checkpoint
    second = MatchTarget()
    resumed = search(SPACE, STRATEGIES[name](), second, 60, seed=1, batch_size=batch_size, checkpoint=path,
                     progress=False)
    assert second.calls == 60 - saved  # nothing evaluated twice
    assert [(t.arch, t.result) for t in resumed.trials] == [(t.arch, t.result) for t in full.trials]


def test_process_pool_gives_the_same_trials_as_sequential():
    seq = search(SPACE, RegularizedEvolution(), MatchTarget(), 16, seed=2, batch_size=4, progress=False)
    executor = ProcessExecutor(workers=2)
    try:
        par = search(SPACE, RegularizedEvolution(), MatchTarget(), 16, seed=2, batch_size=4, executor=executor,
                     progress=False)
    finally:
        executor.close()
    assert [(t.arch, t.result) for t in par.trials] == [(t.arch, t.result) for t in seq.trials]


def test_failed_and_crashing_evaluations_are_recorded_not_raised():
    result = search(SPACE, RandomSearch(), MatchTarget(fail_op="avg_pool_3x3"), 80, seed=0, progress=False)
    failed = [t for t in result.trials if t.failed]
    assert failed and any("crashes" in t.result.get("error", "") for t in failed)
    assert not result.best.failed and result.score(failed[0]) == float("-inf")


class FailFirst(MatchTarget):
    """Every evaluation fails until the n-th call (e.g. a table that lacks the first cells asked)."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def __call__(self, arch, seed):
        if self.n > 0:
            self.n -= 1
            return {"failed": True}
        return super().__call__(arch, seed)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategies_survive_a_run_of_failures_at_the_start(name):
    result = search(SPACE, STRATEGIES[name](), FailFirst(15), budget=30, seed=0, progress=False)
    assert sum(t.failed for t in result.trials) >= 14 and not result.best.failed


def test_bad_inputs_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="budget is the number of evaluations"):
        search(SPACE, RandomSearch(), MatchTarget(), 0)
    with pytest.raises(TypeError, match="implements setup, ask, tell and config"):
        search(SPACE, object(), MatchTarget(), 5)
    with pytest.raises(ValueError, match="sample_size <= population_size"):
        RegularizedEvolution(population_size=3, sample_size=5)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot be read.*resume=False"):
        search(SPACE, RandomSearch(), MatchTarget(), 5, checkpoint=corrupt, progress=False)
    other = tmp_path / "other.json"
    search(SPACE, RandomSearch(), MatchTarget(), 5, seed=0, checkpoint=other, progress=False)
    with pytest.raises(CheckpointError, match="belongs to another search"):
        search(SPACE, RandomSearch(), MatchTarget(), 5, seed=1, checkpoint=other, progress=False)
    fresh = search(SPACE, RandomSearch(), MatchTarget(), 5, seed=1, checkpoint=other, resume=False, progress=False)
    assert len(fresh.trials) == 5
    for content in ("[]", json.dumps({"format": json.loads(other.read_text())["format"], "trials": []})):
        corrupt.write_text(content)  # valid JSON, but not a checkpoint: a list, or one without its config
        with pytest.raises(CheckpointError, match="cannot be read|records no settings"):
            search(SPACE, RandomSearch(), MatchTarget(), 5, checkpoint=corrupt, progress=False)
    counted = MatchTarget()
    with pytest.raises(CheckpointError, match="cannot write the search checkpoint"):  # before any evaluation
        search(SPACE, RandomSearch(), counted, 5, checkpoint=corrupt / "run.json", progress=False)
    with pytest.raises(CheckpointError, match="is a folder; give a file path"):
        search(SPACE, RandomSearch(), counted, 5, checkpoint=tmp_path, progress=False)
    assert counted.calls == 0
    with pytest.raises(UsageError, match=r"seed must be a non-negative int below 2\*\*32, got 20000000000000"):
        search(SPACE, RandomSearch(), MatchTarget(), 5, seed=20_000_000_000_000, progress=False)
    with pytest.raises(UsageError, match="objective 'accuracy' is not among the evaluator's results; they hold "
                                         "test_acc, val_acc"):
        search(SPACE, RandomSearch(), MatchTarget(), 5, objective="accuracy", progress=False)
    with pytest.raises(UsageError, match="Reinforce needs lr > 0"):
        Reinforce(lr=-1)


class Budgeted(MatchTarget):
    """MatchTarget that reports a config, as the toolkit's evaluators do (e.g. its training budget)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def config(self):
        return {"evaluator": "budgeted", "epochs": self.epochs}


def test_a_checkpoint_made_with_another_evaluator_config_is_refused_not_replayed(tmp_path):
    path = tmp_path / "search.json"
    search(SPACE, RandomSearch(), Budgeted(epochs=3), 5, seed=0, checkpoint=path, progress=False)
    assert json.loads(path.read_text())["config"]["evaluator"] == {"evaluator": "budgeted", "epochs": 3}
    again = Budgeted(epochs=3)
    search(SPACE, RandomSearch(), again, 5, seed=0, checkpoint=path, progress=False)
    assert again.calls == 0  # same evaluator: replayed
    with pytest.raises(CheckpointError, match=r"another search \(evaluator.epochs: saved 3, now 5\)"):
        search(SPACE, RandomSearch(), Budgeted(epochs=5), 5, seed=0, checkpoint=path, progress=False)
    old = json.loads(path.read_text())
    del old["config"]["evaluator"]  # as an older toolkit wrote it
    path.write_text(json.dumps(old))
    with pytest.raises(CheckpointError, match="older toolkit.*resume=False"):
        search(SPACE, RandomSearch(), Budgeted(epochs=3), 5, seed=0, checkpoint=path, progress=False)


class Unsaveable(Budgeted):
    def config(self):
        return {"evaluator": "unsaveable", "where": Path("/tmp")}


def test_a_config_that_json_cannot_hold_gets_a_clear_error_only_when_checkpointing(tmp_path):
    assert len(search(SPACE, RandomSearch(), Unsaveable(3), 3, seed=0, progress=False).trials) == 3
    with pytest.raises(TypeError, match="settings as JSON"):
        search(SPACE, RandomSearch(), Unsaveable(3), 3, seed=0, checkpoint=tmp_path / "c.json", progress=False)


class ThreadSpy(RandomSearch):
    """Random search that records how many torch threads its own computation gets."""

    def setup(self, space, objective, rng):
        import torch

        super().setup(space, objective, rng)
        self.threads = [torch.get_num_threads()]

    def ask(self):
        import torch

        self.threads.append(torch.get_num_threads())
        return super().ask()


def test_a_strategy_computes_on_one_torch_thread_by_default_and_the_setting_is_restored():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        spy = ThreadSpy()
        search(SPACE, spy, MatchTarget(), budget=3, progress=False)
        assert set(spy.threads) == {1} and torch.get_num_threads() == 2
        spy = ThreadSpy()
        search(SPACE, spy, MatchTarget(), budget=3, progress=False, threads=None)  # leave torch's setting
        assert set(spy.threads) == {2}
    finally:
        torch.set_num_threads(before)
