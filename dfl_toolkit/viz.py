"""Figures for looking inside networks: activations, filters, embeddings, attention, attributions, results.

Every function takes torch tensors or numpy arrays, returns its ``matplotlib.figure.Figure`` (shown inline in a
notebook) and raises :class:`ShapeError` naming the accepted shapes when an input does not fit. Learning curves
are :meth:`History.plot <dfl_toolkit.train.History.plot>`.

Example:
    >>> feats = extract_features(model, images[:1], ["features.block1"])
    >>> feature_maps(feats["features.block1"])
    >>> embeddings_by_layer(extract_features(model, images, layers), labels, class_names=data.classes)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .errors import ShapeError, UnknownNameError

Array = torch.Tensor | np.ndarray
Denormalize = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------- helpers

def _np(x: Any, name: str) -> np.ndarray:
    if isinstance(x, tuple) and any(isinstance(v, tuple) or (torch.is_tensor(v) and v.dim() > 0) for v in x):
        raise ShapeError(f"{name} is a tuple of tensors (nn.LSTM returns (output, (h, c))): pass one tensor")
    if torch.is_tensor(x):
        x = x.detach().cpu()
        return (x.float() if x.is_floating_point() else x).numpy()
    return np.asarray(x)


def to_hwc(x: Array) -> np.ndarray:
    """Channels-last numpy, what ``imshow`` and ``captum.attr.visualization`` want: (C,H,W) -> (H,W,C),
    (N,C,H,W) -> (N,H,W,C).

    Example:
        >>> to_hwc(torch.zeros(3, 28, 28)).shape
        (28, 28, 3)
    """
    a = _np(x, "x")
    if a.ndim not in (3, 4):
        raise ShapeError(f"to_hwc takes (C, H, W) or (N, C, H, W), got shape {a.shape}")
    return np.moveaxis(a, -3, -1)


def _display(im: np.ndarray) -> np.ndarray:
    """One image in [0, 1] for imshow: uint8 / 255, clipped if already (about) in [0, 1], else min-max scaled."""
    if im.dtype == np.uint8:
        return im / 255.0
    lo, hi = float(im.min()), float(im.max())
    if lo >= -0.01 and hi <= 1.01:
        return np.clip(im, 0.0, 1.0)
    return (im - lo) / (hi - lo + 1e-12)


def _images(images: Array, denormalize: Denormalize | None, name: str = "images") -> np.ndarray:
    """A batch as (N, H, W, C) in [0, 1], C = 1 or 3."""
    if denormalize is not None:
        images = denormalize(images if torch.is_tensor(images) else torch.as_tensor(np.asarray(images)))
    x = _np(images, name)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ShapeError(f"{name} must be a batch (N, C, H, W) with C = 1 or 3, or (N, H, W); got shape {x.shape}"
                         + (" (one image? add a batch axis: x[None])" if x.ndim == 2 else ""))
    return np.stack([_display(im) for im in to_hwc(x)])


def _show(ax: Axes, im: np.ndarray, **kw: Any) -> None:
    """imshow without ticks; an (H, W, 1) or (H, W) image in grey unless a cmap is given."""
    if im.ndim == 3 and im.shape[-1] == 1:
        im = im[..., 0]
    if im.ndim == 2 and "cmap" not in kw:
        kw.update(cmap="gray", vmin=0, vmax=1)
    ax.imshow(im, interpolation="nearest", **kw)
    ax.set(xticks=[], yticks=[])


def _grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A figure with exactly ``n`` panels, ``ncols`` per row (unused slots removed)."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows + 0.5), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.remove()
    return fig, list(axes.flat[:n])


def _labels(v: Any, n: int, name: str) -> np.ndarray | None:
    """Class indices (N,); logits or probabilities (N, K) become their argmax."""
    if v is None:
        return None
    a = _np(v, name)
    a = a.argmax(1) if a.ndim == 2 else a
    if a.ndim != 1 or len(a) != n:
        raise ShapeError(f"{name} must be (N,) class indices or (N, K) scores for N = {n} samples, got shape {a.shape}")
    return a


def _name(c: Any, class_names: Sequence[str] | None) -> str:
    if class_names is None:
        return str(c)
    if not 0 <= int(c) < len(class_names):
        raise ShapeError(f"class {c} has no name: class_names has {len(class_names)} entries")
    return str(class_names[int(c)])


def _check_tokens(tokens: Sequence[Any] | None, n: int, what: str) -> list[str] | None:
    if tokens is None:
        return None
    if len(tokens) != n:
        raise ShapeError(f"got {len(tokens)} tokens for {n} {what}: pass one token per position")
    return [str(t) for t in tokens]


def _new_ax(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize, layout="constrained")


# ---------------------------------------------------------------------------------------------------- features

def feature_maps(activation: Array, max_maps: int = 16, title: str | None = None, ncols: int = 8) -> Figure:
    """The first ``max_maps`` channels of one image's activation (C, H, W) or (1, C, H, W), one panel each,
    every panel on its own colour scale.

    Look for: early layers respond to edges and strokes at given orientations and positions, deeper ones to
    larger, sparser parts; all-dark panels are dead channels.

    Example:
        >>> feats = extract_features(model, images[:1], ["features.block1"])
        >>> feature_maps(feats["features.block1"], title="block 1")
    """
    a = _np(activation, "activation")
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        hint = " (a batch: pick one image, e.g. act[0])" if a.ndim == 4 else ""
        raise ShapeError(f"activation must be one image's (C, H, W) or (1, C, H, W), got shape {a.shape}{hint}")
    n = min(max_maps, len(a))
    fig, axes = _grid(n, ncols, (1.4, 1.5))
    for i, ax in enumerate(axes):
        _show(ax, a[i], cmap="viridis")
        ax.set_title(f"ch {i}", fontsize=8)
    fig.suptitle(title or f"{n} of {len(a)} channels, {a.shape[1]}x{a.shape[2]}")
    return fig


def filters(weight: Array | torch.nn.Module, max_filters: int = 32, ncols: int = 8, title: str | None = None) -> Figure:
    """Convolution kernels (out, in, kh, kw), e.g. ``model.conv1.weight`` or the ``nn.Conv2d`` itself, as small
    images: RGB when in = 3, grey otherwise (mean over input channels), each scaled to its own [min, max].

    Look for: trained first-layer filters are smooth edge, colour-blob and frequency detectors; untrained ones
    are noise.

    Example:
        >>> filters(model.features.block1.conv1)          # or a pretrained model's first conv
    """
    w = _np(weight.weight if isinstance(weight, torch.nn.Module) else weight, "weight")
    if w.ndim != 4:
        raise ShapeError(f"weight must be a conv kernel (out, in, kh, kw), e.g. model.conv1.weight; got {w.shape}")
    n = min(max_filters, len(w))
    fig, axes = _grid(n, ncols, (0.9, 0.9))
    for i, ax in enumerate(axes):
        f = w[i].transpose(1, 2, 0) if w.shape[1] == 3 else w[i].mean(0)
        _show(ax, (f - f.min()) / (f.max() - f.min() + 1e-12))
    fig.suptitle(title or f"{n} of {len(w)} filters, {w.shape[2]}x{w.shape[3]}" + (" RGB" if w.shape[1] == 3 else ""))
    return fig


def _project(x: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, tuple[str, str]]:
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(2, random_state=seed).fit(x)
        v = pca.explained_variance_ratio_
        return pca.transform(x), (f"PC 1 ({v[0]:.0%} of variance)", f"PC 2 ({v[1]:.0%})")
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        tsne = TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed)
        # scikit-learn's OpenMP threads spin against torch's: one thread took 0.4 s for 45 points on a busy
        # 2-core machine where the default took 88 s
        with threadpool_limits(1, user_api="openmp"):
            return tsne.fit_transform(x), ("t-SNE 1", "t-SNE 2")
    raise UnknownNameError("embedding method", method, ("pca", "tsne"))


def embedding(features: Array, labels: Array | Sequence[int] | None = None, method: str = "pca",
              class_names: Sequence[str] | None = None, seed: int = 0, ax: Axes | None = None,
              title: str | None = None, legend: bool = True) -> Figure:
    """2-D scatter of features (N, D) (higher dims are flattened) by PCA or t-SNE (scikit-learn, same seed gives
    the same picture), one colour per class. Draws into ``ax`` if given.

    Look for: classes that form separate clusters are easy for a linear classifier on these features. PCA keeps
    global distances (axis labels give the variance kept); t-SNE keeps neighbourhoods only, so cluster sizes and
    gaps mean little. t-SNE is slow beyond a few thousand points: subsample.

    Example:
        >>> feats = extract_features(model, images, ["classifier.1"])["classifier.1"]
        >>> embedding(feats, labels, method="tsne", class_names=data.classes)
    """
    x = _np(features, "features")
    if x.ndim < 2 or x.shape[0] < 3 or np.prod(x.shape[1:]) < 2:
        raise ShapeError(f"features must be (N, D) or (N, ...) with N >= 3 samples and D >= 2, got shape {x.shape}")
    x = x.reshape(len(x), -1).astype(np.float64)
    y = _labels(labels, len(x), "labels")
    xy, (xlabel, ylabel) = _project(x, method, seed)
    fig, ax = _new_ax(ax, (5, 4.5))
    if y is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=8)
    else:
        classes = np.unique(y)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for k, c in enumerate(classes):
            ax.scatter(xy[y == c, 0], xy[y == c, 1], s=8, color=cmap(k % cmap.N), label=_name(c, class_names))
        if legend:
            ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set(xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[],
           title=title or f"{method.upper() if method == 'pca' else 't-SNE'} of {len(x)} samples ({x.shape[1]}-d)")
    return fig


def embeddings_by_layer(feature_dict: Mapping[str, Array], labels: Array | Sequence[int], method: str = "pca",
                        class_names: Sequence[str] | None = None, seed: int = 0, ncols: int = 4,
                        title: str | None = None) -> Figure:
    """One :func:`embedding` panel per layer of ``{name: (N, ...) features}`` (what :func:`extract_features`
    returns), in the dict's order, titled with the layer and its dimension; legend on the last panel.

    Look for: classes mixed in the input and early layers, separating with depth; the last hidden layer is
    what the classifier sees.

    Example:
        >>> layers = ["features.block1", "features.block2", "classifier.1"]
        >>> embeddings_by_layer(extract_features(model, images, layers), labels, class_names=data.classes)
    """
    if not feature_dict:
        raise ShapeError("feature_dict is empty: pass {layer name: (N, ...) features}")
    fig, axes = _grid(len(feature_dict), ncols, (3.6, 3.4))
    for i, ((name, f), ax) in enumerate(zip(feature_dict.items(), axes, strict=True)):
        x = _np(f, f"features of {name!r}")
        embedding(x, labels, method, class_names, seed, ax=ax, title=f"{name} ({int(np.prod(x.shape[1:]))}-d)",
                  legend=i == len(axes) - 1)
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------------------- sequences

def hidden_states(states: Array, tokens: Sequence[Any] | None = None, max_units: int = 32,
                  title: str | None = None) -> Figure:
    """Heatmap of an RNN's hidden units (rows, first ``max_units``) over time (columns) for one sequence:
    (T, H), or one sequence of a batch shaped (1, T, H) (batch_first) or (T, 1, H). Blue negative, red positive.

    Look for: units that flip at particular tokens (a negation, the end of a word), units that change slowly
    and carry memory, units that count position.

    Example:
        >>> out, _ = lstm(x[None])            # batch_first LSTM, out: (1, T, H)
        >>> hidden_states(out, tokens=list("hello world"))
    """
    h = _np(states, "states")
    if h.ndim == 3 and 1 in h.shape[:2]:
        h = h[0] if h.shape[0] == 1 else h[:, 0]
    if h.ndim != 2:
        raise ShapeError(f"states must be one sequence's (T, H), (1, T, H) or (T, 1, H); got shape {h.shape}"
                         + (" (a batch: pick one sequence, e.g. out[0])" if h.ndim == 3 else ""))
    t, n_units = h.shape
    labels = _check_tokens(tokens, t, "time steps")
    u = h[:, :max_units].T
    m = float(np.abs(u).max()) or 1.0
    fig, ax = plt.subplots(figsize=(min(14.0, 2.5 + 0.3 * t), 1.5 + 0.15 * len(u)), layout="constrained")
    im = ax.imshow(u, aspect="auto", cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="activation")
    if labels is not None:
        ax.set_xticks(range(t), labels, rotation=90 if max(map(len, labels)) > 2 else 0)
    ax.set(xlabel="token" if labels else "time step", ylabel="hidden unit",
           title=title or f"{len(u)} of {n_units} hidden units over {t} steps")
    return fig


def attention(weights: Array, tokens: Sequence[Any] | None = None, heads: int | Sequence[int] | None = None,
              title: str | None = None, ncols: int = 4) -> Figure:
    """Attention matrices, rows = queries (attending from), columns = keys (attending to): one (T, T) matrix,
    or per-head panels from (heads, T, T) or (1, heads, T, T); ``heads`` picks some. One colour scale for all.

    Look for: heads attending to the previous token, to themselves, to the first token (a "sink") or to the
    tokens that decide the label. Rows of a softmax sum to 1.

    Example:
        >>> _, w = mha(x, x, x, need_weights=True, average_attn_weights=False)   # (1, heads, T, T)
        >>> attention(w, tokens=words)
    """
    w = _np(weights, "weights")
    single = w.ndim == 2
    if w.ndim == 4 and w.shape[0] == 1:
        w = w[0]
    w = w[None] if single else w
    if w.ndim != 3:
        raise ShapeError(f"weights must be (T, T), (heads, T, T) or (1, heads, T, T); got shape {w.shape}"
                         + (" (a batch: pick one sequence, e.g. w[0])" if w.ndim == 4 else ""))
    labels = _check_tokens(tokens, w.shape[2], "keys")
    if labels is not None and w.shape[1] != w.shape[2]:
        raise ShapeError(f"tokens label both axes, so weights must be square; got {w.shape[1]} x {w.shape[2]}")
    picked = range(len(w)) if heads is None else [heads] if isinstance(heads, int) else list(heads)
    if not picked or any(not 0 <= h < len(w) for h in picked):
        raise ShapeError(f"heads must be indices in 0..{len(w) - 1}, got {heads!r}")
    side = max(2.8, 0.25 * w.shape[2] + 1.2)
    fig, axes = _grid(len(picked), ncols, (side, side))
    vmax = float(w[list(picked)].max()) or 1.0
    for h, ax in zip(picked, axes, strict=True):
        im = ax.imshow(w[h], cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set(title="attention" if single else f"head {h}", xlabel="key", ylabel="query")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels, rotation=90 if max(map(len, labels)) > 2 else 0)
            ax.set_yticks(range(len(labels)), labels)
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------------------- results

def confusion_matrix(y_true: Array | Sequence[int], y_pred: Array | Sequence[int],
                     class_names: Sequence[str] | None = None, normalize: bool = True,
                     title: str | None = None, ax: Axes | None = None) -> Figure:
    """Confusion matrix (``sklearn.metrics.confusion_matrix``): rows = true class, columns = predicted, each
    cell annotated; ``normalize`` divides each row by its count (the diagonal is per-class recall).
    ``y_pred`` may be class indices (N,) or scores (N, K) (argmax taken).

    Look for: bright off-diagonal cells are the pairs the model confuses (4 vs 9, shirt vs T-shirt).

    Example:
        >>> logits, y = predict(model, data.test, return_targets=True)
        >>> confusion_matrix(y, logits, class_names=data.classes)
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    t = _labels(y_true, len(y_true), "y_true")
    p = _labels(y_pred, len(t), "y_pred")
    scores = _np(y_pred, "y_pred")
    k = (len(class_names) if class_names is not None else scores.shape[1] if scores.ndim == 2
         else int(max(t.max(), p.max())) + 1)
    counts = sk_confusion_matrix(t, p, labels=list(range(k)))
    if counts.sum() != len(t):
        raise ShapeError(f"labels must be class indices in 0..{k - 1} (class_names has {k} entries)")
    shown = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalize else counts
    fig, ax = _new_ax(ax, (1.5 + 0.5 * k, 1.2 + 0.5 * k))
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    if k <= 20:
        for i, j in np.ndindex(k, k):
            v = shown[i, j]
            text = (f"{v:.2f}" if v else "0") if normalize else str(v)
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if v > 0.5 * shown.max() else "black")
    names = [_name(c, class_names) for c in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted", ylabel="true",
           title=title or f"accuracy {np.trace(counts) / len(t):.1%}" + (" (rows sum to 1)" if normalize else ""))
    return fig


