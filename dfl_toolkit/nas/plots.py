"""Figures for architecture search: a cell as a graph, search progress (also live), regret curves with
intervals, Pareto fronts and DARTS architecture weights over epochs. Each function returns its Figure.

Example:
    >>> from dfl_toolkit.nas import plots
    >>> plots.cell_diagram(("nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "avg_pool_3x3"))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ShapeError
from .objectives import pareto_front
from .search import SearchResult
from .spaces.cell import EDGES, OPS, CellSpace
from .strategies.darts import DartsResult

OP_COLORS = {"none": "#bbbbbb", "skip_connect": "#2ca02c", "nor_conv_1x1": "#1f77b4", "nor_conv_3x3": "#d62728",
             "avg_pool_3x3": "#9467bd"}


# True while LiveProgress draws: its figures stay out of pyplot (see _figure).
_OFF_PYPLOT: ContextVar[bool] = ContextVar("off_pyplot", default=False)


def _figure(figsize: tuple[float, float]) -> Figure:
    """A new figure: through pyplot (shown at the end of a notebook cell), or outside it while LiveProgress draws.

    Why outside: ipykernel 7 handles JupyterLab 4's widget messages in a second thread (a subshell), and after
    each one the inline backend shows and closes every open pyplot figure; one being drawn meanwhile comes out
    half drawn.
    """
    if _OFF_PYPLOT.get():
        return Figure(figsize=figsize, layout="constrained")
    return plt.figure(figsize=figsize, layout="constrained")


def _new_ax(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = _figure(figsize)
    return fig, fig.subplots()


def cell_diagram(arch: Sequence[str] | str, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Draw a NAS-Bench-201 cell: nodes 0 (input) to 3 (output), one arrow per edge, coloured by operation;
    ``none`` edges are drawn dotted (they carry nothing).

    Example:
        >>> cell_diagram("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|")
    """
    space = CellSpace()
    arch = space.from_str(arch) if isinstance(arch, str) else space.validate(tuple(arch))
    fig, ax = _new_ax(ax, (6, 2.6))
    pos = {0: (0.0, 0.0), 1: (1.0, 0.0), 2: (2.0, 0.0), 3: (3.0, 0.0)}
    for (j, i), op in zip(EDGES, arch, strict=True):
        bend = 0.0 if j - i == 1 else 0.35 * (j - i - 1) * (1 if (i + j) % 2 else -1)
        ax.annotate("", xy=pos[j], xytext=pos[i],
                    arrowprops={"arrowstyle": "-|>", "color": OP_COLORS[op], "lw": 2.2,
                                "ls": ":" if op == "none" else "-", "shrinkA": 14, "shrinkB": 14,
                                "connectionstyle": f"arc3,rad={bend}"})
        mid_x = (pos[i][0] + pos[j][0]) / 2
        mid_y = -bend * (j - i) / 2 * 1.0
        ax.text(mid_x, mid_y + (0.08 if bend == 0 else 0.0), op.replace("nor_", "").replace("_connect", ""),
                ha="center", va="bottom" if mid_y >= 0 else "top", fontsize=8, color=OP_COLORS[op])
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=500, color="white", edgecolor="black", zorder=3)
        ax.text(x, y, str(n), ha="center", va="center", zorder=4, fontsize=11)
    ax.set(xlim=(-0.4, 3.4), ylim=(-0.9, 0.9), xticks=[], yticks=[])
    ax.set_aspect("equal")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title or "cell: node 0 = input, node 3 = output", fontsize=10)
    return fig


