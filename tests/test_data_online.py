"""The download path of MNIST, Fashion-MNIST and CIFAR-10, exercised on small files the tests write
in the same on-disk formats, served from 127.0.0.1 (never a real remote host)."""

import functools
import gzip
import hashlib
import http.server
import io
import socket
import struct
import tarfile
import threading
import time

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

import dfl_toolkit as dfl
from dfl_toolkit import network
from dfl_toolkit.data import online

N_TRAIN, N_TEST = 100, 20


def idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x803, len(images), 28, 28) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()


def tiny_mnist(seed: int) -> dict[str, bytes]:
    """Raw idx files (as torchvision stores them) with labels 0..9 repeated, and pixel (0,0) = label * 10."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        images[:, 0, 0] = labels * 10
        files[f"{prefix}-images-idx3-ubyte"] = idx_images(images)
        files[f"{prefix}-labels-idx1-ubyte"] = idx_labels(labels)
    return files


def tiny_cifar_batches() -> dict[str, bytes]:
    """CIFAR-10 binary batches: label byte + 3x32x32 pixels; red channel of pixel (0,0) = label * 20."""
    rng = np.random.default_rng(0)
    files = {}
    for name, n in [(f"data_batch_{i}.bin", 20) for i in range(1, 6)] + [("test_batch.bin", N_TEST)]:
        labels = np.arange(n) % 10
        pixels = rng.integers(0, 256, (n, 3, 32, 32))
        pixels[:, 0, 0, 0] = labels * 20
        records = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1).astype(np.uint8)
        files[name] = records.tobytes()
    return files


def check_loaded(data, n_val):
    assert (len(data.train), len(data.val), len(data.test)) == (N_TRAIN - n_val, n_val, N_TEST)
    raw = dfl.get_dataset(data.name, normalize=False)
    for part in ("train", "test"):
        for x, y in getattr(raw, part):
            assert round(x[0, 0, 0].item() * 255) == int(y) * (20 if data.name == "cifar10" else 10)


@pytest.mark.parametrize("cls_name,name", [("MNIST", "mnist"), ("FashionMNIST", "fashion_mnist")])
def test_mnist_files_on_disk_load_without_network(tmp_data_dir, monkeypatch, cls_name, name):
    raw = tmp_data_dir / cls_name / "raw"
    raw.mkdir(parents=True)
    for fname, blob in tiny_mnist(1).items():
        (raw / fname).write_bytes(blob)
    monkeypatch.setenv("DFL_OFFLINE", "1")  # proves no download is attempted
    data = dfl.get_dataset(name)
    check_loaded(data, 10)
    assert data.input_shape == (1, 28, 28) and len(data.classes) == 10
    if name == "fashion_mnist":
        assert data.classes[0] == "T-shirt/top"


def test_cifar10_binary_files_on_disk_load_without_network(tmp_data_dir, monkeypatch):
    folder = tmp_data_dir / online.CIFAR10_DIR
    folder.mkdir()
    for fname, blob in tiny_cifar_batches().items():
        (folder / fname).write_bytes(blob)
    monkeypatch.setenv("DFL_OFFLINE", "1")
    data = dfl.get_dataset("cifar10")
    check_loaded(data, 10)
    assert data.input_shape == (3, 32, 32) and data.classes[3] == "cat" and len(data.mean) == 3
    x, _ = data.train[0]
    assert x.shape == (3, 32, 32) and data.denormalize(x).shape == (3, 32, 32)


def test_damaged_cifar_file_says_what_to_do(tmp_data_dir, monkeypatch):
    folder = tmp_data_dir / online.CIFAR10_DIR
    folder.mkdir()
    for fname, blob in tiny_cifar_batches().items():
        (folder / fname).write_bytes(blob[:-7])
    monkeypatch.setenv("DFL_OFFLINE", "1")
    with pytest.raises(dfl.DatasetUnavailableError, match="not a CIFAR-10 binary batch.*delete"):
        dfl.get_dataset("cifar10")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_offline_flag_fails_at_once_naming_offline_datasets(tmp_data_dir, monkeypatch, name):
    monkeypatch.setenv("DFL_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(dfl.DatasetUnavailableError) as err:
        dfl.get_dataset(name)
    assert time.perf_counter() - t0 < 2
    msg = str(err.value)
    assert f"cannot download {name!r}" in msg and "mnist5k, digits, mnist1d" in msg and "DFL_DATA_DIR" in msg


@pytest.fixture
def hanging_server():
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


def test_unanswering_host_times_out_quickly(tmp_data_dir, monkeypatch, hanging_server):
    monkeypatch.setattr(tvd.MNIST, "mirrors", [hanging_server])
    monkeypatch.setenv("DFL_NETWORK_TIMEOUT", "1")
    t0 = time.perf_counter()
    with pytest.raises(dfl.DatasetUnavailableError, match="timed out|no answer"):
        dfl.get_dataset("mnist")
    assert time.perf_counter() - t0 < 5


def test_default_timeout_stays_within_ten_seconds(monkeypatch):
    monkeypatch.delenv("DFL_NETWORK_TIMEOUT", raising=False)
    assert network.network_timeout() + 0.5 <= 10


def test_refused_connection_fails_fast(tmp_data_dir, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setattr(online, "CIFAR10_URL", f"http://127.0.0.1:{port}/cifar.tar.gz")
    t0 = time.perf_counter()
    with pytest.raises(dfl.DatasetUnavailableError, match="refused"):
        dfl.get_dataset("cifar10")
    assert time.perf_counter() - t0 < 5


@pytest.fixture
def file_server(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1; yields (folder, base_url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_mnist_download_path_end_to_end(tmp_data_dir, monkeypatch, file_server):
    folder, url = file_server
    resources = []
    for fname, blob in tiny_mnist(2).items():
        gz = gzip.compress(blob)
        (folder / f"{fname}.gz").write_bytes(gz)
        resources.append((f"{fname}.gz", hashlib.md5(gz).hexdigest()))
    monkeypatch.setattr(tvd.MNIST, "mirrors", [url])
    monkeypatch.setattr(tvd.MNIST, "resources", resources)
    data = dfl.get_dataset("mnist")
    check_loaded(data, 10)
    assert (tmp_data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_cifar10_download_path_end_to_end(tmp_data_dir, monkeypatch, file_server):
    folder, url = file_server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for fname, blob in tiny_cifar_batches().items():
            info = tarfile.TarInfo(f"{online.CIFAR10_DIR}/{fname}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    (folder / "cifar-10-binary.tar.gz").write_bytes(buf.getvalue())
    monkeypatch.setattr(online, "CIFAR10_URL", url + "cifar-10-binary.tar.gz")
    monkeypatch.setattr(online, "CIFAR10_MD5", hashlib.md5(buf.getvalue()).hexdigest())
    data = dfl.get_dataset("cifar10")
    check_loaded(data, 10)
    assert not (tmp_data_dir / "cifar-10-binary.tar.gz").exists()  # archive removed after extraction


def test_wrong_checksum_is_reported(tmp_data_dir, monkeypatch, file_server):
    folder, url = file_server
    (folder / "cifar-10-binary.tar.gz").write_bytes(b"corrupted download")
    monkeypatch.setattr(online, "CIFAR10_URL", url + "cifar-10-binary.tar.gz")
    with pytest.raises(dfl.DatasetUnavailableError, match="download failed"):
        dfl.get_dataset("cifar10")
    assert torch.__version__  # the process is still healthy
