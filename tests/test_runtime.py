import pytest
import torch

import dfl_toolkit as dfl


def test_quick_mode_reads_env(monkeypatch):
    monkeypatch.setenv("DFL_QUICK", "1")
    assert dfl.quick_mode() and dfl.by_mode(full=10, quick=2) == 2
    monkeypatch.setenv("DFL_QUICK", "0")
    assert not dfl.quick_mode() and dfl.by_mode(full=10, quick=2) == 10
    monkeypatch.delenv("DFL_QUICK")
    assert not dfl.quick_mode()


def test_device_choice(monkeypatch):
    assert dfl.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("DFL_DEVICE", "cpu")
    assert dfl.get_device() == torch.device("cpu")
    with pytest.raises(dfl.UnknownNameError, match="accepted: auto, cpu, cuda, cuda:N, mps"):
        dfl.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            dfl.get_device("cuda")


def test_seed_everything_repeats_and_rejects_bad_seeds():
    dfl.seed_everything(3)
    a = torch.randn(5)
    dfl.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            dfl.seed_everything(bad)


def test_data_dir_env_override(tmp_path, monkeypatch):
    target = tmp_path / "nested" / "data"
    monkeypatch.setenv("DFL_DATA_DIR", str(target))
    assert dfl.data_dir() == target and target.is_dir()


def test_torch_threads_sets_and_restores_the_count():
    torch_threads = dfl.torch_threads
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before  # restored after an error too
    with pytest.raises(ValueError, match="positive int or None"):
        with torch_threads(0):
            pass
