"""Local search, BANANAS, successive halving and Hyperband on the published NAS-Bench-201 table, and the
search loop's time budget (``max_cost``) and fidelities."""

import json
import math

import pytest

from dfl_toolkit.errors import UsageError
from dfl_toolkit.nas import Benchmark, CellSpace, RandomSearch, TabularEvaluator, search
from dfl_toolkit.nas.strategies import STRATEGIES, Hyperband, LocalSearch, PredictorSearch, SuccessiveHalving
from dfl_toolkit.nas.strategies.predictor import PathEncoder, routes

SPACE = CellSpace()
NEW = {"local": LocalSearch, "predictor": lambda: PredictorSearch(epochs=50, refit_every=5),
       "successive-halving": SuccessiveHalving, "hyperband": Hyperband}


@pytest.fixture(scope="module")
def bench():
    return Benchmark.load("nb201_cifar10")


class TwoFidelities(TabularEvaluator):
    """The published table's evaluator (fidelities 12ep and 200ep), counting its calls."""

    def __init__(self, bench):
        super().__init__(bench)
        self.calls = 0

    def __call__(self, arch, seed=0, fidelity=None):
        self.calls += 1
        return super().__call__(arch, seed, fidelity)


def trials_of(result):
    return [(t.arch, t.fidelity, t.result, t.cost) for t in result.trials]


@pytest.mark.parametrize("seed", [0, 5, 2**32 - 1])
@pytest.mark.parametrize("name", sorted(NEW))
def test_each_new_strategy_runs_for_any_seed_and_repeats_exactly(bench, name, seed):
    assert STRATEGIES[name].name == name
    runs = [search(SPACE, NEW[name](), TwoFidelities(bench), 25, seed=seed, progress=False) for _ in range(2)]
    assert len(runs[0].trials) == 25 and trials_of(runs[0]) == trials_of(runs[1])
    assert not runs[0].best.failed and runs[0].best.fidelity is None
    other = search(SPACE, NEW[name](), TwoFidelities(bench), 25, seed=seed + 1 if seed < 2**32 - 1 else 0,
                   progress=False)
    assert [t.arch for t in other.trials] != [t.arch for t in runs[0].trials]


class Killed(Exception):
    pass


@pytest.mark.parametrize("name", sorted(NEW))
def test_a_killed_search_resumes_from_its_checkpoint_identically(bench, tmp_path, name):
    full = search(SPACE, NEW[name](), TwoFidelities(bench), 30, seed=3, progress=False)

    def kill(result):
        if len(result.trials) >= 13:
            raise Killed

    path = tmp_path / "search.json"
    with pytest.raises(Killed):
        search(SPACE, NEW[name](), TwoFidelities(bench), 30, seed=3, checkpoint=path, progress=False, callbacks=[kill])
    saved = json.loads(path.read_text())["trials"]
    again = TwoFidelities(bench)
    resumed = search(SPACE, NEW[name](), again, 30, seed=3, checkpoint=path, progress=False)
    assert again.calls == 30 - len(saved)  # nothing evaluated twice
    assert trials_of(resumed) == trials_of(full)


def test_a_time_budget_stops_before_the_trial_that_would_pass_it(bench, tmp_path):
    """Rule: trials count in ask order while their summed cost stays <= max_cost; the first that would take it past
    max_cost ends the search, uncounted (it stays in the checkpoint, so a larger max_cost does not redo it)."""
    ev = TabularEvaluator(bench)
    unlimited = search(SPACE, RandomSearch(), ev, 40, seed=1, progress=False)
    spent = unlimited.cumulative_cost()
    limit = (spent[20] + spent[21]) / 2  # between the 21st and 22nd trial's summed cost
    path = tmp_path / "timed.json"
    timed = search(SPACE, RandomSearch(), ev, max_cost=limit, seed=1, checkpoint=path, progress=False)
    assert len(timed.trials) == 21 and timed.cumulative_cost()[-1] <= limit < spent[21]
    assert trials_of(timed) == trials_of(unlimited)[:21]
    saved = json.loads(path.read_text())
    assert saved["max_cost"] == limit and saved["budget"] is None and len(saved["trials"]) == 22
    both = search(SPACE, RandomSearch(), ev, 10, max_cost=limit, seed=1, progress=False)
    assert len(both.trials) == 10  # whichever comes first
    counted = TwoFidelities(bench)
    longer = search(SPACE, RandomSearch(), counted, max_cost=spent[29], seed=1, checkpoint=path, progress=False)
    assert len(longer.trials) == 30 and counted.calls == 31 - 22  # trials 23 to 31: the 22nd was not redone
    assert len(json.loads(path.read_text())["trials"]) == 31  # the 31st does not fit in spent[29]
    nb201 = search(SPACE, RandomSearch(), TwoFidelities(bench), max_cost=12000.0, seed=0, progress=False)
    assert 3 <= len(nb201.trials) <= 20 and nb201.cumulative_cost()[-1] <= 12000.0  # ~1,800 s per 200-epoch run


class ThreeFidelities:
    fidelities = ("3ep", "12ep", "200ep")

    def __call__(self, arch, seed=0, fidelity=None):
        return {"val_acc": 1.0, "cost": 1.0}


