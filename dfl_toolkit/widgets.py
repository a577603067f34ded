"""Interactive explorers: pick an image, a layer, a method or an attention head, and see the figure.

Each explorer returns an ipywidgets box in a Jupyter kernel (JupyterLab, Colab) and, where widgets
cannot render (a plain Python script, or ``static=True``, or ``DFL_STATIC_WIDGETS=1`` for printed
handouts and CI logs), the figure for the default choices instead. The controls use
``continuous_update=False`` so a slider redraws once, when it is released.

Example:
    >>> feature_map_explorer(model, images)          # in a notebook: sliders + dropdowns
    >>> feature_map_explorer(model, images, static=True)  # a matplotlib Figure
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from . import viz
from .explain import METHODS, explain
from .features import extract_features
from .features.extraction import CONTAINERS


def widgets_available() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed, unless ``DFL_STATIC_WIDGETS=1``."""
    if os.environ.get("DFL_STATIC_WIDGETS", "") not in ("", "0"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _explore(render: Callable[..., Any], controls: dict[str, Any], static: bool | None) -> Any:
    """Show ``render(**choices)``: as a Figure (static), or as widgets that redraw on every change.

    ``controls`` maps an argument name to its options: a list (dropdown) or a ``range`` (slider).
    """
    defaults = {name: (opts[0] if len(opts) else None) for name, opts in controls.items()}
    if static or (static is None and not widgets_available()):
        return render(**defaults)

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    inputs = {}
    for name, opts in controls.items():
        label = name.replace("_", " ")
        if isinstance(opts, range):
            inputs[name] = w.IntSlider(value=opts.start, min=opts.start, max=max(opts.start, opts.stop - 1),
                                       step=opts.step, description=label, continuous_update=False)
        else:
            inputs[name] = w.Dropdown(options=list(opts), value=defaults[name], description=label)
    out = w.Output()

    def redraw(_change: Any = None) -> None:
        out.clear_output(wait=True)
        with out:
            fig = render(**{name: widget.value for name, widget in inputs.items()})
            display(fig)
            plt.close(fig)  # shown once, inside the Output, not again by the inline backend

    for widget in inputs.values():
        widget.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox(list(inputs.values())), out])


def _post_order(module: nn.Module, prefix: str = "") -> Iterator[str]:
    """Module names with every container after its children: roughly the order the input flows through."""
    for name, child in module.named_children():
        yield from _post_order(child, f"{prefix}{name}.")
        yield f"{prefix}{name}"


