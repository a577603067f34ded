import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def tmp_data_dir(tmp_path, monkeypatch):
    """An empty data folder, so a test never reads or writes the user's data/."""
    monkeypatch.setenv("DFL_DATA_DIR", str(tmp_path))
    return tmp_path
