import dataclasses

import pytest
import torch

import dfl_toolkit as dfl
from dfl_toolkit.errors import UnknownNameError
from dfl_toolkit.nas import CellSpace
from dfl_toolkit.nas.spaces.cell import OPS
from dfl_toolkit.nas.strategies.darts import MixedOp, SuperNet, darts_search, derive, perturbation_select


@pytest.fixture(scope="module")
def tiny():
    return dfl.get_dataset("digits", train_size=256)


def test_mixed_op_is_the_weighted_sum_of_its_operations():
    torch.manual_seed(0)
    op = MixedOp(4).eval()
    x = torch.randn(2, 4, 8, 8)
    w = torch.softmax(torch.randn(5), 0)
    assert torch.allclose(op(x, w), sum(w[k] * op.ops[k](x) for k in range(5)), atol=1e-6)
    one_hot = torch.eye(5)[OPS.index("skip_connect")]
    assert torch.equal(op(x, one_hot, hard=True), x)


def test_derive_never_picks_none():
    alpha = torch.zeros(6, 5)
    alpha[:, OPS.index("none")] = 10.0
    alpha[:, OPS.index("nor_conv_3x3")] = 1.0
    assert derive(alpha) == ("nor_conv_3x3",) * 6


@pytest.mark.parametrize("mode", ["darts", "gdas", "darts-"])
def test_search_logs_alphas_and_derives_a_valid_cell(tiny, mode):
    res = darts_search(tiny, mode=mode, epochs=2, channels=4, batch_size=32, progress=False)
    assert len(res.alphas) == 3 and len(res.alphas[0]) == 6 and len(res.alphas[0][0]) == 5
    assert all(abs(sum(edge) - 1) < 1e-5 for edge in res.alphas[-1])
    assert res.alphas[-1] != res.alphas[0]  # alpha moved
    CellSpace().validate(res.arch)
    assert "none" not in res.arch and len(res.history) == 2 and res.seconds > 0
    assert len(res.skip_share()) == 3


def test_darts_search_resumes_from_its_checkpoint(tiny, tmp_path):
    full = darts_search(tiny, epochs=2, channels=4, batch_size=32, progress=False)
    path = tmp_path / "darts.pt"

    def kill(result):
        raise KeyboardInterrupt  # killed right after epoch 1 was saved

    with pytest.raises(KeyboardInterrupt):
        darts_search(tiny, epochs=2, channels=4, batch_size=32, progress=False, checkpoint=path, callbacks=[kill])
    resumed = darts_search(tiny, epochs=2, channels=4, batch_size=32, progress=False, checkpoint=path)
    assert resumed.alphas == full.alphas and resumed.arch == full.arch


def test_bad_mode():
    with pytest.raises(UnknownNameError, match="accepted: darts, darts-, gdas"):
        darts_search(None, mode="enas")


def test_warmup_keeps_alpha_uniform_then_lets_it_move(tiny):
    res = darts_search(tiny, epochs=2, warmup=1, channels=4, batch_size=32, progress=False)
    assert res.alphas[1] == res.alphas[0]  # epoch 1: only the weights trained
    assert res.alphas[2] != res.alphas[1]  # epoch 2: alpha learns
    with pytest.raises(ValueError, match="warmup must be an int from 0 to epochs - 1 = 1"):
        darts_search(tiny, epochs=2, warmup=2)


def test_perturbation_keeps_the_operation_whose_removal_hurts_most(tiny):
    # A supernet whose edges all run (almost only) nor_conv_3x3: removing it from an edge cuts that edge,
    # removing anything else changes nothing, so the selection must keep nor_conv_3x3 everywhere.
    torch.manual_seed(0)
    net = SuperNet(1, 10, channels=4)
    with torch.no_grad():
        net.alpha.zero_()
        net.alpha[:, OPS.index("nor_conv_3x3")] = 12.0
    weights = torch.softmax(net.alpha.detach(), 1)
    opt = torch.optim.SGD(net.weight_parameters(), 0.05, momentum=0.9)
    loader = torch.utils.data.DataLoader(tiny.train, 64, shuffle=True)
    for _ in range(6):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x, weights), y).backward()
            opt.step()
    arch, log = perturbation_select(net, torch.utils.data.DataLoader(tiny.val, 250))
    assert arch == ("nor_conv_3x3",) * 6
    assert sorted(entry["edge"] for entry in log) == list(range(6))
    for entry in log:
        assert set(entry["acc_without"]) == set(OPS) - {"none"}
        assert entry["acc_without"]["nor_conv_3x3"] < max(entry["acc_without"].values())


