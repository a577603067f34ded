"""Training: one loop (:func:`fit`) with :func:`evaluate` and :func:`predict` beside it."""

from .history import History
from .loop import evaluate, fit, predict

__all__ = ["History", "evaluate", "fit", "predict"]
