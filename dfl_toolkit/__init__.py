"""dfl_toolkit: a teaching toolkit for deep feature learning and neural architecture search.

Everything notebooks and tests use is exported here.

Example:
    >>> import dfl_toolkit as dfl
    >>> data = dfl.get_dataset("mnist5k")
    >>> dfl.seed_everything(0)
    >>> history = dfl.fit(dfl.ConvNet(1, 10), *data.loaders(64)[:2], epochs=3)
"""

from .checkpoint import load_checkpoint, save_checkpoint
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
from .data.text import load_char_corpus
from .doctor import environment_report, format_report
from .errors import (
    CheckpointError,
    DatasetUnavailableError,
    DFLError,
    ShapeError,
    UnknownNameError,
    WeightsUnavailableError,
)
from .explain import DeletionInsertion, deletion_insertion, explain, randomization_test
from .features import (
    Backbone,
    ProbeResult,
    attention_maps,
    attention_rollout,
    extract_features,
    feature_matrix,
    linear_probe,
    list_backbones,
    list_layers,
    load_backbone,
    predict_photo,
    rnn_states,
    token_states,
)
from .models import CharRNN, ConvNet, SequenceRNN, TextRNN, TransformerClassifier
from .runtime import by_mode, data_dir, get_device, quick_mode, seed_everything, torch_threads
from .train import History, evaluate, fit, predict

__version__ = "0.1.0"
LAZY = ("viz", "widgets", "nas", "classroom", "applications")  # subpackages imported on first use

__all__ = [
    "Backbone", "CharRNN", "CheckpointError", "ConvNet", "DFLError", "DatasetInfo", "DatasetSplits",
    "DatasetUnavailableError", "DeletionInsertion", "History", "ProbeResult", "SequenceRNN", "ShapeError", "TextRNN",
    "TransformerClassifier", "UnknownNameError", "WeightsUnavailableError", "attention_maps", "attention_rollout",
    "by_mode", "data_dir", "dataset_options", "deletion_insertion", "environment_report", "evaluate", "explain",
    "extract_features", "feature_matrix", "fit", "format_report", "get_dataset", "get_device", "get_loaders",
    "linear_probe", "list_backbones", "list_datasets", "list_layers", "list_photos", "load_backbone",
    "load_char_corpus", "load_checkpoint", "load_photo", "predict", "predict_photo", "quick_mode", "randomization_test",
    "rnn_states", "save_checkpoint", "seed_everything", "token_states", "torch_threads", "viz", "widgets", "nas",
    "classroom",
]


def __getattr__(name: str):
    """``dfl.viz``, ``dfl.widgets``, ``dfl.nas`` and ``dfl.classroom`` are imported on first use
    (matplotlib, ipywidgets, optuna and nbclient are slow to import)."""
    if name in LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dfl_toolkit' has no attribute {name!r}")
