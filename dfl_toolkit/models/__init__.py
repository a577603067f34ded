"""Teaching-sized models with readable layer names."""

from .cnn import ConvNet

__all__ = ["ConvNet"]
