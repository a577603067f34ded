"""dfl_toolkit: a teaching toolkit for deep feature learning and neural architecture search.

Everything notebooks and tests use is exported here.

Example:
    >>> import dfl_toolkit as dfl
    >>> data = dfl.get_dataset("mnist5k")
    >>> dfl.seed_everything(0)
    >>> history = dfl.fit(dfl.ConvNet(1, 10), *data.loaders(64)[:2], epochs=3)
"""

from .data import (
    DatasetInfo,
    DatasetSplits,
    dataset_options,
    get_dataset,
    get_loaders,
    list_datasets,
    list_photos,
    load_photo,
)
from .doctor import environment_report, format_report
from .errors import CheckpointError, DatasetUnavailableError, DFLError, UnknownNameError
from .explain import explain
from .features import extract_features, list_layers
from .models import ConvNet
from .runtime import by_mode, data_dir, get_device, quick_mode, seed_everything
from .train import History, evaluate, fit, load_checkpoint, predict, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "ConvNet", "DFLError", "DatasetInfo", "DatasetSplits", "DatasetUnavailableError", "History",
    "UnknownNameError", "by_mode", "data_dir", "dataset_options", "environment_report", "evaluate", "explain",
    "extract_features", "fit", "format_report", "get_dataset", "get_device", "get_loaders", "list_datasets",
    "list_layers", "list_photos", "load_checkpoint", "load_photo", "predict", "quick_mode", "save_checkpoint",
    "seed_everything",
]