def test_perturbation_selection_resumes_to_the_same_cell(tiny, tmp_path):
    kwargs = dict(epochs=2, channels=4, batch_size=32, select="perturbation", progress=False)
    blind = dataclasses.replace(tiny, val=None, test=None)  # the search may only use the training split
    full = darts_search(blind, **kwargs)
    plain = darts_search(tiny, **{**kwargs, "select": "alpha"})
    assert full.alpha_arch == plain.arch == plain.alpha_arch  # same training, only the reading differs
    assert "none" not in full.arch and len(full.selection) == 6
    random_order = torch.randperm(6, generator=torch.Generator().manual_seed(0)).tolist()
    assert [step["edge"] for step in full.selection] == random_order
    path = tmp_path / "darts.pt"
    darts_search(tiny, **{**kwargs, "select": "alpha"}, checkpoint=path)  # search done and saved
    again = darts_search(tiny, **kwargs, checkpoint=path)  # only the selection runs
    assert again.arch == full.arch and again.selection == full.selection
    assert 0 < again.selection_seconds < again.seconds and plain.selection_seconds == 0


def test_tuning_between_edges_changes_only_the_later_measurements(tiny):
    kwargs = dict(epochs=2, channels=4, batch_size=32, select="perturbation", progress=False)
    untuned = darts_search(tiny, **kwargs, tune_epochs=0)
    tuned = darts_search(tiny, **kwargs, tune_epochs=2)
    assert untuned.alpha_arch == tuned.alpha_arch  # same supernet
    assert untuned.selection[0] == tuned.selection[0]  # the first edge is read before any tuning
    later = zip(untuned.selection[1:], tuned.selection[1:], strict=True)
    assert any(a["acc_without"] != b["acc_without"] for a, b in later)


def test_bad_selection():
    with pytest.raises(UnknownNameError, match="accepted: alpha, perturbation"):
        darts_search(None, select="largest")
    with pytest.raises(ValueError, match="GDAS trains one sampled operation"):
        darts_search(None, mode="gdas", select="perturbation")
    with pytest.raises(ValueError, match="tune_epochs must be an int >= 0"):
        darts_search(None, select="perturbation", tune_epochs=-1)


def test_darts_searches_1d_signals_with_the_same_cells():
    net = SuperNet(1, 10, channels=4, dims=1)
    assert net(torch.zeros(2, 1, 40), torch.softmax(net.alpha, 1)).shape == (2, 10)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    res = darts_search(dfl.get_dataset("mnist1d", train_size=256), epochs=1, channels=4, batch_size=32,
                       progress=False)
    assert res.alphas[-1] != res.alphas[0] and len(res.history) == 1  # it trained on the signals


def test_darts_refuses_data_it_cannot_search_and_a_checkpoint_of_another_supernet(tiny, tmp_path):
    with pytest.raises(ValueError, match="evaluates classifiers; 'sunspots' is regression"):
        darts_search(dfl.get_dataset("sunspots"), epochs=1)
    with pytest.raises(ValueError, match="'dependency' has inputs of shape"):
        darts_search(dfl.get_dataset("dependency"), epochs=1)
    path = tmp_path / "darts.pt"
    darts_search(tiny, epochs=1, channels=4, batch_size=32, progress=False, checkpoint=path)
    with pytest.raises(dfl.CheckpointError, match=r"channels: saved 4, now 6"):
        darts_search(tiny, epochs=1, channels=6, batch_size=32, progress=False, checkpoint=path)
