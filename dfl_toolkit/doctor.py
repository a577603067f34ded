"""Environment check: versions, device, quick mode, and which datasets load offline."""

from __future__ import annotations

import importlib.metadata
import platform
import time

import torch

from .data import get_dataset, list_datasets
from .errors import DFLError
from .runtime import data_dir, get_device, quick_mode

PACKAGES = ("torch", "torchvision", "captum", "matplotlib", "ipywidgets", "jupyterlab", "nbval", "scikit-learn",
            "tqdm", "numpy")


def environment_report(load_datasets: bool = True) -> list[tuple[str, str]]:
    """Rows of (item, finding) describing this environment.

    With ``load_datasets`` every offline dataset is really loaded (a few seconds the first time,
    then cached) and reported with its split sizes, or with the reason it failed.

    Example:
        >>> for item, finding in environment_report(load_datasets=False): print(item, finding)
    """
    rows = [("python", platform.python_version()), ("platform", f"{platform.system()} {platform.machine()}")]
    for pkg in PACKAGES:
        try:
            rows.append((pkg, importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((pkg, "MISSING: install with `pip install -e .` or the README's setup command"))
    rows += [("device", str(get_device())), ("cuda available", str(torch.cuda.is_available())),
             ("cpu threads", str(torch.get_num_threads())), ("quick mode", str(quick_mode())),
             ("data folder", str(data_dir()))]
    if load_datasets:
        for info in list_datasets(offline=True):
            t0 = time.perf_counter()
            try:
                d = get_dataset(info.name)
                rows.append((f"data: {info.name}", f"ok, {len(d.train)}/{len(d.val)}/{len(d.test)} "
                                                    f"train/val/test, {time.perf_counter() - t0:.1f} s"))
            except (DFLError, ImportError, OSError) as err:
                rows.append((f"data: {info.name}", f"FAILED: {err}"))
    return rows


def format_report(rows: list[tuple[str, str]]) -> str:
    """The report as aligned text lines."""
    width = max(len(item) for item, _ in rows)
    return "\n".join(f"{item:<{width}}  {finding}" for item, finding in rows)