def attribution_overlay(images: Array, attributions: Array, titles: Sequence[str] | None = None,
                        denormalize: Denormalize | None = None, cmap: str = "inferno", alpha: float = 0.5) -> Figure:
    """One row per image: [image | attribution heatmap | heatmap over the image].

    ``images`` is a (normalised) batch (N, C, H, W) with C = 1 or 3; pass ``denormalize=data.denormalize`` to
    show it in real colours. ``attributions`` (N, C, H, W), (N, 1, H, W) or (N, H, W), e.g. from
    :func:`explain`, is reduced over channels by the sum of absolute values and scaled per image by its 99th
    percentile (as captum does), so a few extreme pixels do not wash the map out. ``titles`` label the rows.

    Look for: maps on the object (the digit's strokes, the cat's face) rather than the background; methods
    that disagree; noisy gradients (saliency) versus smoother ones (SmoothGrad, Grad-CAM).

    Example:
        >>> attr, _ = explain(model, x, target=y, method="integrated_gradients")
        >>> attribution_overlay(x, attr, titles=[data.classes[i] for i in y], denormalize=data.denormalize)
    """
    img = _images(images, denormalize)
    a = _np(attributions, "attributions")
    a = np.abs(a).sum(1) if a.ndim == 4 else np.abs(a)
    if a.shape != img.shape[:3]:
        raise ShapeError(f"attributions must be (N, C, H, W), (N, 1, H, W) or (N, H, W) matching images "
                         f"(N, H, W) = {img.shape[:3]}; got shape {_np(attributions, 'attributions').shape}")
    if titles is not None and len(titles) != len(img):
        raise ShapeError(f"got {len(titles)} titles for {len(img)} images")
    top = np.percentile(a.reshape(len(a), -1), 99, axis=1).reshape(-1, 1, 1)
    heat = np.clip(a / np.where(top > 0, top, 1.0), 0, 1)
    fig, axes = plt.subplots(len(img), 3, figsize=(7.5, 2.5 * len(img)), squeeze=False, layout="constrained")
    for i, row in enumerate(axes):
        _show(row[0], img[i])
        _show(row[1], heat[i], cmap=cmap, vmin=0, vmax=1)
        _show(row[2], img[i])
        row[2].imshow(heat[i], cmap=cmap, vmin=0, vmax=1, alpha=alpha, interpolation="nearest")
        if titles is not None:
            row[0].set_ylabel(str(titles[i]))
    for ax, name in zip(axes[0], ("image", "attribution", "overlay"), strict=True):
        ax.set_title(name)
    return fig


