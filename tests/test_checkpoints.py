"""One checkpoint policy for fit, search, DARTS and the benchmark build: atomic writes whose leftovers are
cleaned, the settings recorded and compared on resume (naming what differs), damaged files refused clearly."""

import json
import os
import signal
import subprocess
import sys

import pytest

import dfl_toolkit as dfl
from dfl_toolkit.checkpoint import write_json
from dfl_toolkit.errors import CheckpointError
from dfl_toolkit.nas import CellSpace, RandomSearch, search
from dfl_toolkit.nas.strategies.darts import darts_search


def score(arch, seed):
    return {"val_acc": arch.count("nor_conv_3x3") / 6, "cost": 1.0}


@pytest.fixture(scope="module")
def digits():
    return dfl.get_dataset("digits", train_size=200)


def test_fit_refuses_a_checkpoint_made_with_other_settings_and_names_them(digits, tmp_path):
    path = tmp_path / "fit.pt"
    dfl.fit(dfl.ConvNet(1, 10), digits.train, digits.val, epochs=1, lr=1e-3, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match=r"lr: saved 0\.001, now 0\.002.*resume=False"):
        dfl.fit(dfl.ConvNet(1, 10), digits.train, digits.val, epochs=1, lr=2e-3, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match=r"epochs: saved 1, now 2"):
        dfl.fit(dfl.ConvNet(1, 10), digits.train, digits.val, epochs=2, lr=1e-3, checkpoint=path, progress=False)
    dfl.fit(dfl.ConvNet(1, 10), digits.train, digits.val, epochs=2, lr=1e-3, checkpoint=path, resume=False,
            progress=False)


def test_darts_refuses_a_checkpoint_of_other_settings_and_can_start_over(digits, tmp_path):
    path = tmp_path / "darts.pt"
    kw = dict(epochs=1, channels=4, batch_size=32, progress=False, checkpoint=path)
    darts_search(digits, mode="darts", **kw)
    with pytest.raises(CheckpointError, match=r"mode: saved 'darts', now 'gdas'"):
        darts_search(digits, mode="gdas", **kw)
    with pytest.raises(CheckpointError, match=r"alpha_lr: saved 0\.0003, now 0\.001"):
        darts_search(digits, mode="darts", alpha_lr=1e-3, **kw)
    assert darts_search(digits, mode="gdas", resume=False, **kw).mode == "gdas"


@pytest.mark.parametrize("damage", [
    lambda t: t.update(result=None),
    lambda t: t.update(cost="slow"),
    lambda t: t.pop("arch"),
])
def test_a_damaged_trial_in_a_search_checkpoint_is_one_clear_error(tmp_path, damage):
    path = tmp_path / "search.json"
    search(CellSpace(), RandomSearch(), score, budget=3, checkpoint=path, progress=False)
    data = json.loads(path.read_text())
    damage(data["trials"][1])
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"damaged: trial entry 1"):
        search(CellSpace(), RandomSearch(), score, budget=3, checkpoint=path, progress=False)


def test_a_writer_killed_mid_write_leaves_no_temporary_file_after_the_next_write(tmp_path):
    path = tmp_path / "search.json"
    killed = ("import os, signal, sys\nfrom dfl_toolkit.checkpoint import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_text('half')\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    run = subprocess.run([sys.executable, "-c", killed, str(path)], timeout=60)
    assert run.returncode == -signal.SIGKILL
    assert len(list(tmp_path.iterdir())) == 1 and not path.exists()  # the killed writer's leftover
    write_json(path, {"ok": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["search.json"] and json.loads(path.read_text()) == {"ok": 1}


def test_a_search_killed_mid_checkpoint_write_resumes_and_cleans_up(tmp_path):
    path = tmp_path / "s.json"
    leftover = tmp_path / f"s.json.{2**22 + 12345}.abc.tmp.json"  # a dead writer's pid
    leftover.write_text("{")
    result = search(CellSpace(), RandomSearch(), score, budget=2, checkpoint=path, progress=False)
    assert len(result.trials) == 2 and not leftover.exists()
    live = tmp_path / f"s.json.{os.getppid()}.abc.tmp.json"  # a live process's: left alone
    live.write_text("{")
    search(CellSpace(), RandomSearch(), score, budget=3, checkpoint=path, progress=False)
    assert live.exists()
