"""A small transformer encoder in plain PyTorch, written to be read (and to show its attention).

``nn.TransformerEncoderLayer`` hides its attention weights (it calls attention with
``need_weights=False``), so this module spells attention out: every :class:`MultiHeadSelfAttention`
keeps its last weights in ``.attention``, which :func:`dfl_toolkit.features.attention_maps`
collects. The blocks are pre-LN (Xiong et al. 2020), as in GPT-2 and ViT: they train stably
without a learning-rate warm-up.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention: every position mixes the values of all positions,
    weighted by softmax(Q K^T / sqrt(d_head)) in each head.

    ``key_padding_mask`` (N, T) is True at padding: no position attends to those keys (their
    weight is exactly 0). After each forward, ``self.attention`` holds the weights (N, heads, T, T)
    before dropout, detached; row i is how query position i spreads its attention (rows sum to 1).

    Example:
        >>> attn = MultiHeadSelfAttention(d_model=64, num_heads=4)
        >>> attn(torch.randn(2, 10, 64)).shape, attn.attention.shape
        (torch.Size([2, 10, 64]), torch.Size([2, 4, 10, 10]))
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # queries, keys and values of all heads in one matmul
        self.proj = nn.Linear(d_model, d_model)  # mixes the heads' outputs back together
        self.dropout = nn.Dropout(dropout)
        self.attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        # (N, T, D) -> (N, heads, T, d_head): each head attends in its own subspace
        q, k, v = (z.view(n, t, self.num_heads, self.d_head).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (N, heads, T, T)
        if key_padding_mask is not None:
            # the most negative float, not -inf: exp() of it is exactly 0, and an all-padding row stays finite
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], torch.finfo(scores.dtype).min)
        att = scores.softmax(dim=-1)
        self.attention = att.detach()
        out = self.dropout(att) @ v  # (N, heads, T, d_head)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    The MLP widens each token to ``mlp_ratio * d_model`` features with a GELU between its two layers.
    """

    def __init__(self, d_model: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, num_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict(
            fc1=nn.Linear(d_model, mlp_ratio * d_model), act=nn.GELU(), fc2=nn.Linear(mlp_ratio * d_model, d_model)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x), key_padding_mask))
        return x + self.dropout(self.mlp(self.norm2(x)))


class TransformerClassifier(nn.Module):
    """Transformer encoder for sequence classification: token + learned position embeddings,
    ``num_layers`` :class:`EncoderBlock`, a final LayerNorm, then the **mean over the non-pad
    tokens** (no CLS token) and a linear head.

    Takes right-padded token ids (N, T) with T <= ``max_len``; padding is masked in attention and
    left out of the mean, so padding added after a sentence never changes its output. For real-valued sequences
    (N, T, input_dim), pass ``vocab_size=None, input_dim=...``: a linear layer embeds each step
    and nothing is treated as padding.

    Example:
        >>> model = TransformerClassifier(vocab_size=10_000, num_classes=2, d_model=64, num_heads=4)
        >>> model(torch.randint(1, 10_000, (8, 48))).shape
        torch.Size([8, 2])
    """

    def __init__(self, vocab_size: int | None, num_classes: int, *, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 2, max_len: int = 128, pad_id: int = 0, dropout: float = 0.1,
                 input_dim: int | None = None):
        super().__init__()
        if (vocab_size is None) == (input_dim is None):
            raise ValueError("give either vocab_size (token ids) or input_dim (real-valued steps), not both or none")
        self.pad_id, self.max_len, self.input_dim = pad_id, max_len, input_dim
        self.embed = nn.Embedding(vocab_size, d_model) if vocab_size is not None else nn.Linear(input_dim, d_model)
        self.pos_embed = nn.Parameter(torch.randn(1, max_len, d_model) * 0.02)  # one learned vector per position
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, num_heads, dropout=dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Token states after the embeddings and after each block, each (N, T, d_model), and the
        padding mask (N, T) (True at padding; None for real-valued input)."""
        self._check_input(x)
        mask = (x == self.pad_id) if self.input_dim is None else None
        h = self.dropout(self.embed(x) + self.pos_embed[:, :x.shape[1]])
        states = [h]
        for block in self.blocks:
            h = block(h, mask)
            states.append(h)
        return states, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, mask = self.encode(x)
        h = self.norm(states[-1])
        if mask is None:
            pooled = h.mean(dim=1)
        else:  # mean over real tokens only
            keep = (~mask).unsqueeze(-1).to(h.dtype)
            pooled = (h * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)

    def _check_input(self, x: torch.Tensor) -> None:
        if self.input_dim is None:
            ok = x.dim() == 2 and not x.is_floating_point()
            want = "token ids: an integer tensor (N, T)"
        else:
            ok = x.dim() == 3 and x.shape[-1] == self.input_dim
            want = f"real-valued steps (N, T, {self.input_dim})"
        if not ok:
            raise ValueError(f"TransformerClassifier takes {want}; got shape {tuple(x.shape)}, dtype {x.dtype}")
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence length {x.shape[1]} is over max_len={self.max_len}; "
                             f"build the model with a larger max_len or shorten the input")
