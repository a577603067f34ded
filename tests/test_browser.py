"""What a student sees: JupyterLab 4 in headless Chromium runs copies of the widget notebooks in quick mode (Run All,
so any cell's error fails too), then uses the widgets as a student does and checks what the page shows:

- explorers (02, 04, 06): live controls, and picking a dropdown value or moving a slider changes the figure;
- search runner (08, 09): Run with a budget larger than the default redraws the figure during the search, and the
  figure left on screen is the final one (the same PNG as a fresh plot of all the evaluations), with a printed best
  that is that curve's last value;
- ``LiveProgress`` in a plain cell (08, 10, 13): one figure, the final one;
- notebook 00: the training progress bar is a widget, and not red once training has finished.

Each kind of widget is covered once by default; ``DFL_BROWSER_NOTEBOOKS=all`` also runs 04, 06, 09, 13, 14 and 16,
and ``DFL_BROWSER_NOTEBOOKS=14_detection_and_segmentation,16_machine_translation`` just those.
Screenshots, one per step, and each notebook's times: test-artifacts/browser/. Skipped without chromium or
playwright, except with ``DFL_BROWSER_TESTS=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from browser_lab import Browser, JupyterLab, LabNotebook, missing

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
# notebook -> checks, each (kind, a piece of the cell's source that finds the cell). The default set has each kind
# of widget once (about 4 minutes on 2 cores); DFL_BROWSER_NOTEBOOKS=all adds 04, 06, 09, 13, 14, 16.
NOTEBOOKS = {
    "00_setup_and_tour": [("fit", "history = dfl.fit(")],
    "02_cnn_feature_hierarchies": [("explorer", "feature_map_explorer(")],
    "08_evolutionary_nas": [("live", "LiveProgress("), ("runner", "search_runner(")],
    "10_gradient_based_nas": [("live", "LiveProgress(")],
}
MORE = {
    "04_transformers_and_long_range_dependencies": [("explorer", "attention_explorer(")],
    "06_interpretability": [("explorer", "attribution_explorer(")],
    "09_reinforcement_learning_nas": [("runner", "search_runner(")],
    "13_capstone_nas_study": [("live", "LiveProgress(")],
    "14_detection_and_segmentation": [("explorer", "feature_map_explorer(")],
    "16_machine_translation": [("explorer", "alignment_explorer(")],
}
if os.environ.get("DFL_BROWSER_NOTEBOOKS") == "all":
    NOTEBOOKS = dict(sorted({**NOTEBOOKS, **MORE}.items()))
elif os.environ.get("DFL_BROWSER_NOTEBOOKS"):  # a comma-separated list of notebook names
    ALL = {**NOTEBOOKS, **MORE}
    NOTEBOOKS = {n: ALL[n] for n in os.environ["DFL_BROWSER_NOTEBOOKS"].split(",")}
WIDGET_REPR = ("VBox(children=", "HBox(children=", "Error displaying widget")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """JupyterLab on a temp copy of the notebooks (it autosaves: the committed ones stay untouched), and Chromium."""
    reason = missing()
    if reason:
        if os.environ.get("DFL_BROWSER_TESTS") == "1":
            pytest.fail(f"DFL_BROWSER_TESTS=1 but {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("notebooks")
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / f"{name}.ipynb", root)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with JupyterLab(root, {"DFL_QUICK": "1"}) as server, Browser() as browser:
        yield server, browser


def shot(locator: Any, name: str) -> None:
    """Screenshot ``locator`` once its images are decoded."""
    locator.evaluate("(n) => Promise.all([...n.querySelectorAll('img')].map((i) => i.decode().catch(() => null)))")
    locator.screenshot(path=ARTIFACTS / f"{name}.png", timeout=30_000)


def src(cell: Any, selector: str = ".widget-output img") -> str:
    return cell.locator(selector).first.get_attribute("src", timeout=30_000)


def wait_new_src(nb: LabNotebook, cell: Any, old: str, timeout: float = 120) -> str:
    selector = f"[data-dfl-cell='{cell.get_attribute('data-dfl-cell')}'] .widget-output img"
    nb.page.wait_for_function("([sel, old]) => { const i = document.querySelector(sel); return !!i && i.src !== old; }",
                              arg=[selector, old], timeout=timeout * 1000, polling=200)
    return src(cell)


def png_url(b64: str) -> str:
    return "data:image/png;base64," + b64.strip()


def check_explorer(nb: LabNotebook, cell: Any, tag: str) -> None:
    """Every control is live: a new dropdown value, then a slider step, each redraw the figure."""
    sliders, dropdowns = cell.locator(".widget-slider"), cell.locator(".widget-dropdown select")
    assert sliders.count() + dropdowns.count() >= 1, f"{tag}: explorer controls missing"
    before = src(cell)
    shot(cell, f"{tag}-1-default")
    if dropdowns.count():
        dropdowns.first.select_option(index=1, timeout=10_000)
        before = wait_new_src(nb, cell, before)
        shot(cell, f"{tag}-2-dropdown-changed")
    if sliders.count():
        sliders.first.locator(".noUi-handle").first.press("ArrowRight", timeout=10_000)
        wait_new_src(nb, cell, before)
        shot(cell, f"{tag}-3-slider-moved")


def check_runner(nb: LabNotebook, cell: Any, tag: str) -> None:
    """Run with the second (larger) budget: the figure is redrawn during the search and ends as its final state."""
    budget_select = cell.locator(".widget-dropdown select").nth(1)
    budgets = budget_select.locator("option").all_inner_texts()
    budget_select.select_option(index=1, timeout=10_000)
    budget = int(budgets[1])
    assert budget > int(budgets[0])
    shot(cell, f"{tag}-1-controls-budget-{budget}")
    nb.page.evaluate("""(sel) => { const cell = document.querySelector(sel); window.__dflSrcs = [];
        const record = () => { const img = cell.querySelector(".widget-output img");
          if (img && img.src !== window.__dflSrcs[window.__dflSrcs.length - 1]) window.__dflSrcs.push(img.src); };
        window.__dflObserver = new MutationObserver(record);
        window.__dflObserver.observe(cell, {subtree: true, childList: true, attributes: true}); }""",
                     f"[data-dfl-cell='{cell.get_attribute('data-dfl-cell')}']")
    cell.locator(".widget-button", has_text="Run").click(timeout=10_000)
    printed = cell.locator(".widget-output", has_text=re.compile(r"\bbest\b"))  # printed once the run is over
    printed.wait_for(timeout=240_000)
    nb.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
                              " === 'idle'", timeout=60_000, polling=200)
    shown = nb.page.evaluate("() => { window.__dflObserver.disconnect(); return window.__dflSrcs; }")
    shot(cell, f"{tag}-2-after-run")
    assert len(shown) >= 2, f"{tag}: the figure was drawn {len(shown)} time(s) during a {budget}-evaluation search"
    assert shown[-1] != shown[0], f"{tag}: the figure after Run is the first one drawn"
    check = nb.kernel("""import json as _json
