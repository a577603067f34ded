"""What sequence models compute inside: RNN states at every layer and step, transformer attention.

- :func:`rnn_states`: hidden (and LSTM cell) states of *every* layer at *every* time step.
  ``nn.LSTM`` only returns the top layer's per-step outputs and the last step's (h, c), so the
  layers are re-run one step at a time with their own weights (``nn.LSTMCell`` / ``nn.GRUCell``).
- :func:`attention_maps` and :func:`token_states`: per-layer attention weights and token vectors
  of :class:`~dfl_toolkit.models.TransformerClassifier`.
- :func:`attention_rollout`: how much each output position draws on each input token through all
  layers (Abnar & Zuidema 2020).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from ..errors import UnknownNameError
from ..models.rnn import CharRNN, SequenceRNN, TextRNN
from ..models.transformer import MultiHeadSelfAttention, TransformerClassifier
from ..runtime import eval_mode

RNN_MODULES = (nn.LSTM, nn.GRU, nn.RNN)
RNN_MODELS = (SequenceRNN, TextRNN, CharRNN)
HEAD_FUSIONS = ("mean", "max", "min")


def _rnn_and_input(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The recurrent module, its input as (N, T, features), and a mask (N, T) of real (non-pad) steps."""
    if isinstance(model, RNN_MODULES):
        if x.dim() != 3 or x.shape[-1] != model.input_size or not x.is_floating_point():
            order = "(N, T, features)" if model.batch_first else "(T, N, features)"
            raise ValueError(f"{type(model).__name__}(batch_first={model.batch_first}) takes a float tensor {order} "
                             f"with features={model.input_size}; got shape {tuple(x.shape)}, dtype {x.dtype}")
        seq = x if model.batch_first else x.transpose(0, 1)
        return model, seq, torch.ones(seq.shape[:2], dtype=torch.bool, device=x.device)
    if isinstance(model, SequenceRNN):
        if x.dim() != 3 or x.shape[-1] != model.input_size:
            raise ValueError(f"SequenceRNN takes (N, T, {model.input_size}) sequences, got shape {tuple(x.shape)}")
        return model.rnn, x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if isinstance(model, (TextRNN, CharRNN)):
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"{type(model).__name__} takes token ids: an integer tensor (N, T); "
                             f"got shape {tuple(x.shape)}, dtype {x.dtype}")
        mask = x != model.pad_id if isinstance(model, TextRNN) else torch.ones_like(x, dtype=torch.bool)
        return model.rnn, model.embed(x), mask
    accepted = ", ".join(t.__name__ for t in RNN_MODULES + RNN_MODELS)
    raise TypeError(f"rnn_states takes one of {accepted}; got {type(model).__name__}")


