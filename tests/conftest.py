import os

# Under pytest-xdist (make test: two workers on two cores) each worker, and each notebook kernel it starts, computes
# on one thread: two processes of two threads each on two cores wait on each other (torch's OpenMP spins) and run
# several times slower. Alone, tests use two threads.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the kernels nbval and the kernel tests start

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1 if WORKERS > 1 else 2)


@pytest.fixture
def tmp_data_dir(tmp_path, monkeypatch):
    """An empty data folder, so a test never reads or writes the user's data/."""
    monkeypatch.setenv("DFL_DATA_DIR", str(tmp_path))
    return tmp_path
