"""NAS figures: the expected panels and lines, clear errors on bad shapes, and a live callback that is a
no-op outside a notebook kernel."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dfl_toolkit.errors import ShapeError  # noqa: E402
from dfl_toolkit.nas import CellSpace, RandomSearch, RegularizedEvolution, plots, search  # noqa: E402
from dfl_toolkit.nas.strategies.darts import DartsResult  # noqa: E402

SPACE = CellSpace()
ARCH = ("nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "avg_pool_3x3")


def conv_count(arch, seed):
    score = sum(op.startswith("nor_conv") for op in arch) / 6
    return {"val_acc": score, "test_acc": score, "cost": 1.0, "failed": arch[0] == "none"}


def test_cell_diagram_draws_four_nodes_and_six_labelled_edges():
    fig = plots.cell_diagram(SPACE.to_str(ARCH))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts if t.get_text()]  # arrows are empty annotations
    assert [x for x in labels if x.isdigit()] == ["0", "1", "2", "3"]
    assert sorted(x for x in labels if not x.isdigit()) == sorted(["conv_3x3", "skip", "none", "conv_1x1", "none",
                                                                    "avg_pool_3x3"])
    with pytest.raises(ValueError, match="accepted: avg_pool_3x3"):
        plots.cell_diagram(("conv_9x9",) * 6)


def test_search_progress_and_live_callback():
    live = plots.LiveProgress(every=2)
    assert not live.live  # not in a kernel: nothing is drawn during the search
    evo = search(SPACE, RegularizedEvolution(population_size=5, sample_size=2), conv_count, 20, seed=0,
                 progress=False, callbacks=[live])
    rnd = search(SPACE, RandomSearch(), conv_count, 20, seed=0, progress=False)
    fig = plots.search_progress({"evolution": evo, "random": rnd})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["evolution: best so far", "random: best so far"]
    assert list(ax.lines[0].get_ydata()) == evo.incumbent()
    assert len(ax.collections[0].get_offsets()) == sum(not t.failed for t in evo.trials)  # failed: no dot
    assert list(live.figure().axes[0].lines[0].get_ydata()) == evo.incumbent()
    with pytest.raises(RuntimeError, match="callbacks"):
        plots.LiveProgress().figure()


def test_regret_band_and_bad_shape():
    runs = np.array([[0.3, 0.2, 0.1], [0.5, 0.2, 0.0]])
    fig = plots.regret({"a": runs, "b": runs + 0.1})
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    assert np.allclose(ax.lines[0].get_ydata(), [0.4, 0.2, 0.05])
    with pytest.raises(ShapeError, match="runs x budget"):
        plots.regret({"a": [0.1, 0.2]})


def test_pareto_front_line_holds_only_non_dominated_points():
    params = [1, 2, 3, 4]
    acc = [0.5, 0.4, 0.7, 0.9]  # (2, 0.4) is dominated by (1, 0.5)
    ax = plots.pareto(params, acc).axes[0]
    assert list(ax.lines[0].get_xdata()) == [1, 3, 4]
    with pytest.raises(ShapeError):
        plots.pareto([1, 2], [0.5])


def test_alphas_six_panels_five_ops():
    epochs = 3
    a = np.full((epochs + 1, 6, 5), 0.2).tolist()
    fig = plots.alphas(DartsResult("darts", ARCH, alphas=a))
    assert len(fig.axes) == 6 and all(len(ax.lines) == 5 for ax in fig.axes)
    assert fig.axes[0].get_title().endswith("nor_conv_3x3")
    with pytest.raises(ShapeError):
        plots.alphas(DartsResult("darts", ARCH, alphas=[[0.5, 0.5]]))


def test_live_progress_redraws_its_own_output_widget_in_a_kernel():
    from kernel_session import images, output_widgets, run_cells, text

    nb = run_cells("""from dfl_toolkit.nas import CellSpace, RandomSearch, plots, search
live = plots.LiveProgress(every=4)
result = search(CellSpace(), RandomSearch(), lambda a, s: {"val_acc": a.count("skip_connect") / 6}, 14,
                progress=False, callbacks=[live])
live.draw()
print(live.live, len(result.trials), live.drawn)""", "live.figure();")
    cell, check = nb.cells[0].outputs, nb.cells[1].outputs
    assert "True 14 14" in text(cell)
    assert not images(cell)  # drawn inside an ipywidgets.Output, which JupyterLab redraws
    (shown,) = [outputs for outputs in output_widgets(nb) if outputs]
    assert images(shown) == images(check)  # one figure: the final one, all 14 evaluations


def test_live_progress_draws_the_given_plot_for_a_darts_result():
    live = plots.LiveProgress(plot=plots.alphas, every=1)
    a = np.full((3, 6, 5), 0.2).tolist()
    live(DartsResult("darts", ARCH, alphas=a, history=[{"epoch": 1}, {"epoch": 2}]))
    assert len(live.figure().axes) == 6  # the alphas figure, not search progress


def test_live_figures_stay_out_of_pyplot(monkeypatch):
    """A kernel thread shows and closes pyplot's figures after each widget message (JupyterLab 4): the live figures
    are not pyplot's, so it cannot draw them half-built; the plots made directly still are (shown at a cell's end)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    found = search(SPACE, RandomSearch(), conv_count, 3, progress=False)
    darts = DartsResult("darts", ARCH, alphas=np.full((2, 6, 5), 0.2).tolist(), history=[{"epoch": 1}])
    for plot, result in ((None, found), (plots.alphas, darts)):
        live = plots.LiveProgress(plot=plot, every=1)
        live.live = True
        live(result)
        assert shown[-1].canvas.manager is None and live.drawn == live._steps(result)
    assert plots.search_progress(found).canvas.manager is not None
