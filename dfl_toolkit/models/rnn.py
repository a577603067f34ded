"""Recurrent networks for sequences: classify or forecast a series, classify a sentence, write text.

- :class:`SequenceRNN`: real-valued steps (N, T, features) -> one output vector (classes or forecast).
- :class:`TextRNN`: padded token ids (N, T) -> class logits; padding never changes the result.
- :class:`CharRNN`: a character language model that can write text with :meth:`CharRNN.generate`.

Each keeps its parts under plain names (``embed``, ``rnn``, ``head``) so that
:func:`dfl_toolkit.features.rnn_states` and :func:`dfl_toolkit.extract_features` can find them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..errors import UnknownNameError

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def _make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Module:
    if cell not in CELLS:
        raise UnknownNameError("cell", cell, list(CELLS))
    # nn.LSTM applies dropout only between stacked layers (and warns when there is just one)
    return CELLS[cell](input_size, hidden_size, num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)


def _check_ids(x: torch.Tensor, model: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.is_floating_point():
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{model} takes token ids: an integer tensor of shape (N, T); got {got}")


class SequenceRNN(nn.Module):
    """LSTM or GRU over real-valued sequences; a linear head reads the top layer's last state.

    Input (N, T, input_size), output (N, num_outputs): class logits for classification, or the next
    ``horizon`` values for forecasting (e.g. ``get_dataset("sunspots")`` gives x of shape (N, 20, 1)).
    ``dropout`` acts between stacked layers and before the head.

    Example:
        >>> model = SequenceRNN(input_size=1, hidden_size=32, num_outputs=1, cell="gru")
        >>> model(torch.zeros(8, 20, 1)).shape
        torch.Size([8, 1])
    """

    def __init__(self, input_size: int, hidden_size: int, num_outputs: int, *, cell: str = "lstm",
                 num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.input_size = input_size
        self.rnn = _make_rnn(cell, input_size, hidden_size, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"SequenceRNN takes (N, T, {self.input_size}) sequences, got shape {tuple(x.shape)}; "
                             f"for MNIST-1D's (N, 1, 40) use x.transpose(1, 2)")
        out, _ = self.rnn(x)  # out: (N, T, hidden), the top layer's state at every step
        return self.head(self.dropout(out[:, -1]))


class TextRNN(nn.Module):
    """Sentence classifier: token embedding -> LSTM/GRU -> linear head on the state after the last real token.

    Takes right-padded token ids (N, T) with ``pad_id`` after the end of each sentence. The padded
    batch is packed (``pack_padded_sequence``), so the RNN stops at each sentence's own length and
    extra padding never changes the output.

    Example:
        >>> data = get_dataset("rotten_tomatoes")
        >>> model = TextRNN(len(data.info["vocab"]), embed_dim=64, hidden_size=64, num_classes=2)
        >>> model(data.train[0][0][None]).shape
        torch.Size([1, 2])
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_classes: int, *, cell: str = "lstm",
                 pad_id: int = 0, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = _make_rnn(cell, embed_dim, hidden_size, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_ids(x, "TextRNN")
        lengths = (x != self.pad_id).sum(1).clamp(min=1)  # an all-padding row reads one pad token
        packed = pack_padded_sequence(self.embed(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c), GRU returns h
        return self.head(self.dropout(h[-1]))  # h: (num_layers, N, hidden) at each sentence's last token


class CharRNN(nn.Module):
    """Character language model: embedding -> LSTM -> linear, predicting the next character at every step.

    ``forward(ids)`` maps (N, T) ids to logits (N, T, vocab_size); :meth:`loss` is the cross-entropy
    against the next characters, and :meth:`generate` samples new text.

    Example:
        >>> corpus = load_char_corpus("imdb")
        >>> model = CharRNN(len(corpus.chars), embed_dim=32, hidden_size=128)
        >>> train, val = corpus.windows(seq_len=100)
        >>> history = fit(model, train, val, epochs=3, loss_fn=CharRNN.loss)
        >>> corpus.decode(model.generate(corpus.encode("The movie "), 200, generator=torch.Generator().manual_seed(0)))
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 128, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = _make_rnn("lstm", embed_dim, hidden_size, num_layers, dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_ids(x, "CharRNN")
        out, _ = self.rnn(self.embed(x))
        return self.head(out)

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of logits (N, T, V) against the next ids (N, T); usable as ``fit(loss_fn=...)``."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, prefix_ids: list[int], length: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> list[int]:
        """The prefix followed by ``length`` sampled ids, one character at a time.

        Each step samples from softmax(logits / temperature): low temperatures pick likely characters,
        high ones surprising ones; ``temperature=0`` always takes the most likely one. Pass a seeded
        ``torch.Generator`` (CPU) for text that repeats exactly.
        """
        prefix_ids = [int(i) for i in prefix_ids]
        if not prefix_ids:
            raise ValueError("prefix_ids must hold at least one id (e.g. corpus.encode('\\n'))")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        out, state = self.rnn(self.embed(torch.tensor([prefix_ids], device=device)))  # read the prefix
        ids = list(prefix_ids)
        for _ in range(length):
            logits = self.head(out[0, -1]).float().cpu()
            if temperature == 0:
                nxt = int(logits.argmax())
            else:
                nxt = int(torch.multinomial(F.softmax(logits / temperature, dim=-1), 1, generator=generator))
            ids.append(nxt)
            out, state = self.rnn(self.embed(torch.tensor([[nxt]], device=device)), state)  # one step on
        self.train(was_training)
        return ids
