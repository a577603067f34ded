"""The training loop: learning, repeatability, checkpoint/resume, early stopping, divergence, errors."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import dfl_toolkit as dfl


@pytest.fixture(scope="module")
def digits():
    return dfl.get_dataset("digits")


def small_cnn():
    dfl.seed_everything(0)
    return dfl.ConvNet(1, 10, channels=(8, 16), hidden=32)


def train_digits(digits, **kw):
    model = small_cnn()
    tr, va, _ = digits.loaders(64, seed=1)
    kw.setdefault("epochs", 3)
    kw.setdefault("lr", 3e-3)
    return model, dfl.fit(model, tr, va, progress=False, device="cpu", **kw)


def test_fit_learns_and_records_every_epoch(digits):
    model, h = train_digits(digits, epochs=4)
    assert len(h) == 4 and h["epoch"] == [1, 2, 3, 4]
    assert set(h.last) == {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time"}
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_acc"][-1] > 0.8  # chance is 0.1
    test = dfl.evaluate(model, digits.test)
    logits, y = dfl.predict(model, digits.test, return_targets=True)
    assert logits.shape == (360, 10)
    assert (logits.argmax(1) == y).sum().item() / len(y) == pytest.approx(test["acc"], abs=1e-12)
    assert not h.diverged and not h.stopped_early and h.best_epoch is not None


def test_same_seed_same_history_twice(digits):
    m1, h1 = train_digits(digits, epochs=2)
    m2, h2 = train_digits(digits, epochs=2)
    assert h1.metrics() == h2.metrics()
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, h3 = train_digits(digits, epochs=2, seed=7)
    assert h3.metrics() != h1.metrics()


class StopAfter(Exception):
    pass


def test_checkpoint_resume_equals_uninterrupted_run(digits, tmp_path):
    full_model, full = train_digits(digits, epochs=4, scheduler="cosine", checkpoint=tmp_path / "full.pt")

    def crash_at_3(history):
        if len(history) == 3:
            raise StopAfter  # like a kill during epoch 3: only epochs 1-2 are in the checkpoint

    path = tmp_path / "killed.pt"
    with pytest.raises(StopAfter):
        train_digits(digits, epochs=4, scheduler="cosine", checkpoint=path, callbacks=[crash_at_3])
    assert dfl.load_checkpoint(path)["epoch"] == 2
    resumed_model, resumed = train_digits(digits, epochs=4, scheduler="cosine", checkpoint=path)
    assert resumed.metrics() == full.metrics()
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    # a finished run resumes to the same state at once
    again_model, again = train_digits(digits, epochs=4, scheduler="cosine", checkpoint=path)
    assert again.metrics() == full.metrics()
    # resume=False starts over
    _, fresh = train_digits(digits, epochs=1, checkpoint=path, resume=False)
    assert len(fresh) == 1


def test_early_stopping_restores_best_weights():
    # random labels: the model can only memorise, so val loss rises after the first epochs
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 1, 8, 8, generator=g), torch.randint(0, 10, (256,), generator=g)
    xv, yv = torch.randn(128, 1, 8, 8, generator=g), torch.randint(0, 10, (128,), generator=g)
    model = small_cnn()
    h = dfl.fit(model, TensorDataset(x, y), TensorDataset(xv, yv), epochs=40, lr=1e-2, early_stopping=2,
                progress=False)
    assert h.stopped_early and len(h) < 40
    assert h.best_epoch == 1 + h["val_loss"].index(min(h["val_loss"]))
    assert dfl.evaluate(model, TensorDataset(xv, yv))["loss"] == pytest.approx(min(h["val_loss"]), rel=1e-5)


def test_divergence_is_recorded_not_raised():
    x = torch.randn(64, 4)
    y = (x.sum(1, keepdim=True) * 1e3)
    model = nn.Linear(4, 1)
    h = dfl.fit(model, TensorDataset(x, y), epochs=20, lr=1e3, optimizer="sgd", progress=False)
    assert h.diverged and len(h) < 20
    assert "acc" not in "".join(h.last)  # regression: no accuracy


def test_regression_uses_mse_and_plots_one_panel():
    data = dfl.get_dataset("sunspots", window=8)
    dfl.seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    h = dfl.fit(model, data.train, data.val, epochs=5, lr=1e-2, progress=False)
    assert "train_acc" not in h.last and h["val_loss"][-1] < h["val_loss"][0]
    fig = h.plot(title="sunspots")
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "loss"


def test_history_plot_round_trip_and_errors(digits):
    _, h = train_digits(digits, epochs=2)
    fig = h.plot()
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    assert len(fig.axes[0].lines) >= 2  # train and val curves
    assert dfl.History.from_dict(h.to_dict()).metrics() == h.metrics()
    with pytest.raises(KeyError, match="available: epoch, lr, time, train_acc"):
        h["val_accuracy"]
    assert "2 epochs" in repr(h)


def test_bad_arguments_get_clear_errors(digits):
    model = small_cnn()
    tr = digits.train
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        dfl.fit(model, tr, epochs=0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        dfl.fit(model, tr, lr=-1)
    with pytest.raises(dfl.UnknownNameError, match="accepted: a torch.optim.Optimizer, adam, adamw, sgd"):
        dfl.fit(model, tr, optimizer="rmsprop")
    with pytest.raises(dfl.UnknownNameError, match="unknown monitor"):
        dfl.fit(model, tr, monitor="accuracy")
    with pytest.raises(ValueError, match="needs val data"):
        dfl.fit(model, tr, early_stopping=3)
    with pytest.raises(dfl.UnknownNameError, match="unknown scheduler 'step'"):
        dfl.fit(model, tr, scheduler="step")
    with pytest.raises(TypeError, match="pass data.train"):
        dfl.fit(model, digits)
    with pytest.raises(ValueError, match="the data is empty"):
        dfl.evaluate(model, DataLoader(TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0).long())))


def test_bad_checkpoints_get_clear_errors(digits, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x00garbage")
    with pytest.raises(dfl.CheckpointError, match="cannot be read.*resume=False"):
        train_digits(digits, epochs=1, checkpoint=broken)
    other = tmp_path / "other.pt"
    tr, va, _ = digits.loaders(64, seed=1)
    dfl.fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), tr, va, epochs=1, lr=3e-3, device="cpu", progress=False,
            checkpoint=other)  # the same settings as train_digits, another model
    with pytest.raises(dfl.CheckpointError, match="different model"):
        train_digits(digits, epochs=1, checkpoint=other)
    foreign = tmp_path / "foreign.pt"
    dfl.save_checkpoint({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(dfl.CheckpointError, match="not a training run checkpoint"):
        train_digits(digits, epochs=1, checkpoint=foreign)


class Payload:
    pass


def test_checkpoints_never_unpickle_arbitrary_objects(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, evil)
    with pytest.raises(dfl.CheckpointError, match="cannot be read"):
        dfl.load_checkpoint(evil)


def test_cosine_schedule_steps_every_batch(digits):
    _, h = train_digits(digits, epochs=2, lr=0.1, scheduler="cosine")
    assert h["lr"][0] == pytest.approx(0.1) and h["lr"][1] == pytest.approx(0.05, rel=1e-6)


@pytest.fixture
def notebook_bars(monkeypatch):
    """fit's progress bars as JupyterLab draws them (tqdm.notebook), recorded so their final style can be read."""
    import tqdm.auto
    import tqdm.notebook

    bars = []

    class Recorded(tqdm.notebook.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorded)
    return bars


