"""Real photographs bundled with scikit-image, scikit-learn and matplotlib (no network needed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import UnknownNameError


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()
    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]
    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    import matplotlib.image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return matplotlib.image.imread(f, format="jpg")


PHOTOS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "astronaut Eileen Collins (NASA), scikit-image"),
    "chelsea": (_skimage("chelsea"), "Chelsea the cat, scikit-image"),
    "coffee": (_skimage("coffee"), "a cup of coffee, scikit-image"),
    "rocket": (_skimage("rocket"), "a rocket launch (NASA), scikit-image"),
    "camera": (_skimage("camera"), "the cameraman (greyscale), scikit-image"),
    "coins": (_skimage("coins"), "Greek coins (greyscale), scikit-image"),
    "china": (_sklearn(0), "a Chinese temple, scikit-learn sample image"),
    "flower": (_sklearn(1), "a flower, scikit-learn sample image"),
    "grace_hopper": (_grace_hopper, "Rear Admiral Grace Hopper, matplotlib sample data"),
}


def list_photos() -> list[str]:
    """Names accepted by :func:`load_photo`."""
    return sorted(PHOTOS)


def load_photo(name: str) -> np.ndarray:
    """A bundled photo as an RGB ``uint8`` array of shape (H, W, 3); greyscale ones are repeated to RGB.

    Example:
        >>> load_photo("chelsea").shape
        (300, 451, 3)
    """
    if name not in PHOTOS:
        raise UnknownNameError("photo", name, PHOTOS)
    img = np.asarray(PHOTOS[name][0]())
    if img.dtype != np.uint8:
        img = (img * 255).round().astype(np.uint8) if img.max() <= 1 else img.astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])
