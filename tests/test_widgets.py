"""Explorers: a Figure where widgets cannot render, working controls where they can."""

import ipywidgets as w
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import dfl_toolkit as dfl
from dfl_toolkit import widgets


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(0)
    return dfl.ConvNet(1, 10, channels=(4, 8), hidden=16).eval(), torch.randn(3, 1, 16, 16)


def controls(box):
    return {c.description: c for c in box.children[0].children}


def test_outside_a_kernel_explorers_return_the_default_figure(model_and_images):
    model, images = model_and_images
    assert not widgets.widgets_available()
    fig = widgets.feature_map_explorer(model, images)
    title = fig.texts[0].get_text() if fig.texts else fig.axes[0].get_title()
    assert isinstance(fig, Figure) and title == "image 0: features.block1.conv1"
    fig = widgets.attribution_explorer(model, images, layer="features.block2")
    assert isinstance(fig, Figure) and fig.axes[0].get_ylabel().startswith("saliency: predicted")
    plt.close("all")


def test_widgets_offer_the_right_choices_and_redraw_on_change(model_and_images, monkeypatch):
    model, images = model_and_images
    box = widgets.feature_map_explorer(model, images, static=False)
    assert isinstance(box, w.VBox)
    c = controls(box)
    assert (c["image"].min, c["image"].max, c["image"].continuous_update) == (0, 2, False)
    # only layers whose output is a stack of maps, in model order
    assert c["layer"].options[:4] == ("features.block1.conv1", "features.block1.bn1", "features.block1.relu1",
                                      "features.block1.conv2")
    assert "head.fc1" not in c["layer"].options and "pool" in c["layer"].options
    drawn = []
    monkeypatch.setattr(widgets.viz, "feature_maps", lambda act, **kw: drawn.append((act.shape, kw["title"])) or
                        plt.figure())
    c["layer"].value = "features.block2"
    c["image"].value = 2
    assert drawn == [((8, 4, 4), "image 0: features.block2"), ((8, 4, 4), "image 2: features.block2")]
    plt.close("all")


def test_gradcam_is_offered_only_with_a_layer(model_and_images):
    model, images = model_and_images
    without = controls(widgets.attribution_explorer(model, images, static=False))["method"].options
    with_layer = controls(widgets.attribution_explorer(model, images, layer="features.block1", static=False))
    assert "gradcam" not in without and "gradcam" in with_layer["method"].options
    plt.close("all")


def test_static_switch_by_environment(model_and_images, monkeypatch):
    monkeypatch.setenv("DFL_STATIC_WIDGETS", "1")
    assert not widgets.widgets_available()


def test_search_runner_static_figure_and_widget_run():
    from dfl_toolkit.nas import CellSpace, RandomSearch, RegularizedEvolution

    def score(arch, seed):
        v = sum(op == "nor_conv_3x3" for op in arch) / 6
        return {"val_acc": v, "test_acc": v, "cost": 1.0}

    strategies = {"random": RandomSearch, "evolution": RegularizedEvolution}
    fig = widgets.search_runner(CellSpace(), score, strategies, budgets=(15,))
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "random, 15 evaluations, seed 0"
    box = widgets.search_runner(CellSpace(), score, strategies, budgets=(12, 30), static=False)
    strategy, budget, seed, button = box.children[0].children
    assert list(strategy.options) == ["random", "evolution"] and list(budget.options) == [12, 30]
    strategy.value, seed.value = "evolution", 3
    box.run()
    assert len(box.result.trials) == 12 and box.result.config["strategy"] == "evolution"
    assert box.result.config["seed"] == 3
    with pytest.raises(ValueError, match="at least one strategy"):
        widgets.search_runner(CellSpace(), score, {})
    plt.close("all")


def test_search_runner_shows_the_whole_search_in_a_kernel():
    """What JupyterLab shows after Run: one figure holding every evaluation, and the best line that matches it."""
    from kernel_session import images, output_widgets, run_cells, text

    nb = run_cells("""from IPython.display import display
from dfl_toolkit import widgets
from dfl_toolkit.nas import CellSpace, RandomSearch
box = widgets.search_runner(CellSpace(), lambda a, s: {"val_acc": a.count("skip_connect") / 6},
                            {"random": RandomSearch}, budgets=(10, 60), metric="val_acc")
display(box)
box.children[0].children[1].value = 60   # a budget larger than the default
box.run()""", """from dfl_toolkit.nas.plots import search_progress
best = box.result.best
print(len(box.result.trials), best.arch, f"{box.result.score(best, 'val_acc'):.4f}")
search_progress(box.result, "val_acc", title="random, 60 evaluations, seed 0");""")
    shown = [o for outputs in output_widgets(nb) for o in outputs]
    check = nb.cells[1].outputs
    assert len(images(shown)) == 1  # redrawn in place, not one figure per update
    assert images(shown) == images(check)  # the figure of all 60 evaluations, not of the first few
    n, arch, score = text(check).split(" ", 2)
    assert n == "60" and f"best of 60: {arch}  val_acc = {score.strip()}" in text(shown)
