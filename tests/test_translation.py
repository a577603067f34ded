"""Machine translation: the number-words pairs, both encoder-decoders, greedy and beam search, BLEU and chrF,
and the alignment measures. Tiny models, one thread: the file runs in well under a minute."""

import pytest
import torch
from torch import nn
from torch.utils.data import Subset

import dfl_toolkit as dfl
from dfl_toolkit.applications import translation as mt
from dfl_toolkit.data import pairs
from dfl_toolkit.errors import ShapeError, UnknownNameError, UsageError


@pytest.fixture(scope="module")
def data():
    return dfl.get_dataset("number_words")


@pytest.fixture(autouse=True)
def one_thread():
    with dfl.torch_threads(1):
        yield


def tiny(kind: str, data, seed: int = 0) -> nn.Module:
    dfl.seed_everything(seed)
    sv, tv = len(data.info["src_vocab"]), len(data.info["tgt_vocab"])
    if kind == "gru":
        return mt.GRUTranslator(sv, tv, emb=16, hidden=32, dropout=0.0)
    return mt.TransformerTranslator(sv, tv, d_model=32, num_heads=2, num_layers=1, dropout=0.0)


def test_spellings_follow_the_rules():
    assert pairs.english_words(342) == "three hundred forty two"
    assert pairs.english_words(21_000) == "twenty one thousand"
    french = {0: "zéro", 17: "dix sept", 21: "vingt et un", 71: "soixante et onze", 80: "quatre vingts",
              81: "quatre vingt un", 97: "quatre vingt dix sept", 100: "cent", 200: "deux cents", 201: "deux cent un",
              1000: "mille", 80_000: "quatre vingt mille", 200_000: "deux cent mille", 21_000: "vingt et un mille"}
    assert {n: pairs.french_words(n) for n in french} == french
    assert pairs.german_words(342) == "drei hundert zwei und vierzig"
    assert pairs.german_words(101) == "hundert eins" and pairs.german_words(1_021) == "tausend ein und zwanzig"
    lengths = pairs.english_lengths()
    assert all(lengths[n] == len(pairs.english_words(n).split()) for n in (0, 7, 99, 100, 12_345, 999_999))
    with pytest.raises(UsageError, match="0 to 999,999"):
        pairs.french_words(1_000_000)


def test_the_dataset_is_fixed_disjoint_and_holds_longer_numbers_out(data):
    again = dfl.get_dataset("number_words")
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(data, part).src, getattr(again, part).src)
        assert torch.equal(getattr(data, part).tgt_out, getattr(again, part).tgt_out)
    numbers = {k: set(v.tolist()) for k, v in data.info["numbers"].items()}
    assert sum(len(v) for v in numbers.values()) == len(set().union(*numbers.values()))  # disjoint
    assert (len(data.train), len(data.val), len(data.test), len(data.info["test_long"])) == (3000, 300, 500, 500)
    lengths = pairs.english_lengths()
    short = max(lengths[list(numbers[p])].max() for p in ("train", "val", "test"))
    assert short == data.info["max_train_words"] < lengths[list(numbers["test_long"])].min()
    assert data.info["pairs"]["train"][0] == (pairs.english_words(int(data.info["numbers"]["train"][0])),
                                              pairs.french_words(int(data.info["numbers"]["train"][0])))
    german = dfl.get_dataset("number_words", target="de")
    assert german.info["numbers"]["test"].tolist() == data.info["numbers"]["test"].tolist()
    assert german.info["pairs"]["test"][0][1] == pairs.german_words(int(data.info["numbers"]["test"][0]))


def test_items_are_shifted_for_teacher_forcing(data):
    (src, tgt_in), tgt_out = data.train[5]
    n = int((tgt_out != 0).sum())
    assert tgt_in[0] == pairs.BOS_ID and tgt_out[n - 1] == pairs.EOS_ID
    assert torch.equal(tgt_in[1:n], tgt_out[: n - 1])
    sv, tv = data.info["src_vocab"], data.info["tgt_vocab"]
    assert sv.decode(src) == data.train.sources[5] and tv.decode(tgt_out) == data.train.targets[5]


