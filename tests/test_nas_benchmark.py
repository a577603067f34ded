"""The benchmark build (on a tiny slice), packing, the query API and the tabular evaluator."""

import gzip
import json
import shutil

import numpy as np
import pytest

from dfl_toolkit.errors import CheckpointError, DFLError, NotInTableError, UnknownNameError, UsageError
from dfl_toolkit.nas import (
    Benchmark,
    CellSpace,
    RandomSearch,
    TabularEvaluator,
    TrainBudget,
    count_flops,
    count_params,
    search,
)
from dfl_toolkit.nas.benchmark.build import RESULTS, build, pack, read_results, unique_cells

SPACE = CellSpace()
TINY = TrainBudget("digits", {"train_size": 200}, epochs=1, batch_size=64, lr=0.05,
                   skeleton={"channels": 4, "cells_per_stage": 1})


def test_unique_cells_are_the_6466_classes_in_a_fixed_order():
    cells = unique_cells()
    assert len(cells) == 6466 and cells == unique_cells()
    assert len({SPACE.canonical(a) for a in cells}) == 6466


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    first = list(build(out, TINY, seeds=[0, 1], limit=2, progress=False))
    assert len(first) == 4
    more = list(build(out, TINY, seeds=[0, 1], limit=3, progress=False))  # resumes: only the new cell
    assert len(more) == 2 and {r["arch"] for r in more} == {SPACE.to_str(unique_cells()[2])}
    assert list(build(out, TINY, seeds=[0, 1], limit=3, progress=False)) == []
    return out


def test_build_records_every_metric_and_survives_a_cut_line(built, tmp_path):
    rows = read_results(built / RESULTS)
    assert len(rows) == 6
    for r in rows:
        assert {"arch", "seed", "val_acc", "test_acc", "params", "flops", "latency", "train_time"} <= set(r)
        assert 0.0 <= r["test_acc"] <= 1.0 and r["params"] > 0 and r["flops"] > 0
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    with open(copy / RESULTS, "a") as f:
        f.write('{"arch": "cut by a kill')  # a half-written line is ignored, not fatal
    assert len(read_results(copy / RESULTS)) == 6
    added = list(build(copy, TINY, seeds=[0, 1], limit=4, progress=False))  # and appending after it is safe
    assert len(added) == 2 and len(read_results(copy / RESULTS)) == 8


def test_bad_build_and_pack_inputs_get_clear_errors(built, tmp_path):
    with pytest.raises(UsageError, match=r"distinct training seeds, got \[0, 0\]"):
        list(build(tmp_path / "b", TINY, seeds=[0, 0], limit=1, progress=False))
    with pytest.raises(UsageError, match="each build seed must be a non-negative int"):
        list(build(tmp_path / "b", TINY, seeds=[-1], limit=1, progress=False))
    with pytest.raises(UsageError, match="limit is a number of cells"):
        list(build(tmp_path / "b", TINY, seeds=[0], limit=0, progress=False))
    (tmp_path / "afile").write_text("")
    with pytest.raises(UsageError, match="is a file; a build is a folder"):
        list(build(tmp_path / "afile", TINY, seeds=[0], limit=1, progress=False))
    broken = tmp_path / "broken"
    shutil.copytree(built, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(DFLError, match="config.json cannot be read"):
        list(build(broken, TINY, seeds=[0], limit=1, progress=False))
    with pytest.raises(DFLError, match="config.json cannot be read"):
        pack(broken, tmp_path / "t.json.gz")
    with pytest.raises(DFLError, match="is not a benchmark build: it has no config.json"):
        pack(tmp_path / "nothing", tmp_path / "t.json.gz")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(built / "config.json", empty)
    with pytest.raises(DFLError, match="no results in"):
        pack(empty, tmp_path / "empty.json.gz")
    assert not (tmp_path / "empty.json.gz").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"epochs": 0}, "epochs must be a positive int, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive int, got 2.5"),
    ({"lr": -1}, "lr must be a positive number, got -1"),
    ({"skeleton": {"channels": 0, "cells_per_stage": 1}}, "channels must be a positive int, got 0"),
    ({"skeleton": {"channels": 8, "cells_per_stage": 0}}, "cells_per_stage must be a positive int, got 0"),
])
def test_a_bad_training_budget_fails_when_it_is_made(options, message):
    with pytest.raises(UsageError, match=message):  # not later, as one failed trial per architecture
        TrainBudget(**options)


