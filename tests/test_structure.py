"""The structure that keeps each option with one owner and dependencies pointing one way, checked so that it
cannot quietly come back: one seed derivation, one registry per kind built from each class's name, spaces and
evaluators that declare what they offer, and imports that point from the loop to its parts, not back."""

import ast
import re
from pathlib import Path

import pytest

import dfl_toolkit as dfl

PACKAGE = Path(dfl.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Modules ``path`` imports, as absolute dotted names (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


def test_the_subpackages_are_reachable_from_the_top():
    assert dfl.nas.Benchmark and dfl.classroom.grade and dfl.viz.curves and dfl.widgets.search_runner
    assert dfl.features.extract_features is dfl.extract_features


def test_seeds_are_derived_in_one_place():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "runtime.py":
            assert not re.search(r"seed \* \d|seed\*\d", path.read_text()), f"{path} derives a seed by hand"


def test_each_registry_is_built_from_the_class_names_and_is_what_the_command_line_offers(capsys):
    from dfl_toolkit.__main__ import main
    from dfl_toolkit.nas.evaluators import EVALUATORS
    from dfl_toolkit.nas.spaces import SPACES
    from dfl_toolkit.nas.strategies import STRATEGIES

    for registry in (STRATEGIES, SPACES, EVALUATORS):
        assert all(name == cls.name for name, cls in registry.items())
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    usage = capsys.readouterr().out.replace("\n", "").replace(" ", "")
    for option, registry in (("--strategy", STRATEGIES), ("--space", SPACES), ("--evaluator", EVALUATORS)):
        assert f"[{option}{{{','.join(registry)}}}]" in usage
    assert EVALUATORS["table"].name == "table" and SPACES["nb201_cell"]().name == "nb201_cell"


def test_spaces_and_evaluators_declare_what_they_offer():
    from dfl_toolkit.nas.evaluators import EVALUATORS
    from dfl_toolkit.nas.spaces import SPACES

    for cls in SPACES.values():
        space = cls()
        assert isinstance(space.build_options, tuple) and set(space.input_ranks) <= {1, 2}
        for method in ("validate", "index", "from_index", "build"):
            assert callable(getattr(space, method))
    for cls in (EVALUATORS["train"], EVALUATORS["table"]):
        assert "val_acc" in cls.metrics
    assert not any("inspect" in imports_of(p) for p in (PACKAGE / "nas").rglob("*.py"))


@pytest.mark.parametrize("module, forbidden", [
    ("nas/benchmark/table.py", ("dfl_toolkit.nas.benchmark.build", "dfl_toolkit.nas.evaluators", "dfl_toolkit.train")),
    ("nas/search.py", ("dfl_toolkit.nas.strategies",)),
    ("nas/spaces/base.py", ("dfl_toolkit.nas.search", "dfl_toolkit.nas.strategies", "dfl_toolkit.nas.evaluators")),
    ("data/online.py", ("socket", "urllib.request")),
    ("features/backbones.py", ("socket", "urllib.request", "dfl_toolkit.data.online")),
])
def test_dependencies_point_one_way(module, forbidden):
    found = imports_of(PACKAGE / module)
    bad = sorted(name for name in found for f in forbidden if name == f or name.startswith(f + "."))
    assert not bad, f"{module} imports {bad}"


def test_the_applications_sit_on_top_of_the_toolkit_and_beside_each_other():
    """The core never imports an application, and an application imports no other (only the shared backbone)."""
    apps = PACKAGE / "applications"
    for path in PACKAGE.rglob("*.py"):
        found = {n for n in imports_of(path) if n.startswith("dfl_toolkit.applications")}
        if apps not in path.parents:
            assert not found, f"{path.relative_to(PACKAGE)} imports {sorted(found)}"
        else:
            allowed = {"dfl_toolkit.applications.backbone", "dfl_toolkit.applications.backbone.SceneBackbone",
                       "dfl_toolkit.applications.backbone.conv_block"}
            assert found <= allowed, f"{path.relative_to(PACKAGE)} imports {sorted(found - allowed)}"
    assert dfl.applications.detection.CenterNet and dfl.applications.translation.GRUTranslator


def test_the_imports_helper_can_fail():
    assert "dfl_toolkit.nas.spaces.cell" in imports_of(PACKAGE / "nas/benchmark/table.py")
    assert "dfl_toolkit.checkpoint" in imports_of(PACKAGE / "nas/search.py")


def test_a_search_refuses_an_objective_its_evaluator_does_not_declare_before_evaluating():
    from dfl_toolkit.errors import UnknownNameError
    from dfl_toolkit.nas import Benchmark, CellSpace, RandomSearch, TabularEvaluator, search

    ev = TabularEvaluator(Benchmark.load("nb201_digits"))
    with pytest.raises(UnknownNameError, match="objective for the table evaluator: 'accuracy'"):
        search(CellSpace(), RandomSearch(), ev, budget=2, objective="accuracy", progress=False)
