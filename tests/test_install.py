"""The package works installed as a wheel (not editable), as `pip install "dfl_toolkit @ git+..."` installs it on
Colab: the wheel holds every module and the shipped tables, and they load from an install away from the checkout.

Offline: the wheel is built with the setuptools installed here (no build isolation, no index)."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from dfl_toolkit.errors import DFLError
from dfl_toolkit.nas import Benchmark
from dfl_toolkit.nas.benchmark import table

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dfl_toolkit"
TABLES = ("nb201_mnist14.json.gz", "nb201_digits.json.gz")

# Run in a fresh interpreter: no site (so no .pth file, and so not the editable install's finder, is read), only
# the wheel's install folder and this environment's site-packages on the path, the working folder outside the repo.
CHECK = textwrap.dedent("""
    import json, sys
    sys.path[:0] = sys.argv[1:]
    import dfl_toolkit as dfl
    from dfl_toolkit.nas import Benchmark
    bench = Benchmark.load()
    digits = Benchmark.load("nb201_digits")
    print(json.dumps({
        "package": dfl.__file__, "data_dir": str(dfl.data_dir()), "cells": len(bench), "digit_cells": len(digits),
        "query": bench.query(("nor_conv_3x3",) * 6)["test_acc"], "digits_train": len(dfl.get_dataset("digits").train),
    }))
""")


def pip(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the package (a build writes build/ and *.egg-info next to its sources)."""
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools here: pip install setuptools")
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "dfl_toolkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(dist), str(src), cwd=src)
    (path,) = dist.glob("dfl_toolkit-*.whl")
    return path


def test_wheel_holds_every_module_and_the_shipped_tables(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert {m for m in modules if m.endswith("/__init__.py")} > {"dfl_toolkit/__init__.py"}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    tables = {n for n in names if n.endswith(".json.gz")}
    assert {Path(t).name for t in tables} >= set(TABLES), f"shipped tables in the wheel: {sorted(tables)}"
    assert any(n.endswith("tables/README.md") for n in names), "the tables' README (their provenance) must ship too"


def test_installed_wheel_loads_its_tables_away_from_the_checkout(wheel, tmp_path):
    target, home = tmp_path / "site", tmp_path / "home"
    pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=tmp_path)
    (target / "data").mkdir()  # some packages install a top-level data/ folder: it is not the toolkit's
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DFL_", "PYTHON"))}
    env.update(HOME=str(home), MPLBACKEND="Agg", DFL_OFFLINE="1")
    site = [sysconfig.get_paths()[k] for k in ("purelib", "platlib")]
    out = subprocess.run([sys.executable, "-I", "-S", "-c", CHECK, str(target), *site], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(target), f"imported {found['package']}, not the installed wheel"
    assert not Path(found["data_dir"]).is_relative_to(ROOT), f"data_dir() is {found['data_dir']}, in the checkout"
    assert Path(found["data_dir"]) == home / ".cache" / "dfl_toolkit"
    assert found["cells"] == 6466 and found["digit_cells"] == 500 and 0.5 < found["query"] <= 1
    assert found["digits_train"] == 1257


def test_own_table_loads_by_path_or_by_name_in_the_data_folder(tmp_data_dir):
    own = tmp_data_dir / "my_table.json.gz"
    shutil.copy(table.TABLES / "nb201_digits.json.gz", own)
    assert len(Benchmark.load("my_table")) == len(Benchmark.load(own)) == len(Benchmark.load(str(own))) == 500


def test_missing_table_says_what_to_do(tmp_data_dir, monkeypatch):
    with pytest.raises(DFLError, match="no benchmark table 'nb201_mnist41'") as err:
        Benchmark.load("nb201_mnist41")
    assert "loaded by name: nb201_digits, nb201_mnist14" in str(err.value) and "benchmark build" in str(err.value)
    monkeypatch.setattr(table, "TABLES", tmp_data_dir / "empty")  # an install that lost its package data
    with pytest.raises(DFLError, match="reinstall dfl_toolkit"):
        Benchmark.load()
