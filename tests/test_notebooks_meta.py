"""Notebooks are product: each has a Colab badge to itself, imports the package, stores no errors,
and is listed in the README."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPO = re.search(r'Repository = "https://github.com/([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_structure(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    first = "".join(cells[0]["source"])
    assert f"colab.research.google.com/github/{REPO}/blob/main/notebooks/{path.name}" in first
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert any("import dfl_toolkit" in c for c in code)
    for c in cells:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name} stores an error output"
    assert any("What to notice" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert path.name in (ROOT / "README.md").read_text()
