"""Feature extraction: equal to a hand-written forward, safe with in-place ReLU, hooks always removed."""

import pytest
import torch
import torchvision
from torch import nn

from dfl_toolkit.errors import UnknownNameError
from dfl_toolkit.features import extract_features, list_layers


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def no_hooks(model):
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_resnet18_matches_a_hand_written_forward_and_in_place_relu_does_not_leak(resnet):
    x = torch.randn(2, 3, 64, 64)
    feats = extract_features(resnet, x, ["bn1", "relu", "layer1", "layer4", "fc"])
    with torch.no_grad():
        bn1 = resnet.bn1(resnet.conv1(x))
        h = resnet.relu(bn1.clone())
        l1 = resnet.layer1(resnet.maxpool(h))
        l4 = resnet.layer4(resnet.layer3(resnet.layer2(l1)))
        fc = resnet.fc(torch.flatten(resnet.avgpool(l4), 1))
    assert torch.allclose(feats["bn1"], bn1, atol=1e-5) and (feats["bn1"] < 0).any()  # not overwritten by ReLU
    assert torch.allclose(feats["relu"], h, atol=1e-5)
    assert torch.allclose(feats["layer1"], l1, atol=1e-5) and torch.allclose(feats["layer4"], l4, atol=1e-4)
    assert torch.allclose(feats["fc"], fc, atol=1e-4) and torch.allclose(fc, resnet(x), atol=1e-5)
    assert list(feats) == ["bn1", "relu", "layer1", "layer4", "fc"]
    assert no_hooks(resnet) and resnet.relu.inplace  # model left as it was


def test_mobilenet_v3_small_matches_a_hand_written_forward():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    feats = extract_features(model, x, ["features.0", "features.3", "avgpool"])
    with torch.no_grad():
        f0 = model.features[0](x)
        f3 = model.features[3](model.features[2](model.features[1](f0.clone())))
        pooled = model.avgpool(model.features(x))
    assert torch.allclose(feats["features.0"], f0, atol=1e-5)
    assert torch.allclose(feats["features.3"], f3, atol=1e-5)
    assert torch.allclose(feats["avgpool"], pooled, atol=1e-5)


def test_graph_nodes_that_are_not_modules_use_torch_fx(resnet):
    assert "layer1.0.add" in list_layers(resnet, graph=True)
    x = torch.randn(1, 3, 32, 32)
    feats = extract_features(resnet, x, ["layer1.0.add", "layer1.0"])
    with torch.no_grad():
        block = resnet.layer1[0]
        h = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
        added = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(h))))) + h
    assert torch.allclose(feats["layer1.0.add"], added, atol=1e-5)
    assert torch.allclose(feats["layer1.0"], torch.relu(added), atol=1e-5)


def test_lstm_outputs_come_back_as_tuples():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("lstm", nn.LSTM(3, 5, num_layers=2, batch_first=True))
    x = torch.randn(4, 7, 3)
    out, (h, c) = extract_features(model, x, ["lstm"])["lstm"]
    ref_out, (ref_h, ref_c) = model.lstm(x)
    assert torch.allclose(out, ref_out) and torch.allclose(h, ref_h) and out.shape == (4, 7, 5)


def test_hooks_are_removed_when_the_forward_fails(resnet):
    with pytest.raises(RuntimeError):
        extract_features(resnet, torch.randn(1, 1, 32, 32), ["layer1"])  # wrong channel count
    assert no_hooks(resnet) and resnet.relu.inplace


def test_unknown_layer_lists_the_valid_ones(resnet):
    with pytest.raises(UnknownNameError) as err:
        extract_features(resnet, torch.randn(1, 3, 32, 32), ["layer5"])
    assert "unknown layer 'layer5'; did you mean 'layer4'" in str(err.value) and "conv1" in err.value.accepted
    assert list_layers(resnet)[:4] == ["conv1", "bn1", "relu", "maxpool"]


def test_detach_false_keeps_the_graph_for_gradients(resnet):
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    feats = extract_features(resnet, x, ["layer2"], detach=False)
    feats["layer2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not extract_features(resnet, x, ["layer2"])["layer2"].requires_grad


@pytest.mark.parametrize("build, typo, meant", [
    (lambda: __import__("torchvision").models.efficientnet_b0(), "features.3.0.blok", "features.3.0.block"),
    (lambda: __import__("torchvision").models.vit_b_16(), "encoder.layers.encoder_layer_11.mpl",
     "encoder.layers.encoder_layer_11.mlp"),
])
def test_an_unknown_layer_of_a_big_model_is_a_short_message_with_the_nearest_names(build, typo, meant):
    model = build().eval()
    size = 224
    with pytest.raises(UnknownNameError) as err:
        extract_features(model, torch.randn(1, 3, size, size), [typo])
    message = str(err.value)
    assert len(message) < 600, f"{len(message)} characters"
    assert f"did you mean {meant!r}" in message and "list_layers(model" in message
    assert meant in err.value.accepted  # the full list stays available to code
