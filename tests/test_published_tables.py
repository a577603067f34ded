"""The published NAS-Bench-201 results shipped as package data (nb201_cifar10, nb201_cifar100, nb201_imagenet16):
whole and intact, queried like the toolkit's own table, searched by the tabular evaluator and the command line.

The expected numbers are the published ones (NAS-Bench-201's paper and README), read here from the shipped files."""

import fnmatch
import gzip
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from dfl_toolkit.errors import DFLError, UnknownNameError, UsageError
from dfl_toolkit.nas import (
    Benchmark,
    CellSpace,
    RegularizedEvolution,
    TabularEvaluator,
    count_flops,
    count_params,
    search,
)
from dfl_toolkit.nas.benchmark.published import PublishedBenchmark
from dfl_toolkit.nas.benchmark.table import TABLES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

SPACE = CellSpace()
NAMES = ("nb201_cifar10", "nb201_cifar100", "nb201_imagenet16")
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
SEARCHED = ("val_acc", "val_acc_12ep", "test_acc", "train_time", "train_time_12ep")  # what searches rely on


@pytest.fixture(scope="module")
def tables() -> dict[str, PublishedBenchmark]:
    return {name: Benchmark.load(name) for name in NAMES}


@pytest.mark.parametrize(("name", "best"), [("nb201_cifar10", 94.37), ("nb201_cifar100", 73.51),
                                            ("nb201_imagenet16", 47.31)])
def test_each_table_holds_every_cell_and_the_published_optimum(tables, name, best):
    bench = tables[name]
    assert isinstance(bench, PublishedBenchmark) and len(bench) == len(bench.archs()) == 15_625
    assert round(float(bench.full_space("test_acc").max()), 2) == best
    row = bench.query(bench.archs()[int(np.argmax(bench.metric("test_acc")))])
    assert set(SEARCHED) | {"test_acc_one_seed", "params", "flops", "zen"} <= set(row)
    assert row["train_time_12ep"] == pytest.approx(row["train_time"] * 12 / 200, abs=0.06)
    assert 0 < row["val_acc_12ep"] < row["val_acc"] <= 100 and row["train_time"] > 0
    meta = bench.meta
    assert meta["name"] == name and meta["space"] == SPACE.name and set(meta["columns"]) == set(bench.columns)
    assert {"naslib_zen", "naslib_zc", "nats", "landscapes", "mini"} == set(meta["sources"])
    assert all(s["from"] and s["licence"] for s in meta["sources"].values()) and len(meta["sha256"]) == 64


def test_the_all_skip_cell_is_the_collapse_darts_finds():
    assert round(Benchmark.load("nb201_cifar10").query(ALL_SKIP)["test_acc"], 2) == 54.30


def test_cifar10_has_the_3_seed_means_and_the_others_say_they_lack_them(tables):
    c10, c100 = tables["nb201_cifar10"], tables["nb201_cifar100"]
    assert {"val_acc_mean3", "test_acc_mean3"} <= set(c10.query(ALL_SKIP)) and not c10.meta["missing"]
    assert {"val_acc_mean3", "test_acc_mean3"} == set(c100.meta["missing"]) == set(tables["nb201_imagenet16"].meta[
        "missing"])
    assert "val_acc_mean3" not in c100.query(ALL_SKIP)
    assert "estimate" in c100.meta["columns"]["train_time"] and "estimate" not in c10.meta["columns"]["train_time"]


def test_string_and_tuple_queries_agree_and_isomorphic_twins_are_rows_of_their_own(tables):
    bench = tables["nb201_cifar10"]
    rng = random.Random(0)
    for arch in [SPACE.from_str(ALL_SKIP), *(SPACE.sample(rng) for _ in range(20))]:
        assert bench.query(SPACE.to_str(arch)) == bench.query(arch) == bench.query(list(arch))
        assert bench.query(arch)["test_acc"] == bench.metric("test_acc")[bench.archs().index(arch)]
    classes = defaultdict(list)
    for i, arch in enumerate(bench.archs()):
        classes[SPACE.canonical(arch)].append(i)
    assert len(classes) == bench.meta["unique_cells"] == 6466
    val = bench.metric("val_acc")  # each cell was trained on its own: twins have their own runs' values
    assert sum(len({val[i] for i in rows}) > 1 for rows in classes.values() if len(rows) > 1) > 1000


def test_unknown_metrics_and_per_seed_queries_get_clear_errors(tables):
    bench = tables["nb201_cifar100"]
    with pytest.raises(UnknownNameError, match=r"unknown metric of nb201_cifar100 'val_acc_mean3'; did you mean "
                                               r".*accepted: .*test_acc_one_seed.*val_acc_12ep"):
        bench.metric("val_acc_mean3")
    with pytest.raises(UsageError, match="nb201_cifar100 holds one value per cell, not one per training seed"):
        bench.query(ALL_SKIP, seed=1)
    with pytest.raises(UnknownNameError, match="unknown option for edge 1<-0: 'conv_3x3'"):
        bench.query(("conv_3x3",) * 6)


def test_a_damaged_table_is_refused(tmp_path):
    path = tmp_path / "nb201_cifar10.json.gz"
    with gzip.open(TABLES / path.name, "rt") as f:
        data = json.load(f)
    data["columns"]["test_acc"][0] += 1.0
    with gzip.open(path, "wt") as f:
        json.dump(data, f)
    with pytest.raises(DFLError, match=r"nb201_cifar10.json.gz is damaged: its columns do not match the checksum"):
        Benchmark.load(path)
    shutil.copy(TABLES / path.name, path)
    assert len(Benchmark.load(path)) == 15_625  # the intact copy loads by its path too


