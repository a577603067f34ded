import random

import pytest
import torch

from dfl_toolkit.errors import UnknownNameError
from dfl_toolkit.nas import MacroSpace, RegularizedEvolution, compound_scaling, count_flops, count_params, search

SPACE = MacroSpace()


def test_size_round_trip_and_mutation():
    assert len(SPACE) == (3 * 4 * 2 * 3) ** 3
    rng = random.Random(0)
    for _ in range(50):
        arch = SPACE.sample(rng)
        assert SPACE.from_str(SPACE.to_str(arch)) == arch
        child = SPACE.mutate(arch, rng)
        assert sum(a != b for a, b in zip(arch, child, strict=True)) == 1
    assert len(SPACE.encode(arch)) == 3 * (3 + 4 + 2 + 3)


def test_built_networks_run_and_scale_as_compound_scaling_says():
    arch = SPACE.from_str("d2-w16-k3-e6|d2-w24-k5-e3|d2-w32-k3-e6")
    base = SPACE.build(arch, in_channels=1)
    assert base(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    s = compound_scaling(2)
    bigger = SPACE.build(arch, in_channels=1, width_mult=s["width_mult"], depth_mult=s["depth_mult"])
    side = round(28 * s["resolution_mult"])
    ratio = count_flops(bigger, (1, side, side)) / count_flops(base, (1, 28, 28))
    assert count_params(bigger) > count_params(base)
    assert 0.5 * s["flops_mult"] < ratio < 2 * s["flops_mult"]  # roughly doubles per phi step
    assert compound_scaling(1)["flops_mult"] == pytest.approx(1.2 * 1.1**2 * 1.15**2)


def test_search_on_the_macro_space_finds_a_small_accurate_network():
    def evaluator(arch, seed):
        d1, w1, k1, e1 = arch[:4]
        return {"val_acc": 0.1 * d1 + w1 / 32 - 0.05 * (k1 == 5) + 0.01 * e1}

    result = search(SPACE, RegularizedEvolution(), evaluator, 150, seed=0, progress=False)
    assert result.best_arch[:4] == (3, 32, 3, 6)


def test_bad_macro_architectures():
    with pytest.raises(ValueError, match="cannot parse"):
        SPACE.from_str("deep and wide")
    with pytest.raises(UnknownNameError, match="stage1.width"):
        SPACE.validate((2, 17, 3, 6) * 3)
