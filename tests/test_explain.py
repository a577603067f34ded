"""Attribution properties, not just that the code runs."""

import pytest
import torch
from torch import nn

import dfl_toolkit as dfl
from dfl_toolkit.errors import UnknownNameError
from dfl_toolkit.explain import METHODS, deletion_insertion, explain, randomization_test


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


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained for a few seconds on real digits, and a test batch."""
    data = dfl.get_dataset("digits")
    dfl.seed_everything(0)
    model = dfl.ConvNet(1, 10, channels=(16, 32), hidden=64)
    dfl.fit(model, *data.loaders(64)[:2], epochs=4, progress=False)
    x, y = next(iter(data.loaders(32)[2]))
    return model.eval(), x, y


def test_randomization_test_rank_correlation_falls_for_gradients_on_a_trained_cnn(trained):
    model, x, y = trained
    before = [p.detach().clone() for p in model.parameters()]
    result = randomization_test(model, x, y, "saliency")
    names = [name for name, _ in result]
    assert names[0] == "head.fc2" and names[-1] == "features.block1.conv1" and len(names) == 6
    rhos = [rho for _, rho in result]
    assert max(rhos) < 0.6 and rhos[-1] < 0.3  # the map depends on the weights, so it must change
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # model untouched


def test_deletion_and_insertion_beat_a_random_order_on_a_trained_cnn(trained):
    model, x, y = trained
    attr, _ = explain(model, x, y, "integrated_gradients", n_steps=32)
    curves = deletion_insertion(model, x, y, attr, steps=10)
    assert curves.fractions[0] == 0 and curves.fractions[-1] == 1 and curves.deletion.shape == (11,)
    assert curves.deletion[0] == pytest.approx(curves.insertion[-1])  # both are the untouched images
    assert curves.auc("deletion") < curves.auc("random_deletion") - 0.05
    assert curves.auc("insertion") > curves.auc("random_insertion") + 0.05
    with pytest.raises(ValueError, match="attribution must match the images"):
        deletion_insertion(model, x, y, attr[:2])


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_explaining_leaves_the_model_in_the_mode_it_was_in(model, method):
    model.train()
    model.features.eval()  # a mixed mode (e.g. a frozen backbone under a training head) comes back as it was
    explain(model, torch.randn(2, 1, 8, 8), 0, method, layer="features.block1" if method == "gradcam" else None)
    assert model.training and not model.features.training
    attr, _ = explain(model, torch.randn(2, 1, 8, 8), 0)
    deletion_insertion(model, torch.randn(2, 1, 8, 8), 0, attr, steps=2)
    assert model.training and not model.features.training
    model.eval()  # as the shared fixture was
