"""Cross-checks against NASLib's published zero-cost values for NAS-Bench-201 cells (issue 25, part C).

The full comparison (491 cells x 3 datasets) is ``benchmarks/naslib_crosscheck.py``; these are its fast
regression checks on 8 cells. NASLib's values come from the extract in ``tests/data/naslib_zc_sample.json``
(Apache-2.0, source in its note); NASLib's synflow also from the package's shipped ``nb201_cifar10`` table when it
is there (its params column is the toolkit's own count, so NASLib's params come from the extract only).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import dfl_toolkit
from dfl_toolkit.nas import Benchmark, CellSpace
from dfl_toolkit.nas.analysis import spearman
from dfl_toolkit.nas.evaluators.cost import count_params
from dfl_toolkit.nas.proxies import synflow
from dfl_toolkit.nas.spaces.cell import EDGES

SAMPLE = Path(__file__).parent / "data" / "naslib_zc_sample.json"
SHIPPED = Path(dfl_toolkit.__file__).parent / "nas" / "benchmark" / "tables"
NASLIB_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))  # NASLib's op-index order (1 = input node)
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
SPACE = CellSpace()


def to_arch(key: str) -> tuple[str, ...]:
    ops = [NASLIB_OPS[int(i)] for i in key.strip("()").split(",")]
    return tuple(ops[NASLIB_EDGES.index((i + 1, j + 1))] for j, i in EDGES)


@pytest.fixture(scope="module")
def naslib() -> dict[str, dict[str, dict[str, float]]]:
    """NASLib's values for the sample's cells."""
    return json.loads(SAMPLE.read_text())["nasbench201"]


@pytest.fixture(scope="module")
def naslib_synflow(naslib) -> list[float]:
    """NASLib's CIFAR-10 synflow (ln) of the sample's cells: from the shipped table when there is one, checked
    against the extract (the table keeps 6 significant digits)."""
    sample = [c["synflow"] for c in naslib["cifar10"].values()]
    if not (SHIPPED / "nb201_cifar10.json.gz").exists():
        return sample
    bench = Benchmark.load("nb201_cifar10")
    shipped = [bench.query(to_arch(k))["synflow"] for k in naslib["cifar10"]]
    assert shipped == pytest.approx(sample, rel=1e-5, abs=1e-9)
    return shipped


def test_keys_map_to_nb201_arch_strings():
    # NASLib's convert_op_indices_to_str gives this string for (4, 3, 3, 3, 2, 3)
    assert SPACE.to_str(to_arch("(4, 3, 3, 3, 2, 3)")) == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|")


def test_synflow_ranks_real_nb201_networks_like_naslib(naslib, naslib_synflow):
    """CIFAR-10, NB201's skeleton (C=16, N=5), one seed: same order as NASLib and the same value (NASLib stores
    ln synflow; 0 for a cell without a path from input to output) up to the random initialisation."""
    ours = []
    for key in naslib["cifar10"]:
        torch.manual_seed(0)
        ours.append(synflow(SPACE.build(to_arch(key), num_classes=10), (torch.ones(1, 3, 32, 32), None)))
    theirs = naslib_synflow
    assert spearman(ours, theirs) >= 0.9
    for mine, naslib_ln in zip(ours, theirs, strict=True):
        assert (mine == 0) == (naslib_ln == 0)
        if mine > 0:
            assert math.log(mine) == pytest.approx(naslib_ln, abs=0.5)


@pytest.mark.parametrize("dataset", sorted(CLASSES))
def test_params_equal_naslib(naslib, dataset):
    """NASLib counts every parameter (convolutions after a dead node too) in millions, rounded to 1e-6."""
    for key, cell in naslib[dataset].items():
        model = SPACE.build(to_arch(key), num_classes=CLASSES[dataset])
        assert count_params(model) == round(cell["params"] * 1e6), key


@pytest.mark.parametrize(("training", "dtype"), [(True, torch.float32), (False, torch.float64)])
def test_synflow_puts_the_network_back_as_it_was(training, dtype):
    """NASLib scores a copy; the toolkit works in place and must restore mode and precision, not only the
    weights (it left a network in eval mode and in float32, so training it afterwards froze batch norm)."""
    torch.manual_seed(0)
    model = SPACE.build(("nor_conv_3x3",) * 6, channels=4, cells_per_stage=1).train(training).to(dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert synflow(model, (torch.zeros(2, 3, 8, 8), None)) > 0
    assert model.training is training
    assert all(p.dtype == dtype for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
