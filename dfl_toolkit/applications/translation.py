"""Machine translation: two encoder-decoders with attention, greedy and beam-search decoding, BLEU and chrF,
and cross-attention read as a word alignment.

- :class:`GRUTranslator`: a bidirectional GRU encoder and a GRU decoder with *additive* attention
  (Bahdanau, Cho & Bengio 2015, "Neural machine translation by jointly learning to align and translate").
- :class:`TransformerTranslator`: the encoder-decoder of Vaswani et al. 2017 ("Attention is all you need"),
  with the toolkit's readable :class:`~dfl_toolkit.models.transformer.EncoderBlock` as its encoder and decoder
  blocks whose cross-attention weights are kept.
- :class:`SequenceLoss`: cross-entropy over the target words, padding left out, for :func:`~dfl_toolkit.fit`.
- :func:`decode`: greedy (``beam_size=1``) or beam search, with length normalisation; :func:`translate` for text.
- :func:`bleu_chrf`: corpus BLEU (Papineni et al. 2002) and chrF (Popović 2015) from sacreBLEU (Post 2018).
- :func:`cross_attention`, :func:`alignment_scores` and :func:`plot_alignment`: attention as an alignment matrix
  and how diagonal (monotone) it is.

Both models take right-padded ids ``src`` (N, S) and ``tgt_in`` (N, T) (``<bos>`` + target) and return logits
(N, T, vocab), so ``fit(model, data.train, data.val, loss_fn=SequenceLoss())`` trains them with teacher forcing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data.pairs import BOS_ID, EOS_ID, PAD_ID, PairDataset, PairVocab, _int_option, pad_batch
from ..errors import ShapeError, UnknownNameError, UsageError
from ..models.transformer import EncoderBlock
from ..runtime import eval_mode, seed_everything

State = Any  # a tensor, a tuple of tensors or None: what a model carries from one decoding step to the next


def _check_ids(x: torch.Tensor, vocab_size: int, name: str) -> None:
    """One clear error unless ``x`` is (N, T) integer ids below ``vocab_size``, each row with a real token."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.is_floating_point():
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"{name} must be token ids: an integer tensor (N, T); got {got}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise UsageError(f"{name} holds ids outside 0..{vocab_size - 1} (min {int(x.min())}, max {int(x.max())}): "
                         f"encode text with the dataset's vocabulary")
    if x.shape[1] == 0 or bool((x[:, 0] == PAD_ID).any()):
        raise UsageError(f"{name}: every row must start with a real token (right padding with {PAD_ID} only)")


class SequenceLoss(nn.Module):
    """Cross-entropy of logits (N, T, V) against targets (N, T), averaged over the non-padding targets only,
    so padding added after a sentence never changes the loss.

    Example:
        >>> loss_fn = SequenceLoss()
        >>> loss_fn(torch.zeros(2, 5, 10), torch.tensor([[4, 5, 3, 0, 0], [6, 3, 0, 0, 0]]))  # log(10)
        tensor(2.3026)
    """

    def __init__(self, pad_id: int = PAD_ID, label_smoothing: float = 0.0):
        super().__init__()
        self.pad_id, self.label_smoothing = pad_id, label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 3 or target.shape != logits.shape[:2]:
            raise ShapeError(f"SequenceLoss takes logits (N, T, V) and targets (N, T); got {tuple(logits.shape)} "
                             f"and {tuple(target.shape)}")
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=self.pad_id,
                               label_smoothing=self.label_smoothing)