def test_build_refuses_to_mix_budgets(built):
    other = TrainBudget("digits", {"train_size": 200}, epochs=2, skeleton={"channels": 4, "cells_per_stage": 1})
    with pytest.raises(CheckpointError, match=r"budget\.epochs: saved 1, now 2.*use another folder"):
        list(build(built, other, seeds=[0], limit=1, progress=False))


def test_pack_load_query_and_evaluate(built, tmp_path):
    dest = pack(built, tmp_path / "table.json.gz", note="test")
    bench = Benchmark.load(dest)
    assert len(bench) == 3 and bench.meta["seeds"] == [0, 1] and not bench.meta["complete"]
    assert bench.meta["budget"]["epochs"] == 1 and bench.meta["torch"]
    arch = unique_cells()[0]
    row = bench.row(arch)
    q0, q1, mean = bench.query(arch, seed=0), bench.query(arch, seed=1), bench.query(arch)
    assert mean["test_acc"] == pytest.approx((q0["test_acc"] + q1["test_acc"]) / 2)
    assert q0["test_acc"] == row["test_acc"]["0"]
    assert bench.metric("test_acc").shape == (3,) and bench.seed_noise() >= 0
    ev = TabularEvaluator(bench)
    r = ev(arch, seed=1)
    assert r["val_acc"] == q1["val_acc"] and r["cost"] == q1["train_time"] and r["mean_test_acc"] == mean["test_acc"]
    with pytest.raises(NotInTableError, match="not in this table"):  # a KeyError too: "train it instead"
        bench.query(unique_cells()[100])
    with pytest.raises(UnknownNameError, match="seed of this table: 7; accepted: 0, 1"):
        bench.query(arch, seed=7)
    with pytest.raises(UnknownNameError, match="unknown metric 'accuracy'; accepted: flops, latency, params"):
        bench.metric("accuracy")
    with pytest.raises(UnknownNameError, match="seed of this table: 9; accepted: 0, 1"):
        bench.metric("test_acc", seed=9)
    with pytest.raises(UnknownNameError, match="metric measured per seed 'params'"):
        bench.seed_noise("params")
    with pytest.raises(UsageError, match="at least two seeds"):
        bench.seed_noise(seeds=[0])
    assert bench.costs(arch) == {k: row[k] for k in ("params", "flops")}  # 3 rows: too few to fit, the row's
    for name in ("test_acc", "params"):
        with pytest.raises(UsageError, match="holds 3 of 6466 cells; the full space needs all of them"):
            bench.full_space(name)


def test_a_partly_built_seed_is_left_out_of_means_but_counts_for_noise(built, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(built, partial)
    rows = read_results(partial / RESULTS)
    dropped = SPACE.to_str(unique_cells()[2])  # seed 1 not built yet for this cell
    (partial / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows
                                           if not (r["arch"] == dropped and r["seed"] == 1)))
    bench = Benchmark.load(pack(partial, tmp_path / "p.json.gz"))
    assert bench.meta["seeds"] == [0, 1] and bench.seeds == [0]
    for arch in unique_cells()[:3]:
        assert bench.query(arch) == bench.query(arch, seed=0)
    assert list(bench.metric("val_acc")) == list(bench.metric("val_acc", seed=0))
    ev = TabularEvaluator(bench)
    assert ev(unique_cells()[2], seed=1)["val_acc"] == bench.query(unique_cells()[2], seed=0)["val_acc"]
    noise_rows = [r for r in bench.rows if "1" in r["test_acc"]]
    assert len(noise_rows) == 2 and bench.seed_noise() >= 0