def _style(bar):
    return bar.container.children[1].bar_style


def test_a_finished_fit_ends_with_a_full_green_bar_not_a_red_one(digits, notebook_bars, tmp_path):
    tr, va, _ = digits.loaders(64, seed=1)
    dfl.fit(small_cnn(), tr, va, epochs=3, device="cpu")
    dfl.fit(small_cnn(), tr, va, epochs=3, device="cpu", checkpoint=tmp_path / "c.pt",
            callbacks=[lambda h: len(h) == 2 or None])  # stopped by a callback after 2 epochs: a normal end
    (full, stopped) = notebook_bars
    assert (full.n, full.total, _style(full)) == (3, 3, "success")
    assert stopped.n == stopped.total == 2 and _style(stopped) == "success" and "stopped" in stopped.desc


def test_a_diverged_fit_ends_with_a_red_bar(notebook_bars):
    x = torch.randn(64, 4)
    dfl.fit(nn.Linear(4, 1), TensorDataset(x, x.sum(1, keepdim=True) * 1e3), epochs=20, lr=1e3, optimizer="sgd")
    assert _style(notebook_bars[0]) == "danger" and "diverged" in notebook_bars[0].desc


class _TwoInputs(Dataset):
    """(source, target-in) pairs: the model sees both, like a translation model under teacher forcing."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.a, self.b = torch.randn(96, 4, generator=g), torch.randn(96, 4, generator=g)
        self.y = ((self.a - self.b).sum(1) > 0).long()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return (self.a[i], self.b[i]), self.y[i]


class _Difference(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 2)

    def forward(self, a, b):
        return self.net(a - b)


def test_fit_evaluate_predict_take_models_with_several_inputs():
    data = _TwoInputs()
    dfl.seed_everything(0)
    model = _Difference()
    h = dfl.fit(model, data, data, epochs=15, lr=5e-2, progress=False)
    assert h["val_acc"][-1] > 0.9
    assert dfl.evaluate(model, data)["acc"] == h["val_acc"][-1]
    logits, y = dfl.predict(model, data, return_targets=True)
    assert logits.shape == (96, 2) and torch.equal(y, data.y)


def test_a_model_returning_a_tuple_trains_with_its_own_loss():
    class Both(nn.Module):  # e.g. a VAE: reconstruction and a penalty, combined by the loss
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            out = self.lin(x)
            return out, out.pow(2).mean()

    class Loss(nn.Module):
        def forward(self, out, y):
            return nn.functional.mse_loss(out[0], y) + 0.01 * out[1]

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    dfl.seed_everything(0)
    h = dfl.fit(Both(), TensorDataset(x, x), TensorDataset(x, x), epochs=20, lr=5e-2, loss_fn=Loss(), progress=False)
    assert h["val_loss"][-1] < h["val_loss"][0] / 2 and "val_acc" not in h.last
