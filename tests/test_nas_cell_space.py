"""The NAS-Bench-201 cell space: counting, canonical form, string form, mutation, building."""

import random

import pytest
import torch

from dfl_toolkit.errors import UnknownNameError, UsageError
from dfl_toolkit.nas import CellSpace

SPACE = CellSpace()


def test_space_has_15625_cells_and_6466_unique():
    cells = list(SPACE.enumerate())
    assert len(cells) == len(SPACE) == 15625 == len(set(cells))
    assert len({SPACE.canonical(a) for a in cells}) == 6466  # the published NAS-Bench-201 count


def test_isomorphic_cells_share_a_canonical_form_and_others_do_not():
    # node 1 is a copy of the input, so which of nodes 0 and 1 feeds which op of node 2 does not matter
    a = ("skip_connect", "nor_conv_3x3", "avg_pool_3x3", "none", "none", "skip_connect")
    b = ("skip_connect", "avg_pool_3x3", "nor_conv_3x3", "none", "none", "skip_connect")
    assert SPACE.canonical(a) == SPACE.canonical(b)
    # an edge out of a dead node is as good as none
    c = ("none", "skip_connect", "none", "nor_conv_3x3", "avg_pool_3x3", "skip_connect")
    d = ("none", "skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "skip_connect")
    assert SPACE.canonical(c) == SPACE.canonical(d)
    assert SPACE.canonical(("nor_conv_3x3",) * 6) != SPACE.canonical(("nor_conv_1x1",) * 6)
    assert SPACE.is_dead(("none",) * 6) and not SPACE.is_dead(("skip_connect",) * 6)


def test_isomorphic_cells_compute_the_same_function():
    torch.manual_seed(0)
    a = ("skip_connect", "nor_conv_3x3", "avg_pool_3x3", "none", "none", "skip_connect")
    b = ("skip_connect", "avg_pool_3x3", "nor_conv_3x3", "none", "none", "skip_connect")
    assert SPACE.canonical(a) == SPACE.canonical(b)
    net_a = SPACE.build(a, in_channels=1, channels=4, cells_per_stage=1, stages=1)
    net_b = SPACE.build(b, in_channels=1, channels=4, cells_per_stage=1, stages=1)
    # the conv on edge 2<-0 in a sits on edge 2<-1 in b: give it the same weights
    state = {k.replace("2<-0", "2<-1"): v for k, v in net_a.state_dict().items()}
    net_b.load_state_dict(state)
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(net_a.eval()(x), net_b.eval()(x), atol=1e-6)


def test_string_form_round_trips_and_matches_nas_bench_201():
    rng = random.Random(0)
    for _ in range(200):
        arch = SPACE.sample(rng)
        assert SPACE.from_str(SPACE.to_str(arch)) == arch
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert SPACE.to_str(SPACE.from_str(text)) == text


def test_mutation_changes_exactly_one_edge():
    rng = random.Random(1)
    arch = SPACE.sample(rng)
    for _ in range(100):
        child = SPACE.mutate(arch, rng)
        assert sum(x != y for x, y in zip(arch, child, strict=True)) == 1
        arch = child


def test_encoding_is_one_hot_per_edge():
    enc = SPACE.encode(("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"))
    assert len(enc) == 30 and sum(enc) == 6
    assert enc[:5] == [1, 0, 0, 0, 0] and enc[25:] == [1, 0, 0, 0, 0]


@pytest.mark.parametrize("size", [8, 14, 28, 32])
def test_built_network_runs_on_several_input_sizes(size):
    net = SPACE.build(("nor_conv_3x3",) * 6, in_channels=3, num_classes=7, channels=4, cells_per_stage=2)
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 7)


def test_bad_architectures_get_clear_errors():
    with pytest.raises(UnknownNameError, match="conv_5x5.; did you mean .*accepted: avg_pool_3x3"):
        SPACE.validate(("conv_5x5",) * 6)
    with pytest.raises(ValueError, match="sequence of 6 choices"):
        SPACE.validate(("none",) * 5)
    with pytest.raises(ValueError, match="cannot parse"):
        SPACE.from_str("|none~0|+|none~0|")
    with pytest.raises(ValueError, match="should read from node 1"):
        SPACE.from_str("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(UsageError, match="cannot parse 'nor_conv_3x3'"):  # a DFLError: the command line's one line
        SPACE.from_str("nor_conv_3x3")
    spaced = " |nor_conv_3x3~0| + |none~0|skip_connect~1| + |none~0|none~1|avg_pool_3x3~2| "
    assert SPACE.from_str(spaced) == SPACE.from_str(spaced.replace(" ", ""))


@pytest.mark.parametrize("arch", [("nor_conv_3x3",) * 6, ("avg_pool_3x3", "skip_connect", "nor_conv_1x1",
                                                           "nor_conv_3x3", "none", "nor_conv_3x3")])
def test_image_cells_build_as_the_shipped_table_measured_them(arch):
    from dfl_toolkit.nas import Benchmark

    net = SPACE.build(arch, in_channels=1, num_classes=10, channels=8, cells_per_stage=1)
    assert sum(p.numel() for p in net.parameters()) == Benchmark.load().query(arch)["params"]
    assert list(net.state_dict())[:3] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert list(net.state_dict())[-2:] == ["head.4.weight", "head.4.bias"]


def test_the_same_cells_build_for_1d_signals():
    net = SPACE.build(("nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none", "nor_conv_3x3"),
                      in_channels=1, num_classes=10, channels=4, cells_per_stage=1, dims=1)
    assert net(torch.zeros(2, 1, 40)).shape == (2, 10)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    with pytest.raises(ValueError, match="dims must be 1 .* or 2"):
        SPACE.build(("nor_conv_3x3",) * 6, dims=3)


def test_an_evaluator_builds_1d_cells_for_a_signal_dataset():
    from dfl_toolkit.nas import TrainBudget, TrainEvaluator

    budget = TrainBudget("mnist1d", data_options={"train_size": 1000}, epochs=2, batch_size=32, lr=0.05,
                         skeleton={"channels": 4, "cells_per_stage": 1})
    ev = TrainEvaluator(SPACE, budget)
    assert any(isinstance(m, torch.nn.Conv1d) for m in ev.build(("nor_conv_3x3",) * 6).modules())
    result = ev(("nor_conv_3x3",) * 6, seed=0)
    assert not result["failed"] and result["test_acc"] > 0.25  # learned from the (1, 40) signals: chance is 0.1


def test_a_space_or_skeleton_that_does_not_fit_the_inputs_is_refused_when_the_evaluator_is_made():
    from dfl_toolkit.nas import MacroSpace, TrainBudget, TrainEvaluator

    with pytest.raises(ValueError, match=r"macro_mbconv space builds networks for images .* \(1, 40\)"):
        TrainEvaluator(MacroSpace(), TrainBudget("mnist1d", data_options={}, skeleton={}))
    with pytest.raises(ValueError, match=r"builds networks for images \(C, H, W\) or 1-D signals \(C, L\); "
                                         r"'dependency' has inputs of shape \(21,\)$"):
        TrainEvaluator(SPACE, TrainBudget("dependency", data_options={}))
    with pytest.raises(ValueError, match="skeleton dims=2 does not fit 'mnist1d'.*leave dims out"):
        TrainEvaluator(SPACE, TrainBudget("mnist1d", data_options={}, skeleton={"channels": 4, "dims": 2}))
