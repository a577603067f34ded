"""Attribution properties, not just that the code runs."""

import pytest
import torch
from torch import nn

import dfl_toolkit as dfl
from dfl_toolkit.errors import UnknownNameError
from dfl_toolkit.explain import METHODS, explain


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return dfl.ConvNet(1, 10, channels=(8, 16), hidden=32).eval()


def test_integrated_gradients_is_complete(model):
    torch.manual_seed(1)
    x = torch.randn(4, 1, 16, 16)
    target = torch.tensor([0, 3, 5, 9])
    attr, info = explain(model, x, target, "integrated_gradients", n_steps=200)
    with torch.no_grad():
        gap = model(x)[range(4), target] - model(torch.zeros_like(x))[range(4), target]
    total = attr.sum(dim=(1, 2, 3))
    assert torch.allclose(total, gap, rtol=0.01, atol=1e-3 * gap.abs().max().item())
    assert info["delta"].abs().max() < 0.01 * gap.abs().max()


def test_integrated_gradients_on_a_linear_model_is_weight_times_input_difference():
    torch.manual_seed(2)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, base = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 4)
    attr, _ = explain(linear, x, 1, "integrated_gradients", baseline=base)
    w = linear[1].weight[1].detach().view(1, 1, 3, 4)
    assert torch.allclose(attr, w * (x - base), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_a_map_shaped_like_the_input(model, method):
    x = torch.randn(2, 1, 16, 16)
    attr, info = explain(model, x, torch.tensor([1, 2]), method, layer="features.block2")
    assert attr.shape == x.shape and torch.isfinite(attr).all()
    if method == "gradcam":
        assert info["cam"].shape == (2, 1, 4, 4) and (attr >= 0).all()


def test_bad_method_or_layer(model):
    x = torch.randn(1, 1, 16, 16)
    with pytest.raises(UnknownNameError, match="accepted: gradcam, integrated_gradients, occlusion"):
        explain(model, x, 0, "lime")
    with pytest.raises(UnknownNameError, match="unknown layer 'features.block9'.*features.block1"):
        explain(model, x, 0, "gradcam", layer="features.block9")