from IPython.display import display as _display
import matplotlib.pyplot as _plt
_box = [v for v in Out.values() if hasattr(v, "run") and hasattr(v, "result")][-1]
_fig = _box.live.figure(); _plt.close(_fig); _display(_fig)
_m = _box.live.metric or _box.result.objective
print(_json.dumps({"n": len(_box.result.trials), "metric": _m, "curve_end": _box.result.incumbent(_m)[-1]}))""")
    final = json.loads(check["text"])
    assert src(cell) == shown[-1] == png_url(check["png"][0]), f"{tag}: the figure on screen is not the final state"
    assert final["n"] == budget
    line = printed.inner_text(timeout=10_000)
    assert f"best of {budget}:" in line and line.strip().endswith(f"{final['metric']} = {final['curve_end']:.4f}"), line


def check_live(nb: LabNotebook, cell: Any, tag: str) -> None:
    """A ``LiveProgress`` in a plain cell shows one figure, inside its Output widget: the final state."""
    shot(cell, f"{tag}-final")
    images = cell.locator(".widget-output img")
    assert images.count() == 1, f"{tag}: {images.count()} LiveProgress figures in widget outputs, expected 1"
    check = nb.kernel("""from IPython.display import display as _display
import matplotlib.pyplot as _plt
_fig = live.figure(); _plt.close(_fig); _display(_fig)
print(live.drawn == live._steps(live.result))""")
    assert check["text"].strip() == "True", f"{tag}: the last drawing is not of the finished search"
    assert src(cell) == png_url(check["png"][0]), f"{tag}: the figure on screen is not the final state"


def check_fit(nb: LabNotebook, cell: Any, tag: str) -> None:
    """The training progress bar is a widget, and a finished training's bar is not red (closed unfinished)."""
    shot(cell, f"{tag}-progress-bar")
    assert cell.locator(".widget-hprogress").count() >= 1, f"{tag}: no progress bar widget"
    assert cell.locator(".progress-bar-danger").count() == 0, f"{tag}: the finished training's bar is red"


CHECKS = {"explorer": check_explorer, "runner": check_runner, "live": check_live, "fit": check_fit}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_widget_notebook_in_jupyterlab(lab: Any, name: str) -> None:
    server, browser = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(60_000)
    try:
        start = time.monotonic()
        nb = LabNotebook(page, server, f"{name}.ipynb")
        opened = time.monotonic()
        try:
            nb.run_all()
        except Exception:
            page.screenshot(path=ARTIFACTS / f"{name[:2]}-run-all-failure.png", timeout=30_000)
            raise
        ran = time.monotonic()
        text = page.locator(".jp-Notebook").inner_text(timeout=30_000)
        failed = [f"a widget shows as text: {r}" for r in WIDGET_REPR if r in text]
        for kind, source_part in NOTEBOOKS[name]:  # every check runs; all failures are reported together
            cell = nb.cell(source_part)
            try:
                assert cell.locator(".jupyter-widgets").count() >= 1, f"no live widget in the {kind} cell"
                CHECKS[kind](nb, cell, f"{name[:2]}-{kind}")
            except Exception as error:
                with contextlib.suppress(Exception):
                    shot(cell, f"{name[:2]}-{kind}-failure")
                failed.append(f"{kind}: {type(error).__name__}: {error}")
        with open(ARTIFACTS / "timings.txt", "a") as log:  # a record for the CI budget, not a check
            print(f"{name}: open {opened - start:.0f} s, Run All {ran - opened:.0f} s, "
                  f"widget checks {time.monotonic() - ran:.0f} s", file=log)
        assert not failed, f"{name}:\n" + "\n".join(failed)
    finally:
        try:  # free the kernel's memory before the next notebook
            page.evaluate("""() => Promise.race([window.jupyterapp.shell.currentWidget.sessionContext.shutdown(),
                                                 new Promise((done) => setTimeout(done, 15000))])""")
        finally:
            page.close()