def test_a_table_loads_by_name_from_the_data_folder(built, tmp_path, monkeypatch):
    monkeypatch.setenv("DFL_DATA_DIR", str(tmp_path))
    pack(built, tmp_path / "my_table.json.gz")
    assert len(Benchmark.load("my_table")) == 3
    with pytest.raises(DFLError, match="no benchmark table"):
        Benchmark.load("no_such_table")


def test_the_shipped_tables_are_whole_and_intact():
    bench = Benchmark.load()  # the shipped nb201_mnist14 (package data), checksum checked on load
    assert len(bench) == 6466 and bench.meta["unique_cells"] == 6466 and 0 in bench.seeds
    assert bench.meta["budget"]["dataset"] == "mnist5k" and bench.full_space().shape == (15625,)
    per_seed = [bench.full_space("val_acc", seed=s) for s in bench.seeds]  # what one training run measured
    assert np.allclose(np.mean(per_seed, axis=0), bench.full_space("val_acc"))
    assert not np.array_equal(per_seed[0], per_seed[1])
    assert len(Benchmark.load("nb201_digits")) == 500


def test_isomorphic_cells_query_the_same_row(built, tmp_path):
    bench = Benchmark.load(pack(built, tmp_path / "t.json.gz"))
    arch = unique_cells()[0]
    twins = [a for a in SPACE.enumerate() if SPACE.canonical(a) == SPACE.canonical(arch)]
    assert all(bench.row(t) is bench.row(arch) for t in twins)


