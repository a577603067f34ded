"""Build the course website, offline: the numbered notebooks with their committed outputs, the assignments' student
copies, the README, the guides in docs/ and an API reference from the package's docstrings, as one static site.

    .venv/bin/python tools/site/build.py [--out site] [--execute] [--jobs N]        (make site)

The sources are staged into a work folder (``build/site/src``, git-ignored) in the repository's own layout, so the
Markdown files' relative links keep working; a file is rewritten only when its staged text changes, so a second
build redoes only what changed. On the way every lesson gets its learning goals first and a "run it" bar (Colab,
``make lab``), and every saved widget becomes its saved state drawn without JavaScript. Then Sphinx builds with
``tools/site/conf.py`` (MyST-NB, pydata-sphinx-theme; nothing is downloaded), every warning an error.
``--execute`` first re-runs the lessons in quick mode (``DFL_QUICK=1``) and shows those outputs instead.
"""

from __future__ import annotations

import argparse
import html
import importlib
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COLAB = "https://colab.research.google.com/github/{repo}/blob/main/{path}"
WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


class Track(NamedTuple):
    slug: str
    title: str
    numbers: range
    intro: str


TRACKS = (
    Track("feature-learning", "Feature learning", range(0, 7),
          "What a network learns from raw data, and how to look at it: hand-crafted against learned features, CNN "
          "feature hierarchies, recurrent networks and transformers on sequences, transfer learning, and "
          "interpretability with its sanity checks."),
    Track("nas", "Neural architecture search", range(7, 14),
          "Letting an algorithm choose the architecture: search spaces and what search costs, evolution, "
          "reinforcement learning, gradient-based search (DARTS), predictors and zero-cost proxies, several "
          "objectives, and a complete study. Each method is measured on the toolkit's benchmark table and on "
          "NAS-Bench-201's published results."),
    Track("applications", "Applications", range(14, 17),
          "The same tools beyond classification: detection and segmentation (with a decoder search), generative "
          "models, and machine translation with attention."),
    Track("beyond-one-machine", "Beyond one machine", range(17, 18),
          "The same search on Ray workers: identical trials, the wall time it saves, and how a lab's cluster "
          "runs a search or a benchmark build (docs/distributed.md)."),
)
CLASSROOM_INTRO = ("Graded assignments built on the lessons. These are the **student copies**: write your code where a "
                   "cell raises `NotImplementedError`, run the check cell under it, and run the whole notebook top to "
                   "bottom before you hand it in. Instructors: the format is in the "
                   "[assignments README](../notebooks/assignments/README.md), grading in the "
                   "[classroom guide](../docs/classroom.md).")
HOME = """# Deep feature learning and neural architecture search

A course in {lessons} notebooks and {assignments} graded assignments, built on the `dfl_toolkit` package. Every
lesson trains real networks on real data on a laptop CPU, with no network, and repeats exactly given its seed. Read a
lesson here with its outputs; run it on Colab or on your own machine from the bar at its top.

{tracks}
- **[Guides](docs/README.md)**: datasets, the API in practice, the NAS engine, applications, the classroom, Colab,
  GPUs and offline teaching, troubleshooting.
- **[API reference](api/index.rst)**: every module of `dfl_toolkit`, from its docstrings.

New here? [Getting started](README.md) has the two commands (`make lab`, `make test`) and the notebooks with their
run times; then open [00 · Setup and a tour](notebooks/00_setup_and_tour.ipynb). Search with the box at the top.

```{{toctree}}
:hidden:

Getting started <README>
{toctree}
tracks/classroom
docs/README
api/index
```
"""
RUN_IT = ('<div class="dfl-run-it"><span class="dfl-run-it-label">Run it</span>'
          '<a class="dfl-colab" href="{colab}">Open in Colab</a>'
          '<span class="dfl-local">or on your computer: <code>make lab</code> in the repository, then open '
          '<code>{local}</code></span></div>')
