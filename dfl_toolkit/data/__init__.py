"""Datasets: real, with fixed splits, offline where possible (see :func:`list_datasets`)."""

from .photos import list_photos, load_photo
from .registry import DatasetInfo, dataset_options, get_dataset, get_loaders, list_datasets
from .splits import DatasetSplits

__all__ = ["DatasetInfo", "DatasetSplits", "dataset_options", "get_dataset", "get_loaders", "list_datasets",
           "list_photos", "load_photo"]
