"""Training: one loop (:func:`fit`) with :func:`evaluate` and :func:`predict` beside it."""

from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .loop import evaluate, fit, predict

__all__ = ["History", "evaluate", "fit", "load_checkpoint", "predict", "save_checkpoint"]