# The first cell's "**Learning goals**" paragraph or list (up to the next blank line), and the Colab badge.
GOALS = re.compile(r"^\*\*Learning goals(?::\*\*|\*\*:?)[ \t]*(.*?)(?=\n[ \t]*\n|\Z)", re.M | re.S)
BADGE = re.compile(r'<a href="https://colab\.research\.google\.com/[^"]*"[^>]*>\s*<img [^>]*colab-badge[^>]*>\s*</a>')
EXERCISE = re.compile(r"(?:\d+\s*·\s*)?(?:exercises?|try it(?: yourself)?|to think about)\b", re.I)
QUESTION = re.compile(r"q\d+\s*·", re.I)


class SiteError(Exception):
    """A source the site cannot show as promised (a lesson without learning goals, a widget without its state)."""


def repository() -> str:
    """The repository's URL, from pyproject.toml (the one place it is written)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^Repository\s*=\s*"(https://github\.com/[\w.-]+/[\w.-]+)"', pyproject, re.M)
    if not match:
        raise SiteError("pyproject.toml has no [project.urls] Repository = \"https://github.com/OWNER/NAME\"")
    return match[1]


def exercise_kind(title: str) -> str | None:
    """``"exercise"`` for a section title such as "Exercises" or "6 · Try it yourself", ``"question"`` for an
    assignment's "q1 · ...", else None (conf.py marks those sections)."""
    if QUESTION.match(title):
        return "question"
    return "exercise" if EXERCISE.match(title) else None


def lessons() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def student_copies() -> list[Path]:
    return sorted((ROOT / "notebooks" / "assignments" / "release").glob("*.ipynb"))


def title_of(nb: nbformat.NotebookNode) -> str:
    return nb.cells[0].source.splitlines()[0].lstrip("# ").strip()


def first_cell(source: str, rel: str, repo: str) -> str:
    """The title, the learning goals, the run-it bar, then the rest of the cell (its Colab badge dropped)."""
    title, _, body = source.partition("\n")
    found = GOALS.search(body)
    if not title.startswith("# ") or not found:
        raise SiteError(f"{rel}: the first cell needs a '# title' and a '**Learning goals**' paragraph or list "
                        "(the site shows them first)")
    goals = found[1].strip()
    body = BADGE.sub("", body[:found.start()] + body[found.end():])
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    bar = RUN_IT.format(colab=COLAB.format(repo=repo.removeprefix("https://github.com/"), path=rel),
                        local=html.escape(rel.removeprefix("notebooks/")))
    return f"{title}\n\n````{{admonition}} Learning goals\n:class: dfl-goals\n\n{goals}\n````\n\n{bar}\n\n{body}\n"


def _control(name: str, s: dict) -> tuple[str, bool]:
    """One widget as static HTML, and whether it is a control a reader would use."""
    esc = html.escape
    label = f"<label>{esc(str(s['description']))}</label>" if s.get("description") else ""
    if name.endswith("SliderModel"):
        position = value = s.get("value")
        if "_options_labels" in s:  # SelectionSlider: a position among labels
            position = s.get("index") or 0
            value = s["_options_labels"][position]
        return (f'<span class="dfl-widget-control">{label}<input type="range" min="{s.get("min", 0)}" '
                f'max="{s.get("max", 100)}" step="{s.get("step", 1)}" value="{esc(str(position))}" disabled>'
                f"<output>{esc(str(value))}</output></span>"), True
    if "_options_labels" in s:  # Dropdown, Select, RadioButtons, ToggleButtons
        index, labels = s.get("index"), s["_options_labels"]
        chosen = labels[index] if isinstance(index, int) and index < len(labels) else ""
        return (f'<span class="dfl-widget-control">{label}<select disabled><option selected>{esc(str(chosen))}'
                "</option></select></span>"), True
    if name == "ButtonModel":
        return f'<button class="dfl-widget-button" disabled>{esc(str(s.get("description", "")))}</button>', True
    if name.endswith("ProgressModel"):
        style = esc(str(s.get("bar_style") or "info"))
        return f'<progress class="dfl-widget-progress {style}" max="{s.get("max", 100)}" value="{s.get("value", 0)}">' \
               "</progress>", False
    if name in ("HTMLModel", "HTMLMathModel"):
        return f'<span class="dfl-widget-html">{label}{s.get("value", "")}</span>', False
    if name == "LabelModel":
        return f'<span class="dfl-widget-html">{esc(str(s.get("value", "")))}</span>', False
    if name in ("CheckboxModel", "ToggleButtonModel"):
        checked = " checked" if s.get("value") else ""
        return f'<span class="dfl-widget-control"><input type="checkbox" disabled{checked}>{label}</span>', True
    value = f'<input type="text" value="{esc(str(s["value"]))}" disabled>' if "value" in s else ""
    return f'<span class="dfl-widget-control">{label}{value}</span>', "value" in s


