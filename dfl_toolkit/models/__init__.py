"""Teaching-sized models with readable layer names."""

from .cnn import ConvNet
from .rnn import CharRNN, SequenceRNN, TextRNN
from .transformer import EncoderBlock, MultiHeadSelfAttention, TransformerClassifier

__all__ = ["CharRNN", "ConvNet", "EncoderBlock", "MultiHeadSelfAttention", "SequenceRNN", "TextRNN",
           "TransformerClassifier"]