def test_damaged_or_missing_tables_get_clear_errors(built, tmp_path):
    dest = pack(built, tmp_path / "t.json.gz")
    with gzip.open(dest, "rt") as f:
        data = json.load(f)
    data["rows"][0]["test_acc"]["0"] = 1.0
    with gzip.open(dest, "wt") as f:
        json.dump(data, f)
    with pytest.raises(DFLError, match="damaged"):
        Benchmark.load(dest)
    with pytest.raises(DFLError, match="no benchmark table"):
        Benchmark.load(tmp_path / "missing.json.gz")
    (tmp_path / "junk.json.gz").write_bytes(b"junk")
    with pytest.raises(DFLError, match="not a benchmark table"):
        Benchmark.load(tmp_path / "junk.json.gz")
    good = pack(built, tmp_path / "good.json.gz").read_bytes()
    (tmp_path / "cut.json.gz").write_bytes(good[: len(good) // 2])  # a download or copy cut short
    for name, content in (("cut.json.gz", None), ("list.json.gz", []), ("nosum.json.gz", {"meta": {}, "rows": []})):
        if content is not None:
            with gzip.open(tmp_path / name, "wt") as f:
                json.dump(content, f)
        with pytest.raises(DFLError, match="not a benchmark table"):
            Benchmark.load(tmp_path / name)


def test_isomorphic_cells_share_a_row_but_each_has_its_own_size():
    bench = Benchmark.load()
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    assert bench.row(cell)["arch"] != cell and bench.row(cell)["params"] == 44466  # trained as a smaller twin
    rng = np.random.default_rng(0)
    archs = [SPACE.from_str(cell), *(SPACE.from_index(rng.integers(0, 5, 6)) for _ in range(4))]
    for arch in archs:  # the fitted per-edge costs give what building the cell and counting gives
        net = SPACE.build(arch, in_channels=1, num_classes=10, **bench.meta["budget"]["skeleton"])
        assert bench.costs(arch) == {"params": count_params(net), "flops": count_flops(net, (1, 14, 14))}
    own = TabularEvaluator(bench)(SPACE.from_str(cell), seed=0)
    assert own["params"] == 56674 and own["test_acc"] == bench.row(cell)["test_acc"]["0"]
    assert bench.full_space("params")[list(SPACE.enumerate()).index(SPACE.from_str(cell))] == 56674


def test_search_on_a_partial_table_only_asks_for_built_cells(built, tmp_path):
    bench = Benchmark.load(pack(built, tmp_path / "t.json.gz"))
    result = search(SPACE, RandomSearch(), TabularEvaluator(bench), budget=5, progress=False)
    assert all(t.failed for t in result.trials)  # cells outside a 3-cell table fail cleanly, no crash


def test_command_line_pack_query_and_search(built, tmp_path, capsys):
    from dfl_toolkit.__main__ import main

    table = tmp_path / "cli.json.gz"
    assert main(["benchmark", "pack", str(built), str(table)]) == 0
    assert "3 of 6466 cells" in capsys.readouterr().out
    assert main(["benchmark", "query", str(table), SPACE.to_str(unique_cells()[0])]) == 0
    assert '"test_acc"' in capsys.readouterr().out
    assert main(["search", "--table", str(table), "--budget", "3", "--strategy", "random"]) == 2
    err = capsys.readouterr().err  # refused: most cells would fail
    assert "holds only 3 of 6466 cells" in err and "pack a complete build" in err and "Traceback" not in err
    assert main(["search", "--evaluator", "table", "--budget", "3", "--strategy", "random"]) == 0  # the shipped one
    assert "3 evaluations" in capsys.readouterr().out


def test_command_line_build_can_move_unused_train_images_into_val(tmp_path, capsys):
    from dfl_toolkit.__main__ import main

    out = tmp_path / "bigval"
    args = ["benchmark", "build", "--out", str(out), "--dataset", "digits", "--train-size", "200", "--epochs", "1",
            "--channels", "4", "--seeds", "0", "--limit", "1"]
    assert main([*args, "--unused-to-val"]) == 0
    assert "1 evaluations added" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["budget"]["data_options"] == {"train_size": 200, "unused_to_val": True}
    assert main(args) == 2  # the same folder without the option is another budget: refused, no stack trace
    assert "use another folder for another budget" in capsys.readouterr().err


def test_a_real_search_checkpoint_names_its_budget_and_a_table_search_its_table(built, tmp_path):
    from dfl_toolkit.nas import TrainEvaluator

    path = tmp_path / "real.json"
    search(SPACE, RandomSearch(), TrainEvaluator(SPACE, TINY), 1, seed=0, checkpoint=path, progress=False)
    recorded = json.loads(path.read_text())["config"]["evaluator"]
    assert recorded["budget"]["epochs"] == 1 and recorded["data"] == "digits"
    longer = TrainBudget("digits", {"train_size": 200}, epochs=2, batch_size=64, lr=0.05,
                         skeleton={"channels": 4, "cells_per_stage": 1})
    with pytest.raises(CheckpointError, match="belongs to another search"):  # not silently replayed
        search(SPACE, RandomSearch(), TrainEvaluator(SPACE, longer), 1, seed=0, checkpoint=path, progress=False)
    whole = Benchmark.load(pack(built, tmp_path / "whole.json.gz"))
    fewer = tmp_path / "fewer"
    shutil.copytree(built, fewer)
    rows = (fewer / RESULTS).read_text().splitlines(keepends=True)
    (fewer / RESULTS).write_text("".join(rows[:4]))  # the first two cells only: another table
    path = tmp_path / "table_search.json"
    search(SPACE, RandomSearch(), TabularEvaluator(whole), 3, seed=0, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match="belongs to another search.*evaluator"):
        search(SPACE, RandomSearch(), TabularEvaluator(Benchmark.load(pack(fewer, tmp_path / "fewer.json.gz"))), 3,
               seed=0, checkpoint=path, progress=False)


def test_a_real_evaluation_gives_the_same_numbers_whatever_the_callers_thread_count(monkeypatch):
    import torch

    from dfl_toolkit.nas import TrainEvaluator
    from dfl_toolkit.nas.evaluators import train

    seen, real_fit = [], train.fit

    def fit_recording_threads(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", fit_recording_threads)

    # at the table's budget this cell's accuracies differ between 1 and 2 torch threads unless fixed
    cell = SPACE.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    ev, before = TrainEvaluator(SPACE), torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            result = ev(cell, seed=0)
            results.append({k: result[k] for k in ("val_acc", "test_acc", "train_acc")})
            assert torch.get_num_threads() == n  # restored after training
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1] and results[0] == results[1]
    with pytest.raises(ValueError, match="threads must be a positive int"):
        TrainEvaluator(SPACE, TINY, threads=0)