def widget_outputs(model_id: str, state: dict, where: str) -> list[nbformat.NotebookNode]:
    """A saved widget view as outputs without JavaScript: controls as disabled HTML, an ``Output`` widget's saved
    outputs (figures, printed text) as ordinary outputs, in the widget's order."""
    outputs: list[nbformat.NotebookNode] = []
    parts: list[str] = []
    interactive = False

    def model(mid: str) -> tuple[str, dict]:
        if mid not in state:
            raise SiteError(f"{where}: widget {mid} is shown but its state is not saved; re-run the notebook with "
                            "tools/run_notebook.py, which saves it")
        return state[mid]["model_name"], state[mid]["state"]

    def children(s: dict) -> list[str]:
        return [c.removeprefix("IPY_MODEL_") for c in s.get("children", [])]

    def holds_output(mid: str) -> bool:
        name, s = model(mid)
        return name == "OutputModel" or any(holds_output(c) for c in children(s))

    def flush() -> None:
        if parts:
            outputs.append(nbformat.v4.new_output("display_data", {"text/html": "".join(parts)}))
            parts.clear()

    def walk(mid: str) -> None:
        nonlocal interactive
        name, s = model(mid)
        if name == "OutputModel":
            flush()
            outputs.extend(expand([nbformat.from_dict(o) for o in s.get("outputs", [])], state, where))
        elif "children" in s:  # HBox, VBox, Box, GridBox...
            wrap = not holds_output(mid)  # a box around an Output is left out: its pieces become separate outputs
            parts.append(f'<div class="dfl-widget-{"row" if name == "HBoxModel" else "column"}">' if wrap else "")
            for child in children(s):
                walk(child)
            parts.append("</div>" if wrap else "")
        else:
            piece, live = _control(name, s)
            interactive |= live
            parts.append(piece)

    walk(model_id)
    flush()
    if interactive:
        note = ('<p class="dfl-widget-note">Interactive in JupyterLab or Colab, where its controls redraw the figure; '
                "here it shows the state it was saved in.</p>")
        outputs.insert(0, nbformat.v4.new_output("display_data", {"text/html": note}))
    return outputs


def expand(outputs: list, state: dict, where: str) -> list[nbformat.NotebookNode]:
    out = []
    for o in outputs:
        view = o.get("data", {}).get(WIDGET_VIEW)
        out += widget_outputs(view["model_id"], state, where) if view else [o]
    return out


def execute(nb: nbformat.NotebookNode, path: Path) -> None:
    """Run ``nb`` in quick mode in its folder (as nbval does), saving its widgets' state."""
    from nbclient import NotebookClient

    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute(env={**os.environ, "DFL_QUICK": "1"})
    print(f"executed {path.relative_to(ROOT)} in quick mode: {time.perf_counter() - t0:.0f} s", flush=True)