def _series(name: str, v: Any) -> tuple[np.ndarray, ...]:
    """(x, y, low, high) from y values, {x label: y}, (x, y) or (x, mean, low, high); low/high None without an
    interval. x may be names (e.g. layers): they are drawn as categories, in order."""
    if isinstance(v, Mapping):
        v = (list(v), list(v.values()))
    if isinstance(v, tuple) and len(v) in (2, 4) and all(np.ndim(_np(p, name)) == 1 for p in v):
        parts = [_np(p, name) for p in v]
        parts = [p if i == 0 and p.dtype.kind in "US" else p.astype(float) for i, p in enumerate(parts)]
        if len({len(p) for p in parts}) != 1:
            raise ShapeError(f"series {name!r}: x, y (, low, high) must have one length, got {[len(p) for p in parts]}")
        return tuple(parts) if len(parts) == 4 else (*parts, None, None)
    y = _np(v, name).astype(float)
    if y.ndim != 1:
        raise ShapeError(f"series {name!r} must be y values, (x, y) or (x, mean, low, high); got shape {y.shape}")
    return np.arange(1, len(y) + 1), y, None, None


def curves(series: Mapping[str, Any], xlabel: str = "", ylabel: str = "", title: str | None = None,
           logx: bool = False, logy: bool = False, ax: Axes | None = None) -> Figure:
    """Several curves on one axis for comparison. Each ``{name: value}`` is y values (x = 1, 2, ...), a dict
    ``{x: y}``, a tuple ``(x, y)`` or ``(x, mean, low, high)``, the last drawn with a shaded band (e.g. a spread
    over seeds). x may be names (layers, methods), drawn in the given order.

    Look for: where curves separate by more than their bands (a real difference) and where bands overlap.

    Example:
        >>> curves({"random": (n, mean_r, lo_r, hi_r), "evolution": (n, mean_e, lo_e, hi_e)},
        ...        "architectures evaluated", "regret", logy=True)
    """
    if not series:
        raise ShapeError("series is empty: pass {name: y values, (x, y) or (x, mean, low, high)}")
    fig, ax = _new_ax(ax, (6, 4))
    for name, v in series.items():
        x, y, lo, hi = _series(name, v)
        (line,) = ax.plot(x, y, marker="o" if len(x) <= 30 else None, ms=3, label=name)
        if lo is not None:
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "")
    if logx:  # setting "linear" would also reset a categorical axis (named x values) to numbers
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def probe_accuracy(results: Mapping[str, float] | Sequence[tuple[str, float]], chance: float | None = None,
                   title: str | None = None, ax: Axes | None = None) -> Figure:
    """Bar per layer of linear-probe accuracy, in the given order, each bar labelled with its value; a dashed
    line at ``chance`` (e.g. 1 / number of classes).

    Look for: accuracy rising with depth (features becoming linearly separable); early layers already far
    above chance; a drop at the very end (features specialised to the training task).

    Example:
        >>> probe_accuracy({"block1": 0.91, "block2": 0.96, "fc": 0.98}, chance=0.1)
    """
    try:
        items = [(str(n), float(a)) for n, a in (results.items() if isinstance(results, Mapping) else results)]
    except (TypeError, ValueError) as e:
        raise ShapeError(f"results must be {{layer: accuracy}} or [(layer, accuracy), ...]; got {results!r}") from e
    if not items:
        raise ShapeError("results is empty: pass {layer: accuracy}")
    names, accs = [n for n, _ in items], [a for _, a in items]
    fig, ax = _new_ax(ax, (max(4.0, 1.0 + 0.8 * len(items)), 3.5))
    bars = ax.bar(range(len(accs)), accs, color="tab:blue")
    ax.bar_label(bars, labels=[f"{a:.2f}" for a in accs], fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", label=f"chance ({chance:.2f})")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=30 if max(map(len, names)) > 8 else 0, ha="right")
    ax.set(xlabel="layer", ylabel="probe accuracy", title=title or "linear probe accuracy per layer")
    if max(accs) <= 1:
        ax.set_ylim(0, 1.2)  # room for the value labels and the legend above the bars
    return fig


def image_grid(images: Array, labels: Array | Sequence[int] | None = None, preds: Array | Sequence[int] | None = None,
               class_names: Sequence[str] | None = None, denormalize: Denormalize | None = None, ncols: int = 8,
               max_images: int = 64, title: str | None = None) -> Figure:
    """A grid of the first ``max_images`` images (N, C, H, W) with C = 1 or 3, or (N, H, W), titled with their
    label; with ``preds`` (indices or (N, K) scores) titled with the prediction, mistakes in red as
    "pred (true label)". ``denormalize=data.denormalize`` shows normalised images in real colours (images still
    outside [0, 1] are min-max scaled each; uint8 is divided by 255).

    Look for: what the mistakes have in common (ambiguous digits, wrong labels, unusual backgrounds).

    Example:
        >>> x, y = next(iter(test_dl))
        >>> image_grid(x, y, preds=model(x), class_names=data.classes, denormalize=data.denormalize)
    """
    x = _images(images[:max_images], denormalize)
    y, p = _labels(labels, len(images), "labels"), _labels(preds, len(images), "preds")
    fig, axes = _grid(len(x), ncols, (1.3, 1.5))
    for i, ax in enumerate(axes):
        _show(ax, x[i])
        if p is not None:
            wrong = y is not None and p[i] != y[i]
            text = _name(p[i], class_names) + (f"\n(true {_name(y[i], class_names)})" if wrong else "")
            ax.set_title(text, color="red" if wrong else "black", fontsize=8)
        elif y is not None:
            ax.set_title(_name(y[i], class_names), fontsize=8)
    if title is None and y is not None and p is not None:
        title = f"{int((y[:len(x)] != p[:len(x)]).sum())} of {len(x)} wrong (red)"
    if title:
        fig.suptitle(title)
    return fig