def test_params_and_flops_are_those_of_the_built_network(tables):
    rng = random.Random(3)
    for bench in tables.values():
        net_options = bench.meta["network"]
        for arch in (SPACE.from_str(ALL_SKIP), SPACE.sample(rng)):
            net = SPACE.build(arch, num_classes=net_options["num_classes"], channels=net_options["channels"],
                              cells_per_stage=net_options["cells_per_stage"], stages=net_options["stages"])
            built = {"params": count_params(net), "flops": count_flops(net, tuple(net_options["input"]))}
            assert bench.costs(arch) == built == {k: bench.query(arch)[k] for k in built}


def test_naslib_proxies_sit_on_the_cells_naslib_scored(tables):
    # naslib/data/zc_nasbench201.json, key "(4, 3, 3, 3, 2, 3)": operation indices over the edges
    # (1,2) (1,3) (1,4) (2,3) (2,4) (3,4), nodes from 1, ops [skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool]
    cell = "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    published = {"nb201_cifar10": (88.24, 65.9094, 428_346), "nb201_cifar100": (68.34, 68.2148, 434_196),
                 "nb201_imagenet16": (42.2, 67.7884, 435_496)}  # val_accuracy, synflow, params * 1e6 in that file
    for name, (val, synflow, params) in published.items():
        bench = tables[name]
        row = bench.query(cell)
        assert (round(row["val_acc"], 2), row["synflow"], row["params"]) == (val, synflow, params)
        assert len(bench.proxy_rows) == 491 and "491 of 491" in bench.meta["checks"]["naslib_mapping"]
        unscored = next(a for i, a in enumerate(bench.archs()) if i not in bench.proxy_rows)
        assert "synflow" not in bench.query(unscored) and "zen" in bench.query(unscored)
        scored = bench.metric("synflow")
        assert np.isfinite(scored).sum() == 491 and scored[bench.archs().index(SPACE.from_str(cell))] == synflow
    assert tables["nb201_cifar10"].proxy_rows.keys() == tables["nb201_imagenet16"].proxy_rows.keys()


def test_the_tabular_evaluator_reads_the_published_columns(tables):
    bench = tables["nb201_cifar10"]
    ev = TabularEvaluator(bench)
    assert ev.metrics[0] == "val_acc" and set(SEARCHED) | {"mean_test_acc", "params", "flops"} <= set(ev.metrics)
    assert "mean_val_acc" not in ev.metrics and "synflow" not in ev.metrics  # not for every cell
    arch = SPACE.from_str(ALL_SKIP)
    row = bench.query(arch)
    for seed in (0, 7, 2**32 - 1):  # one run per cell: every seed reads it
        got = ev(arch, seed=seed)
        assert got == {**row, "mean_test_acc": row["test_acc"], "cost": row["train_time"]}
    assert "mean_val_acc" in TabularEvaluator(Benchmark.load()).metrics  # the toolkit's table is unchanged


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1])
def test_a_search_on_a_published_table_repeats_for_any_seed(tables, seed):
    ev = TabularEvaluator(tables["nb201_imagenet16"])
    runs = [search(SPACE, RegularizedEvolution(), ev, budget=40, seed=seed, progress=False) for _ in range(2)]
    assert [t.arch for t in runs[0].trials] == [t.arch for t in runs[1].trials]
    assert not any(t.failed for t in runs[0].trials)
    assert [t.cost for t in runs[0].trials] == [t.result["train_time"] for t in runs[0].trials]
    cheap = search(SPACE, RegularizedEvolution(), ev, budget=10, seed=seed, objective="val_acc_12ep", progress=False)
    assert cheap.best.result["val_acc_12ep"] == max(t.result["val_acc_12ep"] for t in cheap.trials)


def test_command_line_searches_and_queries_a_published_table(capsys):
    from dfl_toolkit.__main__ import main

    assert main(["search", "--table", "nb201_cifar10", "--strategy", "evolution", "--budget", "100", "--seed", "3",
                 "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "100 evaluations of" in out and "0 failed" in out and "mean_test_acc" in out
    assert main(["benchmark", "query", "nb201_cifar10", ALL_SKIP]) == 0
    row = json.loads(capsys.readouterr().out)
    assert round(row["test_acc"], 2) == 54.30 and set(SEARCHED) <= set(row)
    assert main(["benchmark", "query", "nb201_cifar100", ALL_SKIP, "--seed", "1"]) == 2
    assert "one value per cell" in capsys.readouterr().err
    assert main(["search", "--table", "nb201_cifar100", "--objective", "val_acc_mean3", "--budget", "2"]) == 2
    assert "accepted: " in capsys.readouterr().err
    for command in (["search"], ["benchmark", "query"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "nb201_cifar10, nb201_cifar100, nb201_imagenet16" in " ".join(capsys.readouterr().out.split())


def test_the_tables_their_notice_and_licences_are_package_data():
    root = Path(__file__).resolve().parent.parent
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["dfl_toolkit.nas.benchmark"]
    shipped = [p.relative_to(TABLES.parent).as_posix() for p in TABLES.rglob("*") if p.is_file()]
    needed = [f"tables/{n}.json.gz" for n in NAMES] + ["tables/NOTICE"]
    licences = [s for s in shipped if s.startswith("tables/LICENSES/")]
    assert set(needed) <= set(shipped) and len(licences) == 3
    for path in needed + licences:
        assert any(fnmatch.fnmatch(path, p) for p in patterns), f"{path} is not package data: {patterns}"
    notice = (TABLES / "NOTICE").read_text()
    for credit in ("NAS-Bench-201", "NATS-Bench", "NASLib", "NAS-Landscapes", "mini-NAS-Bench-201", "Apache"):
        assert credit in notice
    assert sum(p.stat().st_size for p in TABLES.glob("nb201_[ci]*.json.gz")) < 3_000_000
