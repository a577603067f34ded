"""The README and the guides in docs/ cannot rot silently: links resolve, the dataset table is generated, the NAS
guide names every registered part."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
CLASSROOM = ROOT / "docs" / "classroom.md"  # written separately; links to it are skipped only while it is missing

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?:href|src)=["']([^"']+)["']""")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)


def ids(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> str:
    """The text without fenced code blocks (a link there is an example, not a link)."""
    return FENCE.sub("", text)


def links(path: Path) -> list[str]:
    text = prose(path.read_text())
    return LINK.findall(text) + HTML_LINK.findall(text)


def slugs(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file: lowercase, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    seen: dict[str, int] = {}
    for line in prose(path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = re.sub(r"[^\w\- ]", "", m[1].lower()).replace(" ", "-")
        seen[base] = seen.get(base, -1) + 1
        if seen[base]:
            seen[f"{base}-{seen[base]}"] = 0
    return set(seen)


def test_there_are_guides():
    names = {p.name for p in DOCS}
    assert {"README.md", "datasets.md", "api.md", "nas.md", "colab-gpu-offline.md", "troubleshooting.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            continue  # http:, https:, mailto: ...
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if dest == CLASSROOM and not CLASSROOM.exists():
            continue
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in slugs(dest):
            broken.append(f"{target} (no heading #{anchor} in {ids(dest)})")
    assert not broken, f"{ids(page)}: broken links: {broken}"


def test_every_guide_is_linked_from_the_readme_and_the_index():
    readme = set(links(ROOT / "README.md"))
    index = set(links(ROOT / "docs" / "README.md"))
    for page in DOCS:
        assert f"docs/{page.name}" in readme, f"README.md does not link {ids(page)}"
        if page.name != "README.md":
            assert page.name in index, f"docs/README.md does not link {page.name}"


def test_dataset_table_is_generated_from_list_datasets():
    """Adding or changing a dataset without `python tools/dataset_table.py --write` fails here."""
    tool = load_tool("dataset_table")
    stale = "docs/datasets.md is stale: run .venv/bin/python tools/dataset_table.py --write"
    assert tool.committed() == tool.render(), stale


def test_dataset_table_has_one_row_per_dataset_and_splice_keeps_the_rest():
    from dfl_toolkit import list_datasets

    tool = load_tool("dataset_table")
    table = tool.render()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == [d.name for d in list_datasets()]
    text = f"before\n{tool.BEGIN}\nold table\n{tool.END}\nafter\n"
    assert tool.splice(text, table) == f"before\n{tool.BEGIN}\n{table}{tool.END}\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        tool.splice("no markers here", table)


def test_nas_guide_names_every_registered_part():
    """A space, strategy, evaluator or proxy added to a registry must be documented (the CLI offers it)."""
    from dfl_toolkit.nas.evaluators import EVALUATORS
    from dfl_toolkit.nas.proxies import PROXIES
    from dfl_toolkit.nas.spaces import SPACES
    from dfl_toolkit.nas.strategies import STRATEGIES

    guide = (ROOT / "docs" / "nas.md").read_text()
    for registry in (SPACES, STRATEGIES, EVALUATORS, PROXIES):
        missing = [name for name in registry if f"`{name}`" not in guide]
        assert not missing, f"docs/nas.md does not name {missing}"
    for metric in {m for cls in EVALUATORS.values() for m in (getattr(cls, "metrics", None) or ())}:
        assert f"`{metric}`" in guide, f"docs/nas.md does not name the metric {metric!r}"