class AdditiveAttention(nn.Module):
    """Bahdanau attention: ``score_j = v^T tanh(W s + U h_j)``, weights ``softmax(score)`` over the source
    positions j (padding gets weight 0), context ``sum_j weight_j h_j``.

    Example:
        >>> attn = AdditiveAttention(query_dim=32, key_dim=64, hidden=32)
        >>> keys = torch.randn(2, 7, 64)
        >>> context, weights = attn(torch.randn(2, 32), keys, attn.project(keys))
        >>> context.shape, weights.shape
        (torch.Size([2, 64]), torch.Size([2, 7]))
    """

    def __init__(self, query_dim: int, key_dim: int, hidden: int):
        super().__init__()
        self.query = nn.Linear(query_dim, hidden, bias=False)  # W
        self.key = nn.Linear(key_dim, hidden)  # U (computed once per sentence: project)
        self.v = nn.Linear(hidden, 1, bias=False)

    def project(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, projected: torch.Tensor,
                pad_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.v(torch.tanh(self.query(query)[:, None] + projected)).squeeze(-1)  # (N, S)
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        return (weights[:, :, None] * keys).sum(dim=1), weights


class GRUTranslator(nn.Module):
    """Encoder-decoder with additive attention (Bahdanau et al. 2015).

    The encoder reads the source both ways (a bidirectional GRU, padding packed away, so it never changes the
    result); at each target step the decoder attends over the encoder states with its previous state, then
    updates its GRU state from the previous word and the context. After a forward pass,
    ``self.cross_attention`` holds the weights (N, T, S): row t is where the decoder looked to write word t.

    Example:
        >>> model = GRUTranslator(src_vocab=33, tgt_vocab=30)
        >>> model(torch.tensor([[5, 6, 3]]), torch.tensor([[2, 7, 8]])).shape
        torch.Size([1, 3, 30])
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, *, emb: int = 64, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.src_embed = nn.Embedding(src_vocab, emb, padding_idx=PAD_ID)
        self.encoder = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)  # both final encoder states -> the decoder's first state
        self.tgt_embed = nn.Embedding(tgt_vocab, emb, padding_idx=PAD_ID)
        self.attention = AdditiveAttention(hidden, 2 * hidden, hidden)
        self.cell = nn.GRUCell(emb + 2 * hidden, hidden)
        self.out = nn.Linear(hidden + 2 * hidden + emb, tgt_vocab)  # from state, context and previous word
        self.dropout = nn.Dropout(dropout)
        self.cross_attention: torch.Tensor | None = None

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(encoder states (N, S, 2H), their projection for attention, padding mask (N, S), first state (N, H))."""
        _check_ids(src, self.src_vocab, "src")
        mask = src == PAD_ID
        lengths = (~mask).sum(1).cpu()
        packed = pack_padded_sequence(self.dropout(self.src_embed(src)), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, h = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        first = torch.tanh(self.bridge(torch.cat([h[0], h[1]], dim=1)))
        return out, self.attention.project(out), mask, first

    def start(self, memory: tuple[torch.Tensor, ...]) -> State:
        return memory[3]

    def step(self, memory: tuple[torch.Tensor, ...], tokens: torch.Tensor,
             state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """Logits (N, V) of the next word after ``tokens`` (N, t), the new state and the attention (N, S)."""
        keys, projected, mask, _ = memory
        context, weights = self.attention(state, keys, projected, mask)
        word = self.dropout(self.tgt_embed(tokens[:, -1]))
        state = self.cell(torch.cat([word, context], dim=1), state)
        logits = self.out(self.dropout(torch.cat([state, context, word], dim=1)))
        return logits, state, weights

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        _check_ids(tgt_in, self.tgt_vocab, "tgt_in")
        memory = self.encode(src)
        state = self.start(memory)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):  # teacher forcing: the true previous word at every step
            step_logits, state, w = self.step(memory, tgt_in[:, : t + 1], state)
            logits.append(step_logits)
            weights.append(w)
        self.cross_attention = torch.stack(weights, dim=1).detach()
        return torch.stack(logits, dim=1)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention of queries ``x`` (N, T, D) over ``memory`` (N, S, D) in several heads.

    ``mask`` (broadcastable to (N, T, S)) is True where attention is not allowed (padding, the future): those
    weights are exactly 0. After each forward ``self.attention`` holds the weights (N, heads, T, S), detached.
    Self-attention is ``attn(x, x, mask)``; cross-attention ``attn(x, encoder_states, pad_mask)``.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.q, self.kv = nn.Linear(d_model, d_model), nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n, t, d = x.shape
        k, v = self.kv(memory).split(d, dim=2)
        q, k, v = (z.view(n, -1, self.num_heads, self.d_head).transpose(1, 2) for z in (self.q(x), k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (N, heads, T, S)
        if mask is not None:
            scores = scores.masked_fill(mask[:, None], torch.finfo(scores.dtype).min)
        att = scores.softmax(dim=-1)
        self.attention = att.detach()
        return self.proj((self.dropout(att) @ v).transpose(1, 2).reshape(n, t, d))


class DecoderBlock(nn.Module):
    """Pre-LN decoder block: causal self-attention, cross-attention over the encoder states, then an MLP,
    each added back to its input (as :class:`~dfl_toolkit.models.transformer.EncoderBlock`)."""

    def __init__(self, d_model: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.1):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, causal: torch.Tensor,
                pad_mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn(h, h, causal))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory, pad_mask[:, None, :]))
        return x + self.dropout(self.mlp(self.norm3(x)))


def sinusoids(length: int, d_model: int) -> torch.Tensor:
    """The fixed position encodings of Vaswani et al. 2017: sin and cos at geometrically spaced frequencies."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10_000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


class TransformerTranslator(nn.Module):
    """Transformer encoder-decoder (Vaswani et al. 2017), small and pre-LN, with sinusoidal positions.

    The encoder is ``num_layers`` toolkit :class:`~dfl_toolkit.models.transformer.EncoderBlock` (their
    self-attention is in ``encoder[i].attn.attention``); each :class:`DecoderBlock` keeps its cross-attention in
    ``decoder[i].cross_attn.attention`` (N, heads, T, S). ``self.cross_attention`` is the last layer's, averaged
    over heads (N, T, S).

    Example:
        >>> model = TransformerTranslator(src_vocab=33, tgt_vocab=30)
        >>> model(torch.tensor([[5, 6, 3]]), torch.tensor([[2, 7, 8]])).shape
        torch.Size([1, 3, 30])
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, *, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 2, dropout: float = 0.1, max_len: int = 64):
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.max_len, self.scale = src_vocab, tgt_vocab, max_len, math.sqrt(d_model)
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=PAD_ID)
        self.register_buffer("positions", sinusoids(max_len, d_model), persistent=False)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, num_heads, dropout=dropout) for _ in range(num_layers))
        self.decoder = nn.ModuleList(DecoderBlock(d_model, num_heads, dropout=dropout) for _ in range(num_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, tgt_vocab)
        self.dropout = nn.Dropout(dropout)
        self.cross_attention: torch.Tensor | None = None

    def _embed(self, embed: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > self.max_len:
            raise UsageError(f"sequence length {ids.shape[1]} is over max_len={self.max_len}; build the model "
                             f"with a larger max_len")
        return self.dropout(embed(ids) * self.scale + self.positions[: ids.shape[1]])

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoder states (N, S, D), padding mask (N, S))."""
        _check_ids(src, self.src_vocab, "src")
        mask = src == PAD_ID
        h = self._embed(self.src_embed, src)
        for block in self.encoder:
            h = block(h, mask)
        return self.enc_norm(h), mask

    def decode_all(self, memory: tuple[torch.Tensor, torch.Tensor], tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, V) at every target position at once (each sees only the words before it)."""
        states, pad_mask = memory
        t = tgt_in.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).triu(1)[None]  # True above the diagonal
        h = self._embed(self.tgt_embed, tgt_in)
        for block in self.decoder:
            h = block(h, states, causal, pad_mask)
        self.cross_attention = self.decoder[-1].cross_attn.attention.mean(dim=1)
        return self.out(self.dec_norm(h))

    def start(self, memory: tuple[torch.Tensor, torch.Tensor]) -> State:
        return None

    def step(self, memory: tuple[torch.Tensor, torch.Tensor], tokens: torch.Tensor,
             state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """Logits (N, V) of the next word after ``tokens`` (N, t) (the prefix is re-read: no cache, to keep it
        short), no state, and the last layer's cross-attention (N, S)."""
        logits = self.decode_all(memory, tokens)[:, -1]
        return logits, None, self.cross_attention[:, -1]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        _check_ids(tgt_in, self.tgt_vocab, "tgt_in")
        return self.decode_all(self.encode(src), tgt_in)


# What notebook 16 and benchmarks/translation.py train with ``fit`` (batch 64, cosine schedule, grad_clip=1.0).
RECIPES: dict[str, dict[str, Any]] = {
    "gru": {"epochs": 6, "lr": 2e-3, "options": {"emb": 64, "hidden": 128, "dropout": 0.1}},
    "transformer": {"epochs": 16, "lr": 5e-3, "options": {"d_model": 64, "num_heads": 4, "num_layers": 2,
                                                          "dropout": 0.0}},
}


def make_translator(kind: str, data: Any, *, seed: int = 0, **options: Any) -> nn.Module:
    """A ``"gru"`` or ``"transformer"`` translator sized for ``data``'s vocabularies, its weights seeded from
    ``seed``; ``options`` override :data:`RECIPES`' sizes.

    Example:
        >>> model = make_translator("gru", get_dataset("number_words"), seed=1)
    """
    if kind not in RECIPES:
        raise UnknownNameError("translator", kind, RECIPES)
    seed_everything(seed)
    sizes = (len(data.info["src_vocab"]), len(data.info["tgt_vocab"]))
    cls = GRUTranslator if kind == "gru" else TransformerTranslator
    return cls(*sizes, **(RECIPES[kind]["options"] | options))


def _select(obj: State, idx: torch.Tensor) -> State:
    """Rows ``idx`` of every tensor in ``obj`` (a tensor, a tuple of them, or None)."""
    if obj is None:
        return None
    if isinstance(obj, tuple):
        return tuple(_select(o, idx) for o in obj)
    return obj.index_select(0, idx)


@dataclass
class Decoded:
    """What :func:`decode` returns: the words' ids (``<eos>`` left out) and their score under the model.

    ``log_prob`` (N,) is the sum of the chosen words' log-probabilities (``<eos>`` included); ``score`` is
    ``log_prob / length ** length_penalty``, the number beam search maximises.
    """

    tokens: list[list[int]]
    log_prob: torch.Tensor
    score: torch.Tensor


def _check_decode_args(model: nn.Module, beam_size: object, length_penalty: object) -> None:
    if not all(hasattr(model, m) for m in ("encode", "start", "step")):
        raise UsageError(f"decode takes a model with encode, start and step (GRUTranslator, TransformerTranslator); "
                         f"got {type(model).__name__}")
    if not isinstance(beam_size, int) or isinstance(beam_size, bool) or beam_size < 1:
        raise UsageError(f"beam_size must be an int >= 1 (1 is greedy decoding), got {beam_size!r}")
    if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool) or length_penalty < 0:
        raise UsageError(f"length_penalty must be a number >= 0 (0: raw log-probability, 1: per word), "
                         f"got {length_penalty!r}")