def notebook_page(path: Path, repo: str, run: bool = False) -> str:
    """The staged copy of a notebook: learning goals first, the run-it bar, widgets drawn statically, the cells a
    student writes in and the check cells tagged (``tag_dfl-your-code``, ``tag_dfl-check`` in the HTML)."""
    nb = nbformat.read(path, as_version=4)
    rel = path.relative_to(ROOT).as_posix()
    if run:
        execute(nb, path)
    nb.cells[0].source = first_cell(nb.cells[0].source, rel, repo)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = expand(cell.get("outputs", []), state, rel)
        tags = cell.metadata.setdefault("tags", [])
        if "raise NotImplementedError(" in cell.source:
            tags.append("dfl-your-code")
        if cell.source.startswith("# CHECK "):
            tags.append("dfl-check")
    return nbformat.writes(nb)


def readme_rows() -> dict[str, str]:
    """The README's notebook table: file name -> "what it teaches (quick ..., full ...)"."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].endswith(".ipynb`"):
            rows[cells[0].strip("`")] = f"{cells[1]} (quick mode {cells[2]}, full {cells[3]} on a 2-core CPU)"
    return rows


def track_pages() -> dict[str, str]:
    """tracks/<slug>.md for each track and the classroom: what each lesson teaches, and the toctree."""
    by_number = {int(p.name[:2]): p for p in lessons()}
    homeless = sorted(p.name for n, p in by_number.items() if not any(n in t.numbers for t in TRACKS))
    if homeless:
        raise SiteError(f"notebooks in no track: {homeless}; add them to TRACKS in tools/site/build.py")
    rows, pages = readme_rows(), {}
    for t in TRACKS:
        paths = [by_number[n] for n in t.numbers if n in by_number]
        items = [f"- **[{title_of(nbformat.read(p, as_version=4))}](../notebooks/{p.name})**: {rows.get(p.name, '')}"
                 for p in paths]
        toc = "\n".join(f"/notebooks/{p.stem}" for p in paths)
        pages[t.slug] = (f"# {t.title}\n\n{t.intro}\n\n" + "\n".join(items)
                         + f"\n\n```{{toctree}}\n:hidden:\n\n{toc}\n```\n")
    copies = student_copies()
    items = [f"- **[{title_of(nbformat.read(p, as_version=4))}](../notebooks/assignments/release/{p.name})**"
             for p in copies]
    toc = "\n".join(["/notebooks/assignments/README", *(f"/notebooks/assignments/release/{p.stem}" for p in copies)])
    pages["classroom"] = (f"# Classroom\n\n{CLASSROOM_INTRO}\n\n" + "\n".join(items)
                          + f"\n\n```{{toctree}}\n:hidden:\n\n{toc}\n```\n")
    return pages


def guides_page() -> str:
    """docs/README.md with a hidden toctree of every guide: in the order its table links them, then the rest."""
    text = (ROOT / "docs" / "README.md").read_text()
    names = [p.stem for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "README.md"]
    linked = [n for n in dict.fromkeys(re.findall(r"\]\(([\w.-]+)\.md\)", text)) if n in names]
    order = linked + [n for n in names if n not in linked]
    return text.rstrip() + "\n\n```{toctree}\n:hidden:\n\n" + "\n".join(order) + "\n```\n"


def api_pages() -> dict[str, str]:
    """api/index.rst (what ``import dfl_toolkit as dfl`` exports, linked to where each is documented) and one page
    per module (``automodule``), packages listing their modules."""
    import dfl_toolkit

    modules = sorted(m.name for m in pkgutil.walk_packages(dfl_toolkit.__path__, "dfl_toolkit.")
                     if not any(part.startswith("_") for part in m.name.split(".")))
    packages = {name for name in modules if hasattr(importlib.import_module(name), "__path__")}

    def children(parent: str) -> list[str]:
        return [m for m in modules if m.rpartition(".")[0] == parent]

    def toctree(names: list[str]) -> str:
        return ".. toctree::\n   :maxdepth: 1\n\n" + "".join(f"   {n}\n" for n in names)

    def page(name: str, body: str) -> str:
        title = f"``{name}``"
        return f"{title}\n{'=' * len(title)}\n\n.. automodule:: {name}\n\n{body}"

    pages = {name: page(name, toctree(children(name)) if name in packages else "") for name in modules}
    exported = []
    for name in dfl_toolkit.__all__:
        obj = getattr(dfl_toolkit, name)
        exported.append(obj.__name__ if name in dfl_toolkit.LAZY else f"{obj.__module__}.{obj.__qualname__}")
    table = ".. autosummary::\n   :nosignatures:\n\n" + "".join(f"   ~{n}\n" for n in exported)
    pages["index"] = ("API reference\n=============\n\n.. automodule:: dfl_toolkit\n   :no-members:\n\n"
                      "``import dfl_toolkit as dfl`` gives these names; each links to where it is documented.\n\n"
                      ".. currentmodule:: None\n\n"
                      f"{table}\nModules\n-------\n\n{toctree(children('dfl_toolkit'))}")
    return pages


def stage(src: Path, execute_lessons: bool = False) -> list[Path]:
    """Write the site's sources into ``src`` (rewriting only what changed, deleting what is gone); return them."""
    repo = repository()
    texts: dict[Path, str] = {
        src / "README.md": (ROOT / "README.md").read_text(),
        src / "notebooks" / "assignments" / "README.md": (ROOT / "notebooks" / "assignments" / "README.md").read_text(),
        src / "docs" / "README.md": guides_page(),
    }
    for path in sorted((ROOT / "docs").glob("*.md")):
        texts.setdefault(src / "docs" / path.name, path.read_text())
    for path in lessons():
        texts[src / path.relative_to(ROOT)] = notebook_page(path, repo, run=execute_lessons)
    for path in student_copies():  # never the source copies: they hold the solutions
        texts[src / path.relative_to(ROOT)] = notebook_page(path, repo)
    tracks = track_pages()
    for slug, text in tracks.items():
        texts[src / "tracks" / f"{slug}.md"] = text
    for name, text in api_pages().items():
        texts[src / "api" / f"{name}.rst"] = text
    listing = "\n".join(f"- **[{t.title}](tracks/{t.slug}.md)** ({t.numbers[0]:02d}"
                        f"{f'-{t.numbers[-1]:02d}' if len(t.numbers) > 1 else ''}): {t.intro}"
                        for t in TRACKS)
    listing += "\n- **[Classroom](tracks/classroom.md)**: the graded assignments, as student copies."
    texts[src / "index.md"] = HOME.format(lessons=len(lessons()), assignments=len(student_copies()), tracks=listing,
                                          toctree="\n".join(f"tracks/{t.slug}" for t in TRACKS))
    for path, text in texts.items():
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in sorted(src.rglob("*"), reverse=True):  # files no longer staged, then empty folders
        if path.is_file() and path not in texts:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return sorted(texts)


def build(out: Path, work: Path, execute_lessons: bool = False, jobs: int = 1) -> int:
    """Stage into ``work`` and build the HTML site into ``out``; Sphinx's exit status (non-zero on any warning).
    The warnings are also written to ``work/warnings.txt``."""
    stage(work / "src", execute_lessons)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(HERE), "-d", str(work / "doctrees"), "-q",
           "-W", "--keep-going", "-w", str(work / "warnings.txt"), "-j", str(jobs), str(work / "src"), str(out)]
    return subprocess.run(cmd, env={**os.environ, "DFL_SITE_WORK": str(work)}).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "site",
                        help="staged sources and Sphinx's cache (default: build/site/)")
    parser.add_argument("--execute", action="store_true", help="re-run the lessons in quick mode first")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="Sphinx processes")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        rc = build(args.out.resolve(), args.work.resolve(), args.execute, args.jobs)
    except SiteError as error:
        print(f"site: {error}", file=sys.stderr)
        return 1
    if rc == 0:
        print(f"site built in {time.perf_counter() - t0:.0f} s: open {args.out / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