def test_unknown_words_and_bad_options_get_one_clear_error(data):
    with pytest.raises(UnknownNameError, match="unknown English word 'fourty'; did you mean 'forty'"):
        data.info["src_vocab"].encode("fourty two")
    with pytest.raises(UnknownNameError, match="unknown target language 'es'.*accepted: de, fr"):
        dfl.get_dataset("number_words", target="es")
    with pytest.raises(UsageError, match="max_train_words must be an int >= 3"):
        dfl.get_dataset("number_words", max_train_words=2)
    model = tiny("gru", data)
    sv, tv = data.info["src_vocab"], data.info["tgt_vocab"]
    with pytest.raises(UnknownNameError, match="'fourty'"):
        mt.translate(model, ["fourty two"], sv, tv)
    src = data.test.src[:4]
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(UsageError, match="beam_size must be an int >= 1"):
            mt.decode(model, src, beam_size=bad)
    with pytest.raises(UsageError, match="length_penalty must be a number >= 0"):
        mt.decode(model, src, length_penalty=-1)
    with pytest.raises(ShapeError, match="src must be token ids"):
        mt.decode(model, src.float())
    with pytest.raises(UsageError, match=r"ids outside 0\.\.\d+ \(min 100"):
        mt.decode(model, src + 100)
    with pytest.raises(UsageError, match="must start with a real token"):
        mt.decode(model, torch.cat([torch.zeros(4, 1, dtype=torch.int64), src], dim=1))
    with pytest.raises(UsageError, match="list of sentences"):
        mt.translate(model, "twenty one", sv, tv)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_padding_changes_neither_the_outputs_nor_the_loss(data, kind):
    model = tiny(kind, data).eval()
    (src, tgt_in), tgt_out = next(iter(torch.utils.data.DataLoader(data.val, batch_size=16)))
    loss = mt.SequenceLoss()(model(src, tgt_in), tgt_out)
    pad = lambda x: torch.cat([x, torch.zeros(len(x), 5, dtype=x.dtype)], dim=1)  # noqa: E731
    padded = model(pad(src), pad(tgt_in))
    assert torch.allclose(mt.SequenceLoss()(padded, pad(tgt_out)), loss, atol=1e-6)
    assert torch.allclose(padded[:, : tgt_in.shape[1]], model(src, tgt_in), atol=1e-5)
    # the check can fail: a loss that counts padding does change
    plain = nn.CrossEntropyLoss()
    assert not torch.allclose(plain(padded.flatten(0, 1), pad(tgt_out).flatten()),
                              plain(model(src, tgt_in).flatten(0, 1), tgt_out.flatten()), atol=1e-3)


@pytest.mark.parametrize("kind, epochs", [("gru", 150), ("transformer", 150)])
def test_a_model_overfits_a_few_pairs_and_greedy_decoding_reproduces_them(data, kind, epochs):
    few = Subset(data.train, range(8))
    model = tiny(kind, data)
    history = dfl.fit(model, few, epochs=epochs, lr=1e-2, batch_size=8, loss_fn=mt.SequenceLoss(), progress=False)
    assert history.records[-1]["train_loss"] < 0.05
    sources = [data.train.sources[i] for i in range(8)]
    out = mt.translate(model, sources, data.info["src_vocab"], data.info["tgt_vocab"])
    assert out == [data.train.targets[i] for i in range(8)]


@pytest.fixture(scope="module")
def half_trained(data):
    """A model trained a little: unsure enough that beam search has something to find."""
    with dfl.torch_threads(1):
        model = tiny("gru", data)
        dfl.fit(model, Subset(data.train, range(300)), epochs=2, lr=1e-2, batch_size=32,
                loss_fn=mt.SequenceLoss(), progress=False)
    return model