def _finish(tokens: torch.Tensor, log_prob: torch.Tensor, length: torch.Tensor, alpha: float) -> Decoded:
    words = []
    for row in tokens.tolist():
        cut = row.index(EOS_ID) if EOS_ID in row else len(row)
        words.append(row[:cut])
    return Decoded(words, log_prob, log_prob / length.clamp(min=1).to(log_prob.dtype) ** alpha)


def greedy(model: nn.Module, src: torch.Tensor, *, max_len: int | None = None,
           length_penalty: float = 1.0) -> Decoded:
    """Greedy decoding: at every step the most probable next word, until ``<eos>`` (or ``max_len`` words)."""
    _check_decode_args(model, 1, length_penalty)
    max_len = max_len or 2 * src.shape[1] + 2
    with eval_mode(model), torch.no_grad():
        memory = model.encode(src)
        state = model.start(memory)
        n = src.shape[0]
        tokens = torch.full((n, 1), BOS_ID, dtype=torch.int64, device=src.device)
        log_prob = torch.zeros(n, device=src.device)
        length = torch.zeros(n, dtype=torch.int64, device=src.device)
        done = torch.zeros(n, dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits, state, _ = model.step(memory, tokens, state)
            lp = logits.log_softmax(dim=-1)
            best = lp.argmax(dim=-1)
            log_prob += torch.where(done, 0.0, lp.gather(1, best[:, None]).squeeze(1))
            length += (~done).long()
            best = best.masked_fill(done, PAD_ID)
            tokens = torch.cat([tokens, best[:, None]], dim=1)
            done |= best == EOS_ID
            if done.all():
                break
    return _finish(tokens[:, 1:], log_prob, length, length_penalty)


def beam_search(model: nn.Module, src: torch.Tensor, beam_size: int, *, max_len: int | None = None,
                length_penalty: float = 1.0) -> Decoded:
    """Plain beam search: keep the ``beam_size`` most probable prefixes of every sentence at each step; a
    prefix that wrote ``<eos>`` stays in the beam with its score frozen. The final pick is the highest
    ``log_prob / length ** length_penalty``. :func:`decode` is what to call: it also never does worse than greedy.
    """
    _check_decode_args(model, beam_size, length_penalty)
    max_len = max_len or 2 * src.shape[1] + 2
    n, k = src.shape[0], beam_size
    with eval_mode(model), torch.no_grad():
        rows = torch.arange(n, device=src.device).repeat_interleave(k)  # beam b of sentence i is row i * k + b
        memory = _select(model.encode(src), rows)
        state = model.start(memory)
        tokens = torch.full((n * k, 1), BOS_ID, dtype=torch.int64, device=src.device)
        log_prob = torch.full((n, k), -math.inf, device=src.device)
        log_prob[:, 0] = 0.0  # one live beam at the start, so the first step does not pick k copies of it
        length = torch.zeros(n, k, dtype=torch.int64, device=src.device)
        done = torch.zeros(n, k, dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits, state, _ = model.step(memory, tokens, state)
            lp = logits.log_softmax(dim=-1).view(n, k, -1)
            vocab = lp.shape[-1]
            frozen = torch.full_like(lp[0, 0], -math.inf)
            frozen[PAD_ID] = 0.0  # a finished hypothesis continues with padding only, at no cost
            lp = torch.where(done[..., None], frozen, lp)
            best, idx = (log_prob[..., None] + lp).view(n, k * vocab).topk(k, dim=1)
            origin, word = idx // vocab, idx % vocab
            flat = (torch.arange(n, device=src.device)[:, None] * k + origin).view(-1)
            tokens = torch.cat([tokens[flat], word.view(-1, 1)], dim=1)
            state = _select(state, flat)
            was_done = done.gather(1, origin)
            length = length.gather(1, origin) + (~was_done).long()
            done = was_done | (word == EOS_ID)
            log_prob = best
            if done.all():
                break
        score = log_prob / length.clamp(min=1).to(log_prob.dtype) ** length_penalty
        pick = score.argmax(dim=1)
        chosen = torch.arange(n, device=src.device) * k + pick
        return _finish(tokens[chosen, 1:], log_prob.gather(1, pick[:, None]).squeeze(1),
                       length.gather(1, pick[:, None]).squeeze(1), length_penalty)


def decode(model: nn.Module, src: torch.Tensor, *, beam_size: int = 1, max_len: int | None = None,
           length_penalty: float = 1.0) -> Decoded:
    """Translate a batch of source ids (N, S): greedy for ``beam_size=1``, else beam search.

    Hypotheses are ranked by ``log_prob / length ** length_penalty`` (1: the mean log-probability per word, so
    short outputs are not favoured just for being short; 0: the raw sum). Beam search keeps greedy's hypothesis
    as a candidate, so its score is never below greedy's: the pruning of plain beam search can lose a path whose
    prefix looked worse.

    Example:
        >>> out = decode(model, src, beam_size=4)
        >>> [tgt_vocab.decode(t) for t in out.tokens][:2], out.score[:2]
    """
    _check_decode_args(model, beam_size, length_penalty)
    _check_ids(src, getattr(model, "src_vocab", int(src.max()) + 1), "src")
    first = greedy(model, src, max_len=max_len, length_penalty=length_penalty)
    if beam_size == 1:
        return first
    beam = beam_search(model, src, beam_size, max_len=max_len, length_penalty=length_penalty)
    take = first.score > beam.score
    return Decoded([g if t else b for g, b, t in zip(first.tokens, beam.tokens, take.tolist(), strict=True)],
                   torch.where(take, first.log_prob, beam.log_prob), torch.where(take, first.score, beam.score))


def sequence_log_prob(model: nn.Module, src: torch.Tensor, tokens: Sequence[Sequence[int]]) -> torch.Tensor:
    """The model's log-probability (N,) of given target word ids (``<eos>`` appended), by teacher forcing:
    the number :func:`decode` reports as ``log_prob``, computed independently to check it."""
    tgt = [list(t) + [EOS_ID] for t in tokens]
    tgt_in = pad_batch([[BOS_ID] + t[:-1] for t in tgt])
    tgt_out = pad_batch(tgt)
    with eval_mode(model), torch.no_grad():
        lp = model(src, tgt_in.to(src.device)).log_softmax(dim=-1)
    picked = lp.gather(2, tgt_out[..., None].to(src.device)).squeeze(-1)
    return (picked * (tgt_out != PAD_ID).to(picked.device)).sum(dim=1)


def translate(model: nn.Module, texts: Sequence[str], src_vocab: PairVocab, tgt_vocab: PairVocab, *,
              beam_size: int = 1, length_penalty: float = 1.0) -> list[str]:
    """Translate sentences (space-separated words); a word the source vocabulary lacks raises naming it.

    Example:
        >>> translate(model, ["ninety seven", "seventy one"], data.info["src_vocab"], data.info["tgt_vocab"])
        ['quatre vingt dix sept', 'soixante et onze']
    """
    if isinstance(texts, str):
        raise UsageError("translate takes a list of sentences; wrap one sentence in a list: [text]")
    src = pad_batch([src_vocab.encode(t) for t in texts]).to(next(model.parameters()).device)
    out = decode(model, src, beam_size=beam_size, length_penalty=length_penalty)
    return [tgt_vocab.decode(t) for t in out.tokens]


def translate_dataset(model: nn.Module, data: PairDataset, tgt_vocab: PairVocab, *, beam_size: int = 1,
                      length_penalty: float = 1.0, batch_size: int = 500) -> list[str]:
    """Translations of every source sentence of a :class:`~dfl_toolkit.data.pairs.PairDataset`, in order."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(data), batch_size):
        src = data.src[i: i + batch_size].to(device)
        src = src[:, : int((src != PAD_ID).sum(1).max())]  # drop all-padding columns: same result, less work
        out += [tgt_vocab.decode(t) for t in decode(model, src, beam_size=beam_size,
                                                    length_penalty=length_penalty).tokens]
    return out


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) from sacreBLEU, and the fraction of exact translations.

    Example:
        >>> bleu_chrf(["vingt et un"], ["vingt et un"])
        {'bleu': 100.0, 'chrf': 100.0, 'exact': 1.0}
    """
    import sacrebleu

    if isinstance(hypotheses, str) or isinstance(references, str) or len(hypotheses) != len(references):
        raise UsageError("bleu_chrf takes two lists of sentences of the same length (hypotheses, references)")
    if not hypotheses:
        raise UsageError("bleu_chrf: no sentences to score")
    exact = sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(references)
    return {"bleu": sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score,
            "chrf": sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score, "exact": exact}


def evaluate_translation(model: nn.Module, data: PairDataset, tgt_vocab: PairVocab, *, beam_size: int = 1,
                         length_penalty: float = 1.0) -> dict[str, float]:
    """BLEU, chrF and exact-match rate of ``model``'s translations of ``data`` against its references.

    Example:
        >>> evaluate_translation(model, data.test, data.info["tgt_vocab"], beam_size=4)
        {'bleu': 97.1, 'chrf': 98.9, 'exact': 0.93}
    """
    hyps = translate_dataset(model, data, tgt_vocab, beam_size=beam_size, length_penalty=length_penalty)
    return bleu_chrf(hyps, data.targets)


def cross_attention(model: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """Cross-attention weights (N, T, S) with teacher forcing: row t is where the model looks in the source to
    write target word t (a transformer's last layer, averaged over its heads)."""
    with eval_mode(model), torch.no_grad():
        model(src, tgt_in)
    return model.cross_attention.clone()


def alignment_scores(weights: torch.Tensor, src_words: int, tgt_words: int) -> dict[str, float]:
    """How diagonal one attention matrix (T, S) is, over the real words only (``<eos>`` rows and columns left
    out, rows renormalised):

    - ``monotonicity``: the fraction of consecutive target words whose most-attended source word does not move
      backwards (1.0: a monotone alignment, as when word order is shared);
    - ``chance``: the same fraction for source words picked at random, ``(S + 1) / (2 S)``;
    - ``diagonal_mass``: the mean attention within one word of the diagonal stretched to the two lengths.

    Example:
        >>> alignment_scores(torch.eye(4), 3, 3)
        {'monotonicity': 1.0, 'chance': 0.6666666666666666, 'diagonal_mass': 1.0}
    """
    if weights.dim() != 2 or src_words < 1 or tgt_words < 1 or weights.shape[0] < tgt_words \
            or weights.shape[1] < src_words:
        raise ShapeError(f"alignment_scores takes one (T, S) matrix with T >= tgt_words, S >= src_words; got "
                         f"{tuple(weights.shape)}, src_words={src_words}, tgt_words={tgt_words}")
    w = weights[:tgt_words, :src_words].float()
    w = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
    peaks = w.argmax(dim=1)
    mono = (peaks[1:] >= peaks[:-1]).float().mean().item() if tgt_words > 1 else 1.0
    rows = torch.arange(tgt_words, dtype=torch.float32)[:, None]
    cols = torch.arange(src_words, dtype=torch.float32)[None]
    diag = rows * (src_words - 1) / max(tgt_words - 1, 1)  # where row t would look on a straight diagonal
    mass = (w * ((cols - diag).abs() <= 1.0)).sum(dim=1).mean().item()
    return {"monotonicity": mono, "chance": (src_words + 1) / (2 * src_words), "diagonal_mass": mass}


def _first_pairs_attention(model: nn.Module, data: PairDataset, n: int) -> torch.Tensor:
    """:func:`cross_attention` of the first ``n`` pairs of ``data`` with teacher forcing, on the CPU."""
    device = next(model.parameters()).device
    return cross_attention(model, data.src[:n].to(device), data.tgt_in[:n].to(device)).cpu()


def alignment_report(model: nn.Module, data: PairDataset, n: int = 200) -> dict[str, float]:
    """:func:`alignment_scores` averaged over the first ``n`` pairs of ``data`` (pairs of one word skipped)."""
    weights = _first_pairs_attention(model, data, n)
    scores = []
    for i in range(min(n, len(data))):
        s, t = len(data.sources[i].split()), len(data.targets[i].split())
        if s > 1 and t > 1:
            scores.append(alignment_scores(weights[i], s, t))
    if not scores:
        raise UsageError("alignment_report needs pairs of at least two words on each side")
    return {k: sum(sc[k] for sc in scores) / len(scores) for k in scores[0]} | {"pairs": len(scores)}


def alignment_explorer(model: nn.Module, data: PairDataset, n: int = 20, *, static: bool | None = None) -> Any:
    """Browse the cross-attention of the first ``n`` pairs of ``data`` as alignments (teacher forcing), each with
    its monotonicity: a slider in a notebook, the first pair's Figure elsewhere.

    Look for a diagonal where the languages share word order, and for where it bends (French "quatre vingt dix
    sept" for "ninety seven"; German units before tens).

    Example:
        >>> alignment_explorer(model, data.test, n=20)
    """
    from ..widgets import _explore

    _int_option("n", n, 1)
    n = min(n, len(data))
    weights = _first_pairs_attention(model, data, n)

    def render(pair: int) -> Any:
        src, tgt = data.sources[pair].split(), data.targets[pair].split()
        title = f"{data.sources[pair]} -> {data.targets[pair]}"
        if len(src) > 1 and len(tgt) > 1:
            title += f"\nmonotonicity {alignment_scores(weights[pair], len(src), len(tgt))['monotonicity']:.2f}"
        return plot_alignment(weights[pair], src, tgt, title=title)

    return _explore(render, {"pair": range(n)}, static)


def plot_alignment(weights: torch.Tensor, src_words: Sequence[str], tgt_words: Sequence[str], *,
                   ax: Any = None, title: str | None = None) -> Any:
    """Draw one attention matrix as an alignment: source words across, target words down (``<eos>`` added
    where the matrix has room for it). Returns the Figure.

    Example:
        >>> w = cross_attention(model, src[:1], tgt_in[:1])[0]
        >>> plot_alignment(w, "ninety seven".split(), "quatre vingt dix sept".split())
    """
    import matplotlib.pyplot as plt

    src = list(src_words) + ["<eos>"]
    tgt = list(tgt_words) + ["<eos>"]
    t, s = min(len(tgt), weights.shape[0]), min(len(src), weights.shape[1])
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * s + 1.6, 0.45 * t + 1.2))
    ax.imshow(weights[:t, :s].cpu().numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(s), src[:s], rotation=60, ha="right")
    ax.set_yticks(range(t), tgt[:t])
    ax.set_xlabel("source (English)")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure
