"""Every offline loader: shapes, labels, fixed splits, normalisation, options and bad inputs."""

import numpy as np
import pytest
import torch

import dfl_toolkit as dfl
from dfl_toolkit.errors import UsageError

IMAGE_SETS = {"mnist5k": (1, 28, 28), "digits": (1, 8, 8), "mnist1d": (1, 40)}
OFFLINE = ["mnist5k", "digits", "mnist1d", "sunspots", "co2", "rotten_tomatoes", "dependency", "mnist_scenes",
           "number_words"]


def stack(ds):
    xs, ys = zip(*[ds[i] for i in range(len(ds))], strict=True)
    return torch.stack(xs), torch.stack(ys)


def test_registry_lists_offline_and_online():
    assert [d.name for d in dfl.list_datasets(offline=True)] == OFFLINE
    assert [d.name for d in dfl.list_datasets(offline=False)] == ["mnist", "fashion_mnist", "cifar10"]
    assert all(d.description for d in dfl.list_datasets())


@pytest.mark.parametrize("name", OFFLINE)
def test_sizes_shapes_and_labels_match_the_registry(name):
    info = {d.name: d for d in dfl.list_datasets()}[name]
    data = dfl.get_dataset(name)
    assert (len(data.train), len(data.val), len(data.test)) == info.sizes
    assert data.input_shape == info.input_shape
    x, y = data.train[0]
    if info.task == "translation":  # ((source ids, decoder input ids), decoder target ids)
        x = x[0]
    tokens = name in ("rotten_tomatoes", "dependency", "number_words")  # padded token ids, not measurements
    assert tuple(x.shape) == info.input_shape and x.dtype == (torch.int64 if tokens else torch.float32)
    if info.task == "classification":
        _, ys = stack(data.test)
        if not tokens:
            assert data.classes == [str(i) for i in range(10)]
        assert ys.dtype == torch.int64 and set(ys.tolist()) == set(range(len(data.classes)))
    elif info.task == "detection":  # rows (class, x1, y1, x2, y2), class -1 pads
        assert data.classes == [str(i) for i in range(10)] and y.dtype == torch.float32 and y.shape[-1] == 5
    elif info.task == "translation":
        assert y.dtype == torch.int64 and y.dim() == 1
    else:
        assert data.classes is None and y.dtype == torch.float32 and y.shape == (1,)


@pytest.mark.parametrize("name", sorted(IMAGE_SETS))
def test_image_splits_are_fixed_disjoint_and_stratified(name):
    a, b = dfl.get_dataset(name), dfl.get_dataset(name)
    for part in ("train", "val", "test"):
        assert np.array_equal(a.info["indices"][part], b.info["indices"][part])
        xa, ya = stack(getattr(a, part))
        xb, yb = stack(getattr(b, part))
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    idx = [set(a.info["indices"][p].tolist()) for p in ("train", "val", "test")]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    _, y_train = stack(a.train)
    counts = torch.bincount(y_train, minlength=10).float()
    assert counts.max() / counts.min() < 1.5  # every class present in similar numbers


@pytest.mark.parametrize("name", sorted(IMAGE_SETS))
def test_normalisation_uses_train_stats_and_denormalize_inverts(name):
    data = dfl.get_dataset(name)
    x, _ = stack(data.train)
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-2
    raw = dfl.get_dataset(name, normalize=False)
    xr, _ = stack(raw.test)
    xt, _ = stack(data.test)
    assert torch.allclose(data.denormalize(xt), xr, atol=1e-5)
    assert torch.allclose(data.denormalize(data.test[0][0]), raw.test[0][0], atol=1e-5)
    if name != "mnist1d":  # pixels are scaled to [0, 1]; MNIST-1D is a signal
        assert 0.0 <= xr.min() and xr.max() <= 1.0


def test_train_size_takes_a_stratified_subset_and_checks_its_range():
    data = dfl.get_dataset("mnist5k", train_size=500)
    _, y = stack(data.train)
    assert len(data.train) == 500 and torch.bincount(y).tolist() == [50] * 10
    assert len(data.test) == 1000  # val and test never shrink
    tiny = dfl.get_dataset("digits", train_size=5)
    assert len(tiny.train) == 5
    for bad in (0, 3501, 2.5):
        with pytest.raises(UsageError, match=r"train_size must be an int in 1\.\.3500"):  # one line in the CLI
            dfl.get_dataset("mnist5k", train_size=bad)


def test_unused_to_val_moves_the_left_out_train_images_into_val():
    base = dfl.get_dataset("mnist5k", train_size=2000)
    data = dfl.get_dataset("mnist5k", train_size=2000, unused_to_val=True)
    idx, ref = data.info["indices"], base.info["indices"]
    assert len(data.train) == 2000 and len(data.val) == 2000 and len(data.test) == 1000
    assert (idx["train"] == ref["train"]).all() and (idx["test"] == ref["test"]).all()
    assert (idx["val"][:500] == ref["val"]).all()          # the original val images come first
    full = dfl.get_dataset("mnist5k").info["indices"]
    assert sorted(set(idx["val"][500:]) | set(idx["train"])) == sorted(full["train"])
    _, y = stack(data.val)
    assert torch.bincount(y).tolist() == [200] * 10        # still stratified
    with pytest.raises(dfl.DFLError, match="unused_to_val.*train_size"):  # no train_size: nothing to move
        dfl.get_dataset("mnist5k", unused_to_val=True)


