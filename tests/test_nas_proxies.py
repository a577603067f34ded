import pytest
import torch
from torch import nn

from dfl_toolkit.errors import UnknownNameError
from dfl_toolkit.nas import CellSpace
from dfl_toolkit.nas.proxies import PROXIES, score

SPACE = CellSpace()


def batch(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def net(arch):
    torch.manual_seed(0)
    return SPACE.build(arch, in_channels=1, channels=4, cells_per_stage=1)


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_proxies_are_finite_repeatable_and_leave_the_model_unchanged(name):
    model = net(("nor_conv_3x3",) * 6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = score(name, model, batch())
    assert torch.isfinite(torch.tensor(a))
    assert a == score(name, net(("nor_conv_3x3",) * 6), batch())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)
    assert not any(m._forward_pre_hooks for m in model.modules())  # no hook left behind


def test_params_counts_and_proxies_rank_an_empty_cell_below_a_conv_cell():
    conv, skip = net(("nor_conv_3x3",) * 6), net(("skip_connect",) * 6)
    assert score("params", conv, batch()) == sum(p.numel() for p in conv.parameters())
    for name in ("params", "synflow", "snip", "grad_norm"):
        assert score(name, conv, batch()) > score(name, skip, batch()), name


def test_naswot_is_higher_when_relus_separate_the_samples():
    x, y = batch(8)
    same = (x[:1].repeat(8, 1, 1, 1), y)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert score("naswot", model, (x, y)) > score("naswot", model, same)


def test_unknown_proxy():
    with pytest.raises(UnknownNameError, match="accepted: grad_norm, naswot, params, snip, synflow"):
        score("jacob", net(("none",) * 6), batch())
