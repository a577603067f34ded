"""`dfl search`: every space, strategy and evaluator the issue names, and clear errors for bad combinations."""

import random

import pytest
import torch
from torch import nn

from dfl_toolkit.__main__ import main
from dfl_toolkit.errors import UnknownNameError, UsageError
from dfl_toolkit.nas import CellSpace, MacroSpace, ProxyEvaluator, RandomSearch, TrainBudget, TrainEvaluator, search
from dfl_toolkit.nas.proxies import score

TINY_DATA = ["--dataset", "digits", "--train-size", "200"]
TINY = [*TINY_DATA, "--epochs", "1", "--batch-size", "64", "--lr", "0.05"]


def test_a_proxy_evaluator_scores_untrained_networks_repeatably():
    space = CellSpace()
    ev = ProxyEvaluator(space, ("naswot", "synflow"), TrainBudget("digits", {"train_size": 200},
                                                                  skeleton={"channels": 4, "cells_per_stage": 1}))
    conv = ev(("nor_conv_3x3",) * 6, seed=3)
    assert set(conv) == {"naswot", "synflow", "params"}
    assert conv == ev(("nor_conv_3x3",) * 6, seed=5)  # fixed initial weights by default: one score per cell
    per_query = ProxyEvaluator(space, ("naswot", "synflow"), ev.budget, init_seed=None)
    assert per_query(("nor_conv_3x3",) * 6, seed=3) == per_query(("nor_conv_3x3",) * 6, seed=3)
    assert per_query(("nor_conv_3x3",) * 6, seed=3) != per_query(("nor_conv_3x3",) * 6, seed=5)
    assert conv["synflow"] > ev(("skip_connect",) * 6, seed=3)["synflow"]
    assert ev.config()["proxies"] == ["naswot", "synflow"]
    result = search(space, RandomSearch(), ev, 5, objective="naswot", progress=False)
    assert len(result.trials) == 5 and not any(t.failed for t in result.trials)


def test_bad_proxy_names_and_skeletons_fail_when_the_evaluator_is_made():
    with pytest.raises(UnknownNameError, match="accepted: grad_norm, naswot, params, snip, synflow"):
        ProxyEvaluator(CellSpace(), ("nawsot",))
    # the default budget's skeleton is the cell space's: the macro space names what it takes instead
    with pytest.raises(UsageError, match=r"accepted: depth_mult, stem, width_mult .*TrainBudget\(skeleton=\{\}\)"):
        TrainEvaluator(MacroSpace(), TrainBudget("digits"))
    with pytest.raises(UsageError, match="skeleton option"):
        ProxyEvaluator(MacroSpace(), budget=TrainBudget("digits"))
    with pytest.raises(UsageError, match=r"init_seed must be a non-negative int below 2\*\*32, or None"):
        ProxyEvaluator(CellSpace(), init_seed=-1)


