"""Every seed works, not just 0: search, fit, DARTS and proxies derive their seeds with one function
(``runtime.derive_seed``), and a search with a large seed trains real networks without failing."""

import pytest

from dfl_toolkit import fit, get_dataset, seed_everything
from dfl_toolkit.__main__ import main
from dfl_toolkit.models import ConvNet
from dfl_toolkit.nas import CellSpace, ProxyEvaluator, RandomSearch, TrainBudget, TrainEvaluator, search
from dfl_toolkit.nas.strategies.darts import darts_search
from dfl_toolkit.runtime import derive_seed

SEEDS = (0, 1, 4_295, 123_456_789, 2**32 - 1)
TINY = TrainBudget(dataset="digits", data_options={"train_size": 200}, epochs=1, batch_size=64,
                   skeleton={"channels": 4, "cells_per_stage": 1})


def test_derive_seed_is_a_stable_seed_below_2_32_for_any_seed_and_keys():
    for seed in SEEDS:
        for keys in [(0,), (1,), (99,), (10**6, 3), (2**40,)]:
            s = derive_seed(seed, *keys)
            assert isinstance(s, int) and 0 <= s < 2**32 and s == derive_seed(seed, *keys)
    assert len({derive_seed(s, n) for s in range(50) for n in range(300)}) == 50 * 300  # no collision in a grid
    assert derive_seed(0, 7) == 7 and derive_seed(0, 3, 2) == 3 * 100_003 + 2  # seed 0 as the table was built
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1, 0)


@pytest.mark.parametrize("seed", [1, 2**32 - 1])
def test_a_training_search_with_any_seed_trains_every_trial(seed):
    ev = TrainEvaluator(CellSpace(), TINY)
    result = search(CellSpace(), RandomSearch(), ev, budget=2, seed=seed, progress=False)
    assert [t.failed for t in result.trials] == [False, False], [t.result.get("error") for t in result.trials]
    again = search(CellSpace(), RandomSearch(), ev, budget=2, seed=seed, progress=False)
    assert [t.result["val_acc"] for t in again.trials] == [t.result["val_acc"] for t in result.trials]


def test_a_proxy_search_with_per_query_seeds_works_for_large_search_seeds():
    ev = ProxyEvaluator(CellSpace(), "synflow", TINY, init_seed=None)
    for seed in (4_295, 2**32 - 1):
        result = search(CellSpace(), RandomSearch(), ev, budget=3, seed=seed, objective="synflow", progress=False)
        assert not any(t.failed for t in result.trials), [t.result.get("error") for t in result.trials]


@pytest.mark.parametrize("seed", [1, 2**32 - 1])
def test_fit_and_its_resume_work_for_any_seed(tmp_path, seed):
    data = get_dataset("digits")

    def run(path, callbacks=()):
        seed_everything(seed)
        return fit(ConvNet(1, 10), data.train, data.val, epochs=3, seed=seed, checkpoint=path, progress=False,
                   callbacks=callbacks)

    def killed_in_epoch_2(history):
        if len(history) == 2:
            raise KeyboardInterrupt

    full = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", [killed_in_epoch_2])
    resumed = run(tmp_path / "b.pt")
    assert [r["val_acc"] for r in resumed.records] == [r["val_acc"] for r in full.records]


def test_darts_with_a_large_seed_runs():
    data = get_dataset("digits", train_size=200)
    res = darts_search(data, epochs=1, channels=4, seed=2**32 - 1, progress=False)
    assert len(res.arch) == 6


@pytest.mark.parametrize("seed", ["1", "4295"])
def test_the_command_line_trains_with_a_nonzero_seed(capsys, seed):
    code = main(["search", "--dataset", "digits", "--train-size", "200", "--epochs", "1", "--channels", "4",
                 "--budget", "2", "--strategy", "random", "--seed", seed])
    out = capsys.readouterr().out
    assert code == 0 and "0 failed" in out, out


def test_a_budget_for_another_dataset_takes_that_datasets_defaults_not_mnists():
    budget = TrainBudget("digits")
    assert budget.data_options == {} and TrainBudget.for_dataset("digits") == budget
    assert TrainBudget.for_dataset("mnist5k") == TrainBudget() and TrainBudget().data_options["train_size"] == 2000
    assert TrainBudget.for_dataset("digits", epochs=1).epochs == 1
    TrainEvaluator(CellSpace(), budget)  # no "train_size ... 1..1257, got 2000"


def test_unused_to_val_without_train_size_is_refused_by_the_data_layer_itself():
    from dfl_toolkit.errors import UsageError

    with pytest.raises(UsageError, match="unused_to_val.*train_size"):
        get_dataset("digits", unused_to_val=True)
    with pytest.raises(UsageError, match="unused_to_val.*train_size"):
        TrainBudget("digits", data_options={"unused_to_val": True})
    assert len(get_dataset("digits", train_size=500, unused_to_val=True).val) == 180 + 1257 - 500


@pytest.mark.parametrize("seed", [1, 4_295, 2**32 - 1])
def test_a_table_search_with_any_seed_repeats_and_draws_both_table_seeds(seed):
    from dfl_toolkit.nas import Benchmark, RegularizedEvolution, TabularEvaluator

    ev = TabularEvaluator(Benchmark.load())  # the shipped table: every cell
    runs = [search(CellSpace(), RegularizedEvolution(), ev, budget=30, seed=seed, progress=False) for _ in range(2)]
    assert [t.arch for t in runs[0].trials] == [t.arch for t in runs[1].trials]
    assert not any("error" in t.result for t in runs[0].trials)
    seeds_used = {derive_seed(seed, n) % len(ev.seeds) for n in range(30)}
    assert seeds_used == set(range(len(ev.seeds)))  # trials are not all read from one table seed