def _run_layer(rnn: nn.Module, layer: int, x: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run one layer (one direction) of ``rnn`` over x (N, T, in) step by step; returns h (and c) as (N, T, H)."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    is_lstm = isinstance(rnn, nn.LSTM)
    if is_lstm:
        cell = nn.LSTMCell(x.shape[-1], rnn.hidden_size, bias=rnn.bias, device="meta")
    elif isinstance(rnn, nn.GRU):
        cell = nn.GRUCell(x.shape[-1], rnn.hidden_size, bias=rnn.bias, device="meta")
    else:
        cell = nn.RNNCell(x.shape[-1], rnn.hidden_size, bias=rnn.bias, nonlinearity=rnn.nonlinearity, device="meta")
    # the cell has the same parameter layout as one layer of the full module: run it with those weights
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    weights = {name: getattr(rnn, name + suffix) for name in names}
    n, t = x.shape[:2]
    h = x.new_zeros(n, rnn.hidden_size)
    c = x.new_zeros(n, rnn.hidden_size)
    hs, cs = [None] * t, [None] * t
    for step in (reversed(range(t)) if reverse else range(t)):
        if is_lstm:
            h, c = functional_call(cell, weights, (x[:, step], (h, c)))
        else:
            h = functional_call(cell, weights, (x[:, step], h))
        hs[step], cs[step] = h, c
    return torch.stack(hs, dim=1), (torch.stack(cs, dim=1) if is_lstm else None)


def rnn_states(model: nn.Module, x: torch.Tensor, *, detach: bool = True) -> dict[str, object]:
    """Hidden states of every layer at every time step of an RNN (and cell states for an LSTM).

    Accepts ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` (any ``num_layers``, bidirectional too) with their
    usual input, or the toolkit's :class:`SequenceRNN` (x: (N, T, features)), :class:`TextRNN` and
    :class:`CharRNN` (x: token ids (N, T)). States start at zero, as in the module's own forward.

    Returns ``{"h": [per layer (N, T, H)], "c": [...] (LSTM only), "mask": (N, T)}``, always batch
    first; a bidirectional layer gives (N, T, 2H), forward then backward, as ``nn.LSTM``'s output.
    ``h[-1]`` equals the module's own output. ``mask`` is False at a TextRNN's padding, whose
    states should be ignored. Dropout between layers is not applied (states as in eval mode);
    ``detach=False`` keeps the graph, e.g. to measure how much ``h[t]`` depends on ``x[0]``.

    Example:
        >>> lstm = nn.LSTM(1, 16, num_layers=2, batch_first=True)
        >>> states = rnn_states(lstm, torch.randn(4, 30, 1))
        >>> [h.shape for h in states["h"]], len(states["c"])
        ([torch.Size([4, 30, 16]), torch.Size([4, 30, 16])], 2)
    """
    with torch.set_grad_enabled(not detach):
        rnn, inp, mask = _rnn_and_input(model, x)
        if getattr(rnn, "proj_size", 0):
            raise ValueError("rnn_states does not support LSTMs with proj_size > 0")
        hs, cs = [], []
        for layer in range(rnn.num_layers):
            runs = [_run_layer(rnn, layer, inp, reverse=False)]
            if rnn.bidirectional:
                runs.append(_run_layer(rnn, layer, inp, reverse=True))
            h = torch.cat([r[0] for r in runs], dim=-1)
            hs.append(h)
            if isinstance(rnn, nn.LSTM):
                cs.append(torch.cat([r[1] for r in runs], dim=-1))
            inp = h  # the next layer reads this layer's states
    out: dict[str, object] = {"h": hs, "mask": mask}
    if isinstance(rnn, nn.LSTM):
        out["c"] = cs
    return out


def _attention_layers(model: nn.Module) -> list[MultiHeadSelfAttention]:
    layers = [m for m in model.modules() if isinstance(m, MultiHeadSelfAttention)]
    if not layers:
        raise TypeError(f"attention_maps needs a model built from dfl_toolkit's MultiHeadSelfAttention "
                        f"(e.g. TransformerClassifier); {type(model).__name__} has none. torch's "
                        f"nn.TransformerEncoderLayer does not return its attention weights.")
    return layers


def attention_maps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Attention weights of every layer for input ``x``: a list of (N, heads, T, T), first layer first.

    Entry [n, h, i, j] is how much position i attends to position j in head h; each row sums to 1
    and padding keys get exactly 0. Runs one forward pass in eval mode (no dropout) without gradients.

    Example:
        >>> maps = attention_maps(model, x)          # model: a TransformerClassifier
        >>> len(maps), maps[0].shape                 # layers, (N, heads, T, T)
    """
    layers = _attention_layers(model)
    with torch.no_grad(), eval_mode(model):
        model(x)
    return [m.attention for m in layers]


def token_states(model: TransformerClassifier, x: torch.Tensor) -> list[torch.Tensor]:
    """Every token's vector after the embeddings and after each block: ``num_layers + 1`` tensors (N, T, d_model).

    Entry 0 is token + position embedding; entry i is block i's output (before the final LayerNorm).
    Use them to probe what each layer knows, as with CNN features. Eval mode, no gradients.

    Example:
        >>> states = token_states(model, x)
        >>> len(states), states[-1].shape            # num_layers + 1, (N, T, d_model)
    """
    if not isinstance(model, TransformerClassifier):
        raise TypeError(f"token_states takes a dfl_toolkit TransformerClassifier; got {type(model).__name__} "
                        f"(for other models, use extract_features with module names)")
    with torch.no_grad(), eval_mode(model):
        states, _ = model.encode(x)
    return states


def attention_rollout(attentions: Sequence[torch.Tensor], add_residual: bool = True,
                      head_fusion: str = "mean") -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each position's final state draws on each input token.

    Per layer: fuse the heads (``"mean"`` as in the paper, or ``"max"`` / ``"min"``), add the identity
    for the residual connection and renormalise the rows, i.e. A' = (A + I) / 2 when rows sum to 1;
    then multiply the layers: A'_L ... A'_2 A'_1. Returns (N, T, T), rows summing to 1; for a
    mean-pooled classifier, average the rows of the real tokens to see what the prediction draws on.
    Rollout ignores the values and the MLPs: it is a rough picture of information flow, not an attribution.

    Example:
        >>> rollout = attention_rollout(attention_maps(model, x))
        >>> rollout.shape                            # (N, T, T)
    """
    if isinstance(attentions, torch.Tensor) or not attentions:
        raise TypeError("attention_rollout takes a non-empty list of per-layer attentions (N, heads, T, T), "
                        "e.g. attention_maps(model, x); wrap a single layer in a list")
    if head_fusion not in HEAD_FUSIONS:
        raise UnknownNameError("head_fusion", head_fusion, HEAD_FUSIONS)
    shape = attentions[0].shape
    for a in attentions:
        if a.dim() != 4 or a.shape[-1] != a.shape[-2] or a.shape[0] != shape[0] or a.shape[-1] != shape[-1]:
            raise ValueError(f"every attention must be (N, heads, T, T) with the same N and T; "
                             f"got shapes {[tuple(t.shape) for t in attentions]}")
    rollout = None
    for a in attentions:
        fused = {"mean": torch.mean, "max": torch.amax, "min": torch.amin}[head_fusion](a, dim=1)
        if add_residual:
            fused = fused + torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
        fused = fused / fused.sum(dim=-1, keepdim=True)
        rollout = fused if rollout is None else fused @ rollout
    return rollout