def test_naswot_reads_relu6_and_refuses_a_model_without_relus():
    x = torch.randn(8, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    batch = (x, torch.zeros(8, dtype=torch.long))
    torch.manual_seed(0)
    macro = MacroSpace().build(MacroSpace().sample(random.Random(0)), in_channels=1)
    assert score("naswot", macro, batch) > float("-inf")  # MBConv blocks use ReLU6
    with pytest.raises(ValueError, match="has none"):
        score("naswot", nn.Sequential(nn.Flatten(), nn.Linear(196, 10), nn.Tanh()), batch)


def test_search_by_table_with_tpe_lists_distinct_architectures(capsys):
    assert main(["search", "--evaluator", "table", "--strategy", "optuna-tpe", "--budget", "30", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "30 evaluations of" in out and "distinct architectures" in out and "evals" in out and "0 failed" in out
    rows = [line for line in out.splitlines() if line.strip().startswith(tuple("0123456789")) and "|" in line]
    assert len(rows) == 3
    assert len({CellSpace().canonical(CellSpace().from_str(r.split()[-1])) for r in rows}) == 3


def test_search_by_proxy_and_a_constrained_reward(capsys):
    assert main(["search", "--evaluator", "proxy", "--proxy", "synflow", "--budget", "4", *TINY_DATA]) == 0
    out = capsys.readouterr().out
    assert "synflow" in out and "4 evaluations" in out and "0 failed" in out
    assert "test_acc" not in out  # nothing was trained
    assert main(["search", "--evaluator", "table", "--budget", "10", "--reward-cost", "params",
                 "--reward-target", "30000"]) == 0
    out = capsys.readouterr().out
    assert "reward" in out and "0 failed" in out


def test_search_the_macro_space_by_training_in_two_processes(tmp_path, capsys):
    ckpt = tmp_path / "macro.json"
    args = ["search", "--space", "macro_mbconv", "--strategy", "random", "--budget", "2", "--workers", "2",
            "--checkpoint", str(ckpt), *TINY]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 evaluations" in out and "0 failed" in out and "-w" in out  # macro strings look like d2-w16-k3-e6
    saved = ckpt.stat().st_mtime_ns, ckpt.read_text()
    assert main(args) == 0  # rerun: replays the checkpoint, nothing is trained (or written) again
    assert "2 evaluations" in capsys.readouterr().out
    assert (ckpt.stat().st_mtime_ns, ckpt.read_text()) == saved


@pytest.mark.parametrize("args, message", [
    (["--space", "macro_mbconv", "--evaluator", "table"], "holds the nb201_cell space only"),
    (["--space", "macro_mbconv", "--channels", "4"], "the macro_mbconv space does not take them"),
    (["--evaluator", "proxy", "--table", "x.json.gz"], "goes with --evaluator table"),
    (["--evaluator", "table", "--reward-cost", "params"], "needs --reward-target"),
    (["--evaluator", "proxy", "--reward-cost", "params", "--reward-target", "1"], "a proxy is not an accuracy"),
    (["--evaluator", "proxy", "--objective", "val_acc"], "proxy: 'val_acc'; accepted: naswot, params"),
    (["--evaluator", "table", "--objective", "val_accuracy"], "accepted: flops, latency, mean_test_acc"),
    (["--evaluator", "table", "--proxy", "synflow"], "--proxy names the proxy of --evaluator proxy"),
    (["--evaluator", "table", "--reward-target", "3"], "goes with --reward-cost"),
    (["--evaluator", "table", "--seed", "-1"], "seed must be a non-negative int"),
    (["--evaluator", "proxy", "--proxy", "nawsot"], "unknown proxy 'nawsot'"),
    (["--workers", "0"], "at least 1"),
    (["--evaluator", "table", "--budget", "0"], "positive int"),
    (["--space", "macro_mbconv", "--dataset", "mnist1d"], "builds networks for images (C, H, W); 'mnist1d'"),
    (["--evaluator", "table", "--top", "0"], "--top is the number of rows of the results table: at least 1, got 0"),
    (["--evaluator", "table", "--epochs", "5"], "trained with its own budget, so --epochs would be ignored"),
    (["--table", "x.json.gz", "--dataset", "digits", "--unused-to-val"],
     "trained with its own budget, so --dataset, --unused-to-val would be ignored"),
    (["--evaluator", "proxy", "--lr", "0.1"], "proxies score untrained networks, so --lr would be ignored"),
    (["--evaluator", "proxy", "--dataset", "digits", "--unused-to-val"], "digits uses every train image unless"),
])
def test_bad_search_options_get_one_clear_line(args, message, capsys):
    assert main(["search", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--limit", "0"], "limit is a number of cells: a positive int or None (all), got 0"),
    (["--workers", "0"], "--workers is the number of evaluations run at once: at least 1, got 0"),
    (["--seeds", "0", "-1"], "each build seed must be a non-negative int below 2**32, got -1"),
    (["--seeds", "1", "0", "1"], "seeds must be one or more distinct training seeds, got [1, 0, 1]"),
])
def test_bad_build_options_are_refused_before_anything_is_written(args, message, tmp_path, capsys):
    out = tmp_path / "build"
    assert main(["benchmark", "build", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_help_texts_show_the_defaults(capsys):
    from dfl_toolkit.nas.evaluators import TrainBudget

    default = TrainBudget()
    for command in (["search"], ["benchmark", "build"], ["benchmark", "query"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        assert exit_.value.code == 0
        out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert "(default: None)" not in out
        if command[-1] != "query":
            assert f"training epochs (default: {default.epochs})" in out
            assert f"(default: {default.dataset})" in out and f"(default: {default.lr})" in out
            assert f"(default: {default.data_options['train_size']} for {default.dataset}" in out
            assert f"(default: {default.skeleton['channels']})" in out
        else:
            assert "the mean over the table's seeds" in out
        if command == ["search"]:
            assert "(default: 100)" in out and "(default: evolution)" in out and "mean_test_acc" in out


def test_a_search_where_every_evaluation_failed_exits_1(capsys):
    diverging = [*TINY, "--channels", "4"]
    diverging[diverging.index("--lr") + 1] = "1e30"  # the loss overflows in the first steps
    assert main(["search", "--strategy", "random", "--budget", "1", *diverging]) == 1
    out = capsys.readouterr().out
    assert "1 evaluations of 1 distinct architectures, 1 failed" in out and "first failure: diverged" in out


def test_ctrl_c_says_where_the_finished_work_is_saved(monkeypatch, tmp_path, capsys):
    import dfl_toolkit.nas
    from dfl_toolkit.nas.benchmark import build

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "build", interrupted)
    monkeypatch.setattr(dfl_toolkit.nas, "search", interrupted)
    out = tmp_path / "build"
    assert main(["benchmark", "build", "--out", str(out), "--limit", "1"]) == 130
    assert capsys.readouterr().err == (f"interrupted; finished runs are saved in {out}: rerun the same command to "
                                       f"resume\n")
    ckpt = tmp_path / "search.json"
    assert main(["search", "--evaluator", "table", "--budget", "3", "--checkpoint", str(ckpt)]) == 130
    assert capsys.readouterr().err == (f"interrupted; finished evaluations are saved in {ckpt}: rerun the same "
                                       f"command to resume\n")
    assert main(["search", "--evaluator", "table", "--budget", "3"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
