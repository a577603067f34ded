import json

import pytest

from dfl_toolkit.errors import CheckpointError, UsageError
from dfl_toolkit.nas import CellSpace, RegularizedEvolution, search
from dfl_toolkit.nas.objectives import MnasReward, mnas_reward, pareto_front


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    pts = [(0.9, 100), (0.8, 50), (0.7, 80), (0.9, 120), (0.6, 40), (0.8, 50)]
    assert pareto_front(pts, (True, False)) == [0, 1, 4, 5]
    assert pareto_front(pts, (True, True)) == [3]
    assert pareto_front([], (True,)) == []


def test_mnas_reward_matches_the_formula():
    assert mnas_reward(0.9, 1.0, 1.0) == 0.9
    assert mnas_reward(0.9, 2.0, 1.0) == pytest.approx(0.9 * 2 ** -0.07)
    assert mnas_reward(0.9, 0.5, 1.0) == pytest.approx(0.9 * 0.5 ** -0.07)  # under budget: a small bonus
    assert mnas_reward(0.9, 2.0, 1.0, alpha=0, beta=-1) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="must be positive"):
        mnas_reward(0.9, 0.0, 1.0)
    with pytest.raises(UsageError, match="target cost must be a positive number, got 0"):  # not a failed trial each
        MnasReward(lambda arch, seed: {}, "params", target=0)


def test_a_hard_cost_constraint_steers_search_to_cheap_architectures():
    space = CellSpace()

    def evaluator(arch, seed):  # more convolutions: more accurate and more expensive
        convs = sum(op.startswith("nor_conv") for op in arch)
        return {"val_acc": 0.5 + 0.08 * convs, "params": 1 + convs}

    free = search(space, RegularizedEvolution(), evaluator, 150, seed=0, progress=False)
    capped = search(space, RegularizedEvolution(), MnasReward(evaluator, "params", target=3, alpha=0, beta=-1),
                    150, seed=0, objective="reward", progress=False)
    assert free.best.result["params"] == 7
    assert capped.best.result["params"] == 3


def test_a_reward_checkpoint_records_the_target_and_the_wrapped_evaluator(tmp_path):
    class Costed:
        def __call__(self, arch, seed):
            return {"val_acc": 0.9, "params": 2}

        def config(self):
            return {"evaluator": "costed"}

    space = CellSpace()
    path = tmp_path / "reward.json"
    search(space, RegularizedEvolution(), MnasReward(Costed(), "params", target=3), 3, seed=0, objective="reward",
           checkpoint=path, progress=False)
    assert json.loads(path.read_text())["config"]["evaluator"]["inner"] == {"evaluator": "costed"}
    with pytest.raises(CheckpointError, match=r"another search \(evaluator.target: saved 3, now 5\)"):
        search(space, RegularizedEvolution(), MnasReward(Costed(), "params", target=5), 3, seed=0, objective="reward",
               checkpoint=path, progress=False)
    assert MnasReward(lambda a, s: {}, "params", target=3).config()["inner"] is None  # a plain function has none
