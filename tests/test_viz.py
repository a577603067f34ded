"""Figures are checked for what they show (panels, titles, tick labels, pixel values), not just that they ran."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from dfl_toolkit import viz
from dfl_toolkit.data.splits import DatasetSplits
from dfl_toolkit.errors import DFLError, ShapeError, UnknownNameError


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def ticks(labels):
    return [t.get_text() for t in labels]


def clusters(n_per_class=15, classes=3, dim=6, seed=0):
    g = np.random.default_rng(seed)
    x = np.concatenate([g.normal(5 * c, 1.0, (n_per_class, dim)) for c in range(classes)])
    return x.astype(np.float32), np.repeat(np.arange(classes), n_per_class)


def test_feature_maps_shows_one_panel_per_channel_up_to_max_maps():
    act = torch.randn(1, 20, 7, 7)
    fig = viz.feature_maps(act, max_maps=16, title="block 1")
    assert isinstance(fig, Figure) and len(fig.axes) == 16
    assert fig.axes[3].get_title() == "ch 3" and fig._suptitle.get_text() == "block 1"
    np.testing.assert_allclose(fig.axes[3].images[0].get_array(), act[0, 3].numpy())
    assert len(viz.feature_maps(act[0, :5]).axes) == 5
    with pytest.raises(ShapeError, match=r"\(C, H, W\) or \(1, C, H, W\).*pick one image"):
        viz.feature_maps(torch.randn(2, 4, 7, 7))
    with pytest.raises(ShapeError, match="got shape"):
        viz.feature_maps(np.zeros((7, 7)))


def test_filters_are_normalised_rgb_images_or_grey():
    conv = torch.nn.Conv2d(3, 10, 5)
    fig = viz.filters(conv, max_filters=8)  # a module or its weight
    assert len(fig.axes) == 8
    im = fig.axes[0].images[0].get_array()
    assert im.shape == (5, 5, 3) and im.min() == pytest.approx(0) and im.max() == pytest.approx(1)
    grey = viz.filters(torch.randn(4, 1, 3, 3)).axes[0].images[0].get_array()
    assert grey.shape == (3, 3)
    with pytest.raises(ShapeError, match=r"\(out, in, kh, kw\)"):
        viz.filters(torch.randn(4, 9))


def test_embedding_colours_each_class_and_names_it():
    x, y = clusters()
    fig = viz.embedding(x.reshape(45, 2, 3), y, class_names=["zero", "one", "two"])  # (N, ...) is flattened
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    assert ticks(ax.get_legend().get_texts()) == ["zero", "one", "two"]
    assert ax.get_xlabel().startswith("PC 1") and "45 samples (6-d)" in ax.get_title()
    assert len(ax.collections[1].get_offsets()) == 15
    with pytest.raises(ShapeError, match="labels must be"):
        viz.embedding(x, y[:-1])
    with pytest.raises(UnknownNameError, match="pca, tsne"):
        viz.embedding(x, y, method="umap")
    with pytest.raises(ShapeError, match=r"\(N, D\)"):
        viz.embedding(x[:, 0], y)


def test_tsne_embedding_is_deterministic_for_a_seed():
    x, y = clusters()

    def offsets(seed):
        return [c.get_offsets().copy() for c in viz.embedding(x, y, method="tsne", seed=seed).axes[0].collections]

    a, b = offsets(0), offsets(0)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    ax = viz.embedding(x, y, method="tsne").axes[0]
    assert ax.get_xlabel() == "t-SNE 1" and ax.get_title().startswith("t-SNE of 45")


def test_embeddings_by_layer_gives_one_titled_panel_per_layer():
    x, y = clusters()
    feats = {"input": torch.tensor(x), "block1": torch.tensor(x).repeat(1, 2), "fc": torch.tensor(x[:, :3])}
    fig = viz.embeddings_by_layer(feats, y, ncols=2, title="by depth")
    assert [ax.get_title() for ax in fig.axes] == ["input (6-d)", "block1 (12-d)", "fc (3-d)"]
    assert [ax.get_legend() is not None for ax in fig.axes] == [False, False, True]
    assert fig._suptitle.get_text() == "by depth"
    with pytest.raises(ShapeError, match="tuple of tensors"):
        viz.embeddings_by_layer({"lstm": (torch.randn(45, 4), (torch.randn(1, 45, 4),))}, y)


def test_hidden_states_heatmap_has_units_by_time_and_token_ticks():
    tokens = list("hello")
    states = torch.randn(1, 5, 40)  # batch_first output of one sequence
    fig = viz.hidden_states(states, tokens=tokens, max_units=32)
    ax = panels(fig)[0]
    np.testing.assert_allclose(ax.images[0].get_array(), states[0, :, :32].T.numpy())
    assert ticks(ax.get_xticklabels()) == tokens and ax.get_ylabel() == "hidden unit"
    assert viz.hidden_states(states.transpose(0, 1)).axes[0].images[0].get_array().shape == (32, 5)  # (T, 1, H)
    with pytest.raises(ShapeError, match="3 tokens for 5 time steps"):
        viz.hidden_states(states, tokens=["a", "b", "c"])
    with pytest.raises(ShapeError, match=r"\(T, H\)"):
        viz.hidden_states(torch.randn(5))


def test_attention_panels_per_head_with_token_tick_labels():
    tokens = ["the", "cat", "sat", "down"]
    w = torch.softmax(torch.randn(1, 3, 4, 4), dim=-1)
    fig = viz.attention(w, tokens=tokens)
    heads = panels(fig)
    assert [ax.get_title() for ax in heads] == ["head 0", "head 1", "head 2"]
    assert len(fig.axes) == 4  # plus one shared colour bar
    for ax in heads:
        assert ticks(ax.get_xticklabels()) == tokens and ticks(ax.get_yticklabels()) == tokens
    np.testing.assert_allclose(heads[2].images[0].get_array(), w[0, 2].numpy())
    picked = panels(viz.attention(w[0], heads=[0, 2]))
    assert [ax.get_title() for ax in picked] == ["head 0", "head 2"]
    assert [ax.get_title() for ax in panels(viz.attention(w[0, 1]))] == ["attention"]
    with pytest.raises(ShapeError, match=r"\(T, T\), \(heads, T, T\)"):
        viz.attention(torch.rand(2, 3, 4, 4))
    with pytest.raises(ShapeError, match="heads must be"):
        viz.attention(w, heads=[5])


def test_confusion_matrix_numbers_match_sklearn():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
    y_pred = [0, 1, 0, 1, 1, 2, 0, 2, 2, 2]
    counts = sk_confusion_matrix(y_true, y_pred)
    fig = viz.confusion_matrix(torch.tensor(y_true), np.array(y_pred), class_names=["a", "b", "c"])
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), counts / counts.sum(1, keepdims=True))
    assert ticks(ax.texts)[:3] == ["0.67", "0.33", "0"]
    assert ticks(ax.get_xticklabels()) == ["a", "b", "c"] and ax.get_ylabel() == "true"
    assert ax.get_title().startswith("accuracy 70.0%")
    logits = torch.nn.functional.one_hot(torch.tensor(y_pred), 4).float()  # scores for 4 classes: argmax taken
    raw = viz.confusion_matrix(y_true, logits, normalize=False).axes[0]
    assert ticks(raw.texts)[:4] == ["2", "1", "0", "0"] and raw.images[0].get_array().shape == (4, 4)
    with pytest.raises(ShapeError, match="for N = 10"):
        viz.confusion_matrix(y_true, y_pred[:5])
    with pytest.raises(ShapeError, match="class indices in 0..1"):
        viz.confusion_matrix(y_true, y_pred, class_names=["a", "b"])


def splits(mean, std):
    return DatasetSplits("toy", None, None, None, "classification", ["a", "b"], (len(mean), 6, 6), mean, std,
                         True, "test")


@pytest.mark.parametrize("channels", [1, 3])
def test_attribution_overlay_shows_the_denormalized_image(channels):
    data = splits((0.5,) * channels if channels == 1 else (0.4, 0.5, 0.6), (0.25,) * channels)
    real = torch.rand(2, channels, 6, 6)
    x = (real - torch.tensor(data.mean).view(1, -1, 1, 1)) / torch.tensor(data.std).view(1, -1, 1, 1)
    attr = torch.zeros(2, channels, 6, 6)
    attr[:, :, 2, 3] = -1.0  # abs-sum over channels: the hot pixel is (2, 3)
    fig = viz.attribution_overlay(x, attr, titles=["cat", "dog"], denormalize=data.denormalize)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "attribution", "overlay"]
    assert fig.axes[3].get_ylabel() == "dog"
    shown = fig.axes[3].images[0].get_array()
    np.testing.assert_allclose(shown, real[1].permute(1, 2, 0).squeeze(-1).numpy(), atol=1e-6)
    heat = fig.axes[1].images[0].get_array()
    assert heat[2, 3] == 1 and heat.sum() == 1
    assert len(fig.axes[2].images) == 2  # image, heatmap on top
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), real[0].permute(1, 2, 0).squeeze(-1).numpy(),
                               atol=1e-6)


def test_attribution_overlay_accepts_nhw_maps_and_rejects_mismatches():
    x = torch.rand(3, 1, 8, 8)
    fig = viz.attribution_overlay(x, torch.rand(3, 8, 8))
    assert len(fig.axes) == 9
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), x[0, 0].numpy())
    with pytest.raises(ShapeError, match=r"\(N, H, W\) = \(3, 8, 8\)"):
        viz.attribution_overlay(x, torch.rand(3, 1, 4, 4))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\) with C = 1 or 3.*got shape \(2, 5, 8, 8\)"):
        viz.attribution_overlay(torch.rand(2, 5, 8, 8), torch.rand(2, 8, 8))
    with pytest.raises(ShapeError, match=r"x\[None\]"):
        viz.image_grid(torch.rand(8, 8))
    with pytest.raises(ShapeError, match="2 titles for 3 images"):
        viz.attribution_overlay(x, torch.rand(3, 8, 8), titles=["a", "b"])


def test_curves_draw_lines_and_shaded_intervals():
    n = np.arange(1, 11)
    fig = viz.curves({"random": list(np.linspace(1, 0.1, 10)), "evolution": (n, n * 0.1, n * 0.05, n * 0.15)},
                     "evaluations", "regret", title="search", logx=True)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 1  # one band, for the series that has one
    assert ticks(ax.get_legend().get_texts()) == ["random", "evolution"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), ax.get_xscale()) == ("evaluations", "regret",
                                                                                     "search", "log")
    np.testing.assert_allclose(ax.lines[0].get_xdata(), n)
    with pytest.raises(ShapeError, match="one length"):
        viz.curves({"bad": (n, n, n[:3], n)})
    with pytest.raises(ShapeError, match=r"\(x, mean, low, high\)"):
        viz.curves({"bad": np.zeros((3, 3))})


def test_probe_accuracy_bars_per_layer_with_chance_line():
    fig = viz.probe_accuracy({"block1": 0.9, "block2": 0.95, "fc": 0.98}, chance=0.1)
    ax = fig.axes[0]
    assert len(ax.patches) == 3 and [p.get_height() for p in ax.patches] == [0.9, 0.95, 0.98]
    assert ticks(ax.get_xticklabels()) == ["block1", "block2", "fc"]
    assert ax.lines[0].get_ydata()[0] == 0.1 and ticks(ax.get_legend().get_texts()) == ["chance (0.10)"]
    assert ticks(viz.probe_accuracy([("a", 0.5), ("b", 0.7)]).axes[0].get_xticklabels()) == ["a", "b"]
    with pytest.raises(ShapeError, match=r"\[\(layer, accuracy\)"):
        viz.probe_accuracy([0.5, 0.7])


def test_image_grid_titles_mistakes_in_red():
    x = torch.rand(10, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    preds = y.clone()
    preds[4] = 2
    fig = viz.image_grid(x, y, preds=torch.nn.functional.one_hot(preds, 3), class_names=["a", "b", "c"], ncols=4)
    assert len(fig.axes) == 10
    assert fig.axes[0].get_title() == "a" and fig.axes[4].get_title() == "c\n(true b)"
    colours = [ax.title.get_color() for ax in fig.axes]
    assert colours.count("red") == 1 and colours[4] == "red"
    assert fig._suptitle.get_text() == "1 of 10 wrong (red)"
    assert len(viz.image_grid(torch.rand(12, 3, 4, 4), max_images=5).axes) == 5
    with pytest.raises(ShapeError, match="class 5 has no name"):
        viz.image_grid(x, torch.full((10,), 5), class_names=["a", "b", "c"])


def test_shape_errors_are_dfl_and_value_errors():
    assert issubclass(ShapeError, DFLError) and issubclass(ShapeError, ValueError)
    assert viz.to_hwc(torch.zeros(2, 3, 5, 4)).shape == (2, 5, 4, 3)


def test_curves_accept_named_x_values_in_order():
    fig = viz.curves({"trained": {"input": 0.8, "block1": 0.9, "fc": 0.97}, "random": {"input": 0.8, "block1": 0.85,
                                                                                        "fc": 0.7}})
    ax = fig.axes[0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["input", "block1", "fc"]
    assert list(ax.lines[1].get_ydata()) == [0.8, 0.85, 0.7]
    plt.close("all")