def test_augment_changes_train_samples_only():
    data = dfl.get_dataset("mnist5k", augment=True)
    torch.manual_seed(0)
    first = data.train[0][0]
    assert not torch.equal(first, data.train[0][0])
    assert torch.equal(data.val[0][0], data.val[0][0])
    with pytest.raises(dfl.UnknownNameError, match="'augment'; accepted: normalize, train_size"):
        dfl.get_dataset("mnist1d", augment=True)


@pytest.mark.parametrize("name", ["sunspots", "co2"])
def test_time_series_windows_are_chronological_and_consistent(name):
    data = dfl.get_dataset(name, window=10, horizon=1)
    series, time = data.info["series"], data.info["time"]
    starts = data.info["split_starts"]
    assert starts[0] < starts[1] < starts[2]
    x, y = stack(data.train)
    assert x.shape[1:] == (10, 1) and y.shape[1:] == (1,)
    # each target is the next window's last input, and in real units it is the raw series
    assert torch.allclose(y[:-1, 0], x[1:, -1, 0])
    assert np.allclose(data.denormalize(y[:, 0]).numpy(), series[10:10 + len(y)], atol=1e-3)
    train_part = series[: len(data.train) + 10]
    assert np.isclose(data.mean[0], train_part.mean()) and np.isclose(data.std[0], train_part.std())
    assert len(time) == len(series) and not np.isnan(series).any()


def test_time_series_bad_windows():
    with pytest.raises(ValueError, match="window must be a positive int"):
        dfl.get_dataset("sunspots", window=0)
    with pytest.raises(ValueError, match="window \\+ horizon must be at most 77"):
        dfl.get_dataset("sunspots", window=100)


def test_loaders_batch_and_shuffle_reproducibly():
    data = dfl.get_dataset("digits")
    tr1, va, te = data.loaders(batch_size=32, seed=5)
    tr2, _, _ = data.loaders(batch_size=32, seed=5)
    x1, y1 = next(iter(tr1))
    x2, y2 = next(iter(tr2))
    assert x1.shape == (32, 1, 8, 8) and torch.equal(y1, y2)
    assert next(iter(va))[0].shape[0] == 64
    x3, y3 = next(iter(dfl.get_loaders("digits", batch_size=32, seed=6)[0]))
    assert not torch.equal(y1, y3)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        data.loaders(batch_size=0)


def test_unknown_names_and_options_list_what_is_accepted():
    with pytest.raises(dfl.UnknownNameError) as err:
        dfl.get_dataset("imagenet")
    assert "unknown dataset 'imagenet'" in str(err.value)
    assert "mnist5k" in str(err.value) and "cifar10" in str(err.value)
    with pytest.raises(dfl.UnknownNameError, match="accepted: augment, image_size, normalize, train_size"):
        dfl.get_dataset("digits", window=5)
    assert dfl.dataset_options("sunspots") == {"window": 20, "horizon": 1, "normalize": True}


def test_photos_are_rgb_uint8():
    names = dfl.list_photos()
    assert {"chelsea", "coffee", "astronaut", "grace_hopper", "china", "camera"} <= set(names)
    for name in names:
        img = dfl.load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 200
        assert img.std() > 10  # a real picture, not a blank
    with pytest.raises(dfl.UnknownNameError, match="unknown photo 'dog'; accepted: astronaut"):
        dfl.load_photo("dog")


def test_damaged_cache_is_rebuilt(tmp_data_dir):
    (tmp_data_dir / "mnist1d.npz").write_bytes(b"not a zip file")
    data = dfl.get_dataset("mnist1d")
    assert len(data.test) == 1000
    with np.load(tmp_data_dir / "mnist1d.npz", allow_pickle=False) as f:
        assert f["x"].shape == (4000, 40)


def test_image_size_resizes_images_for_other_models():
    small = dfl.get_dataset("mnist5k", image_size=14)
    assert small.input_shape == (1, 14, 14) and small.train[0][0].shape == (1, 14, 14)
    big = dfl.get_dataset("digits", image_size=28, normalize=False)
    x, _ = stack(big.test)
    assert x.shape[1:] == (1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    # shrinking by 2 averages 2x2 blocks
    raw = dfl.get_dataset("mnist5k", normalize=False)
    half = dfl.get_dataset("mnist5k", normalize=False, image_size=14)
    assert torch.allclose(half.test[0][0], torch.nn.functional.avg_pool2d(raw.test[0][0][None], 2)[0], atol=1e-6)
    with pytest.raises(UsageError, match="image_size must be an int in 4..512"):
        dfl.get_dataset("digits", image_size=2)