def test_beam_size_one_is_greedy(data, half_trained):
    src = data.test.src[:60]
    for model in (half_trained, tiny("transformer", data)):
        greedy, beam = mt.greedy(model, src), mt.beam_search(model, src, beam_size=1)
        assert beam.tokens == greedy.tokens
        assert torch.allclose(beam.score, greedy.score, atol=1e-5)
        assert mt.decode(model, src, beam_size=1).tokens == greedy.tokens


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_beam_search_never_scores_below_greedy_and_reports_the_true_score(data, half_trained, penalty):
    src = data.test.src[:60]
    greedy = mt.decode(half_trained, src, beam_size=1, length_penalty=penalty)
    beam = mt.decode(half_trained, src, beam_size=4, length_penalty=penalty)
    assert (beam.score >= greedy.score - 1e-5).all()
    # the reported log-probability is the model's own, recomputed by teacher forcing
    assert torch.allclose(beam.log_prob, mt.sequence_log_prob(half_trained, src, beam.tokens), atol=1e-4)
    assert torch.allclose(greedy.log_prob, mt.sequence_log_prob(half_trained, src, greedy.tokens), atol=1e-4)
    # and beam search does find better hypotheses than greedy on some sentences (the test can fail)
    assert (beam.score > greedy.score + 1e-4).any()


def test_bleu_and_chrf_come_from_sacrebleu(data):
    refs = data.test.targets[:50]
    assert mt.bleu_chrf(refs, refs) == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0), "exact": 1.0}
    wrong = mt.bleu_chrf(refs[1:] + refs[:1], refs)
    assert wrong["bleu"] < 50 and wrong["chrf"] < 80 and wrong["exact"] < 0.1
    with pytest.raises(UsageError, match="same length"):
        mt.bleu_chrf(refs[:3], refs)


def test_alignment_scores_tell_diagonal_from_reordered():
    eye = mt.alignment_scores(torch.eye(5), 5, 5)
    assert eye["monotonicity"] == 1.0 and eye["diagonal_mass"] == pytest.approx(1.0)
    flipped = mt.alignment_scores(torch.eye(5).flip(1), 5, 5)
    assert flipped["monotonicity"] == 0.0 and flipped["diagonal_mass"] < 0.5
    # the <eos> row and column are left out and rows renormalised
    w = torch.zeros(4, 4)
    w[0, 0], w[1, 1], w[2, 2], w[3, 3] = 1.0, 0.5, 1.0, 1.0
    w[1, 3] = 0.5  # half of row 1 on <eos>
    assert mt.alignment_scores(w, 3, 3)["diagonal_mass"] == pytest.approx(1.0)
    with pytest.raises(ShapeError):
        mt.alignment_scores(torch.eye(3), 5, 3)


def test_cross_attention_rows_are_distributions_over_real_source_words(data):
    for kind in ("gru", "transformer"):
        model = tiny(kind, data)
        (src, tgt_in), _ = next(iter(torch.utils.data.DataLoader(data.val, batch_size=8)))
        w = mt.cross_attention(model, src, tgt_in)
        assert w.shape == (8, tgt_in.shape[1], src.shape[1])
        assert torch.allclose(w.sum(-1), torch.ones(8, tgt_in.shape[1]), atol=1e-5)
        assert (w.masked_select((src == 0)[:, None, :].expand_as(w)) == 0).all()
        assert mt.plot_alignment(w[0], data.val.sources[0].split(), data.val.targets[0].split()) is not None


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_alignment_explorer_browses_the_cross_attention_of_each_pair(data, kind):
    """Issue 26: the explorers work on these models, attention as alignment."""
    import ipywidgets as w
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    model = tiny(kind, data)
    fig = mt.alignment_explorer(model, data.test, n=5)  # outside a kernel: the first pair's figure
    assert isinstance(fig, Figure) and fig.axes[0].get_title().startswith(data.test.sources[0])
    box = mt.alignment_explorer(model, data.test, n=5, static=False)
    slider = box.children[0].children[0]
    assert isinstance(slider, w.IntSlider) and (slider.min, slider.max) == (0, 4)
    slider.value = 3  # redraws without an error
    with pytest.raises(UsageError, match="n must be"):
        mt.alignment_explorer(model, data.test, n=0)
    plt.close("all")