def search_progress(results: SearchResult | Mapping[str, SearchResult], metric: str | None = None,
                    ax: Axes | None = None, title: str | None = None) -> Figure:
    """Each evaluation's score (dots) and the best so far (line) against the number of evaluations, for one
    search or several (a legend entry each). Failed evaluations are left out of the dots.

    Example:
        >>> search_progress({"random": random_result, "evolution": evo_result}, metric="val_acc")
    """
    if isinstance(results, SearchResult):
        results = {results.config.get("strategy", "search"): results}
    fig, ax = _new_ax(ax, (7, 4))
    for name, result in results.items():
        metric_name = metric or result.objective
        scores = np.array([result.score(t, metric_name) for t in result.trials], dtype=float)
        x = np.arange(1, len(scores) + 1)
        ok = np.isfinite(scores)
        (line,) = ax.plot(x, result.incumbent(metric_name), lw=2, label=f"{name}: best so far")
        ax.scatter(x[ok], scores[ok], s=10, alpha=0.35, color=line.get_color())
    ax.set(xlabel="architectures evaluated", ylabel=metric or "objective", title=title or "search progress")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def regret(curves: Mapping[str, Any], xlabel: str = "architectures evaluated", ylabel: str = "regret",
           ax: Axes | None = None, logx: bool = True, logy: bool = False, title: str | None = None) -> Figure:
    """Mean regret over runs with its 95% confidence band, one line per strategy.

    ``curves[name]`` is an array (runs x budget) of regret after each evaluation (best value minus the
    incumbent's), e.g. from many seeds of :func:`~dfl_toolkit.nas.search`.

    Example:
        >>> regret({"random": np.array(random_runs), "evolution": np.array(evo_runs)})
    """
    fig, ax = _new_ax(ax, (7, 4))
    for name, runs in curves.items():
        r = np.asarray(runs, dtype=float)
        if r.ndim != 2 or r.shape[0] < 1:
            raise ShapeError(f"curves[{name!r}] must be 2-D (runs x budget), got shape {r.shape}")
        x = np.arange(1, r.shape[1] + 1)
        mean = r.mean(0)
        half = 1.96 * r.std(0, ddof=1) / np.sqrt(len(r)) if len(r) > 1 else np.zeros_like(mean)
        (line,) = ax.plot(x, mean, label=f"{name} ({len(r)} runs)")
        ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, lw=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "mean regret, band = 95% interval")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def pareto(x: Sequence[float], y: Sequence[float], xlabel: str = "parameters", ylabel: str = "accuracy",
           maximize: tuple[bool, bool] = (False, True), logx: bool = True, ax: Axes | None = None,
           title: str | None = None) -> Figure:
    """Every architecture as a grey dot and the Pareto front (no other point is better in both) as a line.

    Example:
        >>> pareto(bench.metric("params"), bench.metric("test_acc"))
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ShapeError(f"x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    front = sorted(pareto_front(np.stack([x, y], 1), maximize), key=lambda i: x[i])
    fig, ax = _new_ax(ax, (6, 4))
    ax.scatter(x, y, s=6, color="grey", alpha=0.3, label=f"{len(x)} architectures")
    ax.plot(x[front], y[front], "o-", color="C3", ms=4, label=f"Pareto front ({len(front)})")
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "trade-off and Pareto front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def alphas(result: DartsResult, title: str | None = None) -> Figure:
    """DARTS architecture weights (softmax over the 5 operations) on each of the 6 edges, per epoch:
    the skip-connection collapse shows as the green line taking over.

    Example:
        >>> alphas(darts_search(data, epochs=20))
    """
    a = np.asarray(result.alphas, dtype=float)  # epochs+1 x edges x ops
    if a.ndim != 3 or a.shape[1:] != (len(EDGES), len(OPS)):
        raise ShapeError(f"result.alphas must be (epochs+1, {len(EDGES)}, {len(OPS)}), got {a.shape}")
    fig = _figure((11, 5.5))
    axes = fig.subplots(2, 3, sharex=True, sharey=True)
    epochs = np.arange(a.shape[0])
    for e, ax in enumerate(axes.flat):
        for k, op in enumerate(OPS):
            ax.plot(epochs, a[:, e, k], color=OP_COLORS[op], lw=2, label=op)
        j, i = EDGES[e]
        ax.set_title(f"edge {i} -> {j}: {result.arch[e]}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("softmax(alpha)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title or f"{result.mode}: architecture weights per edge (title: the derived operation)")
    return fig


class LiveProgress:
    """A callback that redraws a figure of a running search: ``search(..., callbacks=[live])`` or
    ``darts_search(..., callbacks=[live])``.

    By default the figure is :func:`search_progress` (``metric`` over evaluations); pass ``plot`` to draw
    something else from the result, e.g. ``plot=alphas`` for a gradient-based search. In a notebook kernel
    the figure is redrawn every ``every`` evaluations (epochs for DARTS) inside an ``ipywidgets.Output``:
    ``out`` if given (e.g. one inside a widget box), else one of its own, shown below the cell at the first
    draw. Each redraw replaces the figure (``clear_output(wait=True)`` then a fresh display), which JupyterLab 4
    shows also inside another widget (it ignores updates of a display handle there). Elsewhere, or with
    ``DFL_STATIC_WIDGETS=1`` (static renderings, CI), nothing is drawn during the search and
    :meth:`figure` gives the final plot.

    Example:
        >>> live = LiveProgress(metric="val_acc")
        >>> result = search(space, RegularizedEvolution(), evaluator, 100, callbacks=[live])
        >>> live.draw()                                      # the final state: all 100 evaluations
        >>> live = LiveProgress(plot=alphas, every=1)        # architecture weights, epoch by epoch
        >>> darts_search(data, epochs=20, callbacks=[live])
    """

    def __init__(self, metric: str | None = None, every: int = 5, title: str | None = None,
                 plot: Callable[[Any], Figure] | None = None, out: Any = None):
        self.metric, self.every, self.title = metric, max(1, every), title
        self.plot = plot
        self.out = out
        self.result: Any = None
        self.drawn = 0  # evaluations (epochs) in the figure shown last
        self.live = _in_kernel() and os.environ.get("DFL_STATIC_WIDGETS", "") in ("", "0")

    @staticmethod
    def _steps(result: Any) -> int:
        return len(result.trials) if hasattr(result, "trials") else len(result.history)

    def __call__(self, result: Any) -> None:
        self.result = result
        if self._steps(result) - self.drawn >= self.every:
            self.draw()

    def draw(self) -> None:
        """Redraw now (in a kernel); call it once more after the search for the final state."""
        if not self.live or self.result is None:
            return
        from IPython.display import display

        if self.out is None:
            import ipywidgets

            self.out = ipywidgets.Output()
            display(self.out)
        self.drawn = self._steps(self.result)
        if not plt.get_fignums():  # have pyplot load its backend: the notebook one registers how a figure displays
            plt.close(plt.figure())
        token = _OFF_PYPLOT.set(True)
        try:
            fig = self._render()
        finally:
            _OFF_PYPLOT.reset(token)
        plt.close(fig)  # if a custom plot made it through pyplot: shown once, below, not again at the cell's end
        self.out.clear_output(wait=True)  # the old figure stays until the new one arrives: no flicker
        with self.out:
            display(fig)

    def _render(self) -> Figure:
        if self.plot is not None:
            return self.plot(self.result) if self.title is None else self.plot(self.result, title=self.title)
        return search_progress(self.result, self.metric, title=self.title)

    def figure(self) -> Figure:
        """The figure of the search so far (the final one once the search has returned)."""
        if self.result is None:
            raise RuntimeError("no search has called this LiveProgress yet; pass it as search(..., callbacks=[it])")
        return self._render()


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")