def _map_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Layers whose output on ``x`` is a stack of 2-D maps (N, C, H, W): the ones worth a grid."""
    modules = dict(model.named_modules())
    names = [n for n in _post_order(model) if not isinstance(modules[n], CONTAINERS)]
    feats = extract_features(model, x, names)
    return [n for n in names if isinstance(feats[n], torch.Tensor) and feats[n].dim() == 4]


def feature_map_explorer(model: nn.Module, images: torch.Tensor, layers: Sequence[str] | None = None, *,
                         max_maps: int = 16, static: bool | None = None) -> Any:
    """Browse the feature maps of every conv-like layer for each image.

    Notice how early layers keep the image's shape (edges, strokes) and deep layers become coarse,
    sparse detectors of parts.

    Example:
        >>> feature_map_explorer(model, test_images[:8])
    """
    model.eval()
    layers = list(layers) if layers is not None else _map_layers(model, images[:1])

    def render(image: int, layer: str) -> Any:
        act = extract_features(model, images[image:image + 1], [layer])[layer]
        return viz.feature_maps(act[0], max_maps=max_maps, title=f"image {image}: {layer}")

    return _explore(render, {"image": range(len(images)), "layer": layers}, static)


def attribution_explorer(model: nn.Module, images: torch.Tensor, *, methods: Sequence[str] = METHODS,
                         layer: str | None = None, denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
                         class_names: Sequence[str] | None = None, static: bool | None = None) -> Any:
    """Compare attribution methods on each image, for the class the model predicts.

    ``layer`` is Grad-CAM's layer (without it, Grad-CAM is left out of the choices).

    Example:
        >>> attribution_explorer(model, test_images[:8], layer="features.block2", denormalize=data.denormalize)
    """
    model.eval()
    methods = [m for m in methods if m != "gradcam" or layer is not None]
    with torch.no_grad():
        preds = model(images).argmax(dim=1)

    def render(image: int, method: str) -> Any:
        x, target = images[image:image + 1], int(preds[image])
        attr, _ = explain(model, x, target, method, layer=layer)
        name = class_names[target] if class_names is not None else str(target)
        return viz.attribution_overlay(x, attr, titles=[f"{method}: predicted {name}"], denormalize=denormalize)

    return _explore(render, {"image": range(len(images)), "method": methods}, static)


def attention_explorer(model: nn.Module, ids: torch.Tensor, tokens: Sequence[Sequence[str]], *,
                       static: bool | None = None) -> Any:
    """Browse a transformer's attention per sentence, layer and head, or rolled out over all layers.

    ``tokens[i]`` are the words of ``ids[i]`` without padding. Notice heads that look at the
    previous word, at the sentence's sentiment words, or everywhere at once.

    Example:
        >>> attention_explorer(model, test_ids[:5], [data.decode(s) for s in test_ids[:5]])
    """
    from .features.sequence import attention_maps, attention_rollout

    model.eval()
    maps = attention_maps(model, ids)
    rollout = attention_rollout(maps)
    heads = ["all heads", "mean", "rollout"] + [f"head {h}" for h in range(maps[0].shape[1])]

    def render(sentence: int, layer: int, head: str) -> Any:
        n = len(tokens[sentence])
        words = list(tokens[sentence])
        if head == "rollout":
            return viz.attention(rollout[sentence, :n, :n], tokens=words)
        att = maps[layer][sentence, :, :n, :n]
        if head == "mean":
            return viz.attention(att.mean(dim=0), tokens=words)
        if head == "all heads":
            return viz.attention(att, tokens=words)
        return viz.attention(att[int(head.split()[1])], tokens=words)

    return _explore(render, {"sentence": range(len(ids)), "layer": range(len(maps)), "head": heads}, static)


def search_runner(space: Any, evaluator: Callable[..., dict[str, Any]], strategies: dict[str, Callable[[], Any]],
                  *, budgets: Sequence[int] = (20, 50, 100, 200), metric: str | None = None,
                  static: bool | None = None) -> Any:
    """Choose a strategy, a budget and a seed, press *Run*, and watch the search progress live.

    ``strategies`` maps a name to a function that makes a fresh strategy. Without widgets (or with
    ``static=True``) the first strategy runs once with the first budget and seed 0, and the progress
    Figure is returned. The last finished search is kept in ``box.result`` (its figure: ``box.live.figure()``).
    After a run the figure holds every evaluation, and the printed best is its curve's last value.

    Example:
        >>> search_runner(CellSpace(), TabularEvaluator(bench), {"random": RandomSearch,
        ...               "evolution": RegularizedEvolution}, budgets=(50, 100))
    """
    from .nas import search
    from .nas.plots import LiveProgress, search_progress

    if not strategies or not budgets:
        raise ValueError("search_runner needs at least one strategy and one budget")
    names = list(strategies)

    def run(name: str, budget: int, seed: int, live: LiveProgress | None = None) -> Any:
        callbacks = [live] if live is not None else []
        return search(space, strategies[name](), evaluator, budget, seed=seed, progress=False, callbacks=callbacks)

    if static or (static is None and not widgets_available()):
        result = run(names[0], budgets[0], 0)
        return search_progress({names[0]: result}, metric, title=f"{names[0]}, {budgets[0]} evaluations, seed 0")

    import ipywidgets as w

    strategy = w.Dropdown(options=names, value=names[0], description="strategy")
    budget = w.Dropdown(options=list(budgets), value=budgets[0], description="budget")
    seed = w.BoundedIntText(value=0, min=0, max=10**6, description="seed")
    button = w.Button(description="Run", button_style="primary")
    plot, text = w.Output(), w.Output()  # the figure is redrawn in place; the summary is printed once, below it
    box = w.VBox([w.HBox([strategy, budget, seed, button]), plot, text])
    box.result, box.live = None, None

    def on_click(_button: Any = None) -> None:
        text.clear_output()
        title = f"{strategy.value}, {budget.value} evaluations, seed {seed.value}"
        box.live = LiveProgress(metric=metric, every=max(1, budget.value // 20), title=title, out=plot)
        try:
            box.result = run(strategy.value, budget.value, seed.value, box.live)
        except Exception:
            with text:  # the traceback shows under the controls (a callback's error would go to the log only)
                raise
        box.live.draw()  # the final state, whatever the update interval
        best, shown = box.result.best, metric or box.result.objective
        with text:
            print(f"best of {len(box.result.trials)}: {best.arch}  {shown} = {box.result.score(best, shown):.4f}")

    button.on_click(on_click)
    box.run = on_click  # for tests and for running it from code
    return box