def test_multi_fidelity_trials_record_their_fidelity_and_its_cost(bench):
    ev = TwoFidelities(bench)
    result = search(SPACE, SuccessiveHalving(eta=3, n=9), ev, 24, seed=0, progress=False)
    assert [t.fidelity for t in result.trials] == (["12ep"] * 9 + [None] * 3) * 2
    for t in result.trials:
        row = bench.query(t.arch)
        assert t.cost == (row["train_time_12ep"] if t.fidelity else row["train_time"])
        assert t.result["val_acc"] == (row["val_acc_12ep"] if t.fidelity else row["val_acc"])
    for first in (0, 12):  # each bracket promotes its best third at 12 epochs to 200 epochs
        low = sorted(result.trials[first:first + 9], key=lambda t: -t.result["val_acc"])
        assert [t.arch for t in result.trials[first + 9:first + 12]] == [t.arch for t in low[:3]]
    assert result.best in result.trials[9:12] + result.trials[21:24]  # only full-fidelity results count
    assert result.incumbent()[:9] == [-math.inf] * 9 and result.incumbent()[9] > 0
    hb = search(SPACE, Hyperband(eta=3), ThreeFidelities(), 9 + 3 + 1 + 5 + 1 + 3, seed=0, progress=False)
    assert [t.fidelity for t in hb.trials] == (["3ep"] * 9 + ["12ep"] * 3 + [None] + ["12ep"] * 5 + [None]
                                               + [None] * 3)  # brackets s = 2, 1, 0 of Li et al.'s Algorithm 1


def test_local_search_climbs_to_the_first_better_neighbour_and_never_evaluates_a_cell_twice(bench):
    strategy = LocalSearch()
    result = search(SPACE, strategy, TabularEvaluator(bench), 300, seed=2, progress=False)
    keys = [SPACE.canonical(SPACE.from_str(t.arch)) for t in result.trials]
    assert len(set(keys)) == 300  # not even an isomorphic copy
    centre, restarts = None, 0
    for t in result.trials:  # replay the rule: a neighbour of the current cell, or a restart at a local optimum
        arch, score = SPACE.from_str(t.arch), t.result["val_acc"]
        if centre is not None and sum(a != b for a, b in zip(arch, centre[0], strict=True)) == 1:
            if score > centre[1]:
                centre = (arch, score)
            continue
        if centre is not None:  # a restart: every neighbour was evaluated (or isomorphic to one) and none better
            neighbours = {SPACE.canonical(centre[0][:i] + (o,) + centre[0][i + 1:]) for i in range(6)
                          for o in SPACE.ops if o != centre[0][i]}
            assert neighbours <= set(keys[:t.number]), f"trial {t.number} restarted before the optimum was reached"
            restarts += 1
        centre = (arch, score)
    assert restarts == len(strategy.optima) >= 1


def test_path_encoding_counts_operation_sequences_along_input_to_output_paths():
    assert routes(SPACE.edges) == [[3], [0, 4], [1, 5], [0, 2, 5]]  # 0->3, 0->1->3, 0->2->3, 0->1->2->3
    encode = PathEncoder(SPACE)
    assert len(encode.index) == 4 + 4**2 + 4**3  # paths of 1, 2, 3 operations, none excluded
    convs = encode(("nor_conv_3x3",) * 6)
    assert sum(convs) == 4 and convs[encode.index[("nor_conv_3x3", "nor_conv_3x3")]] == 2
    cut = encode(("nor_conv_3x3", "nor_conv_3x3", "none", "none", "nor_conv_3x3", "nor_conv_3x3"))
    assert sum(cut) == 2 and cut[encode.index[("nor_conv_3x3",)]] == 0  # a none edge carries no path


class Broken(SuccessiveHalving):
    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def ask(self):
        return self.answer(self)


class Free(TwoFidelities):
    def __call__(self, arch, seed=0, fidelity=None):
        return {"val_acc": 0.5, "cost": 0.0}


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give budget .*, max_cost .*, or both"),
    ({"budget": 0}, "budget is the number of evaluations"),
    ({"max_cost": 0}, "max_cost is the summed cost .* a positive finite number, got 0"),
    ({"max_cost": -5.0}, "positive finite number, got -5.0"),
    ({"max_cost": math.inf}, "positive finite number, got inf"),
    ({"max_cost": math.nan}, "positive finite number, got nan"),
    ({"max_cost": "12000"}, "positive finite number, got '12000'"),
    ({"max_cost": True}, "positive finite number, got True"),
])
def test_bad_budgets_get_one_clear_error(bench, kwargs, message):
    with pytest.raises(UsageError, match=message):
        search(SPACE, RandomSearch(), TabularEvaluator(bench), progress=False, **kwargs)


def test_bad_strategy_settings_and_fidelities_get_one_clear_error(bench):
    for make, message in ((lambda: SuccessiveHalving(eta=1), "eta is .* an int >= 2, got 1"),
                          (lambda: SuccessiveHalving(n=0), "n is the number of cells .* got 0"),
                          (lambda: Hyperband(eta=2.5), "an int >= 2, got 2.5"),
                          (lambda: PredictorSearch(initial=0), "initial must be a positive int, got 0")):
        with pytest.raises(UsageError, match=message):
            make()
    ev = TwoFidelities(bench)
    with pytest.raises(UsageError, match=r"asked for fidelity '1ep'; the evaluator offers '12ep', '200ep'"):
        search(SPACE, Broken(lambda s: (SPACE.sample(s.rng), "1ep")), ev, 3, progress=False)
    with pytest.raises(UsageError, match=r"is multi_fidelity, so its ask\(\) returns \(arch, fidelity\)"):
        search(SPACE, Broken(lambda s: SPACE.sample(s.rng)), ev, 3, progress=False)
    with pytest.raises(UsageError, match="max_cost without a budget needs evaluations that cost something"):
        search(SPACE, RandomSearch(), Free(bench), max_cost=10.0, progress=False)
    assert ev.calls == 0
