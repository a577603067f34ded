"""The course website (``make site``, tools/site/build.py) builds from the repository with no warning and shows what
it promises: a page for every notebook (the assignments' student copies, never their sources) and every guide,
learning goals first and a run-it bar on every lesson, Colab links that open notebooks that exist, every figure
(widgets' saved figures included), exercises marked, nothing loaded from another host. Then, in Chromium, a reader's
path: the home page, a track, a lesson, the next lesson, an API page, a search.

The site is built once (about 40 s on 2 cores) into a temp folder, with HTTP(S) proxies pointing at a closed local
port so that any download would fail. Screenshots and the build time: test-artifacts/site/. The browser test is
skipped without chromium or playwright, except with ``DFL_BROWSER_TESTS=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from browser_lab import Browser, missing

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "site"
SPEC = importlib.util.spec_from_file_location("site_build", ROOT / "tools" / "site" / "build.py")
build = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(build)

LESSONS, COPIES = build.lessons(), build.student_copies()
GUIDES = sorted((ROOT / "docs").glob("*.md"))
IMAGES = ("image/png", "image/jpeg", "image/svg+xml")
OFFLINE = {var: "http://127.0.0.1:9" for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                                   "https_proxy", "all_proxy")}


def untracked() -> set[str]:
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("site")
    out, work = tmp / "html", tmp / "work"
    before = untracked()
    start = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        for var, value in OFFLINE.items():
            mp.setenv(var, value)
        rc = build.build(out, work)
    seconds = time.monotonic() - start
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    (ARTIFACTS / "build.txt").write_text(f"site built in {seconds:.0f} s, {size:.1f} MiB\n")  # a record, not a check
    warnings = (work / "warnings.txt").read_text() if (work / "warnings.txt").exists() else "(no warnings file)"
    return SimpleNamespace(out=out, work=work, rc=rc, warnings=warnings, new_files=untracked() - before)


def html_of(site: SimpleNamespace, source: Path) -> str:
    page = site.out / source.relative_to(ROOT).with_suffix(".html")
    assert page.is_file(), f"no page for {source.relative_to(ROOT)}"
    return page.read_text()


def pages(site: SimpleNamespace) -> dict[str, str]:
    return {p.relative_to(site.out).as_posix(): p.read_text() for p in site.out.rglob("*.html")}


def test_the_site_builds_without_a_warning(site):
    assert site.rc == 0 and not site.warnings.strip(), f"sphinx exited {site.rc}:\n{site.warnings[-5000:]}"


def test_the_build_writes_nothing_into_the_repository(site):
    assert not site.new_files, f"files appeared in the repository during the build: {sorted(site.new_files)[:10]}"
    assert (site.work / "jupyter_execute").is_dir() and not (site.out.parent / "jupyter_execute").exists()


def test_every_notebook_and_guide_has_a_page_and_no_source_copy_does(site):
    for source in [*LESSONS, *COPIES, *GUIDES, ROOT / "README.md", ROOT / "notebooks/assignments/README.md"]:
        html_of(site, source)
    assert LESSONS and COPIES and GUIDES
    assert not (site.out / "notebooks" / "assignments" / "source").exists()
    links = {p: re.findall(r'(?:href|src)="([^"]*assignments/source[^"]*)"', text) for p, text in pages(site).items()}
    assert not {p: found for p, found in links.items() if found}, "pages link to the assignments' sources"


def test_every_colab_link_opens_an_existing_notebook_and_each_page_its_own(site):
    repo = build.repository().removeprefix("https://github.com/")
    found = 0
    for name, text in pages(site).items():
        for owner_repo, path in re.findall(r'href="https://colab\.research\.google\.com/github/([^/"]+/[^/"]+)'
                                           r'/blob/main/([^"#?]+)"', text):
            found += 1
            assert owner_repo == repo and (ROOT / path).is_file(), f"{name}: Colab link to {owner_repo}/{path}"
            assert "assignments/source" not in path
    for source in [*LESSONS, *COPIES]:
        rel = source.relative_to(ROOT).as_posix()
        assert f"https://colab.research.google.com/github/{repo}/blob/main/{rel}" in html_of(site, source)
    assert found >= len(LESSONS) + len(COPIES)


@pytest.mark.parametrize("source", [*LESSONS, *COPIES], ids=lambda p: p.stem)
def test_a_lesson_page_starts_with_its_goals_and_the_run_it_bar(site, source):
    text = html_of(site, source)
    h1 = text.find("<h1")
    goals = re.search(r'<div class="[^"]*\bdfl-goals\b', text).start()
    bar = text.find('<div class="dfl-run-it"')
    rest = min(i for i in (text.find("<h2", h1), text.find('<div class="cell ', h1)) if i > 0)
    assert 0 < h1 < goals < bar < rest, "not: title, learning goals, run-it bar, the rest"
    between = re.sub(r"<[^>]+>|\s", "", text[text.find("</h1>", h1) + 5:goals])
    assert not between, f"something between the title and the goals: {between[:80]}"
    assert "make lab" in text[bar:bar + 1000]


def image_count(outputs: list) -> int:
    return sum(any(kind in out.get("data", {}) for kind in IMAGES) for out in outputs)


@pytest.mark.parametrize("source", LESSONS, ids=lambda p: p.stem)
def test_every_figure_is_on_the_page_widgets_as_their_saved_state(site, source):
    """As many images as the notebook's outputs hold, plus the figures saved in its Output widgets; no widget shown
    as its text repr, and no widget JavaScript."""
    nb = json.loads(source.read_text())
    state = nb["metadata"].get("widgets", {}).get(build.WIDGET_STATE, {}).get("state", {})
    expected = sum(image_count(cell.get("outputs", [])) for cell in nb["cells"])
    saved = [m["state"].get("outputs", []) for m in state.values() if m["model_name"] == "OutputModel"]
    expected += sum(map(image_count, saved))
    text = html_of(site, source)
    assert len(re.findall(r"<img ", text)) == expected
    outputs = " ".join(re.findall(r'<div class="cell_output.*?(?=<div class="cell docutils|</article>)', text, re.S))
    for shown_as_text in ("VBox(children=", "HBox(children=", "Output()", "FloatProgress(", "widget-view+json"):
        assert shown_as_text not in outputs, f"a widget shows as {shown_as_text!r}"
    if any(m["model_name"] in ("HBoxModel", "VBoxModel") for m in state.values()):
        assert "dfl-widget" in outputs, "a saved widget with controls left no trace"


@pytest.mark.parametrize("source", [*LESSONS, *COPIES], ids=lambda p: p.stem)
def test_exercises_are_marked(site, source):
    nb = json.loads(source.read_text())
    titles = [m for c in nb["cells"] if c["cell_type"] == "markdown"
              for m in re.findall(r"^#{2,4}\s+(.+?)\s*$", "".join(c["source"]), re.M)]
    kinds = [k for k in map(build.exercise_kind, titles) if k]
    text = html_of(site, source)
    for kind in ("exercise", "question"):
        assert len(re.findall(rf'<section class="dfl-{kind}"', text)) == kinds.count(kind)
    assert kinds, "no exercise heading found"
    if source in COPIES:
        assert "tag_dfl-your-code" in text and "tag_dfl-check" in text


def test_nothing_is_loaded_from_another_host_and_math_needs_no_script(site):
    remote = re.compile(r'<(?:script|img|iframe|source)[^>]*\ssrc="(?:https?:)?//|<link[^>]*\shref="(?:https?:)?//')
    for name, text in pages(site).items():
        assert not remote.search(text), f"{name} loads {remote.search(text)[0]}"
        assert not re.search(r"<script[^>]*mathjax|MathJax\.", text, re.I), f"{name} loads MathJax"
    assert "<math" in html_of(site, ROOT / "notebooks" / "12_efficient_architectures.ipynb")


def test_links_to_repository_files_that_are_not_pages_open_them_on_github(site):
    text = html_of(site, ROOT / "docs" / "development.md")
    assert f'href="{build.repository()}/blob/main/benchmarks/README.md"' in text
    assert 'href="../README.html#two-commands"' in html_of(site, ROOT / "docs" / "troubleshooting.md")


def test_broken_links_and_missing_images_fail_the_build(tmp_path):
    """The same configuration on two pages: a link to a file or a section that does not exist and a missing image
    are warnings, so the build fails; a link to a repository file that is not a page becomes a GitHub link."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "other.md").write_text("# Other\n\n## A section\n")
    (tmp_path / "src" / "index.md").write_text(
        "# Page\n\n[gone](nowhere.md), [a section](other.md#a-section), [no section](other.md#no-such-section),\n"
        "[data](data/README.md)\n\n![a figure](missing.png)\n\n```{toctree}\n:hidden:\n\nother\n```\n")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "tools" / "site"), "-q", "-W",
           "--keep-going", str(tmp_path / "src"), str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **OFFLINE}, timeout=120)
    assert done.returncode != 0, done.stderr
    for broken in ("nowhere.md", "no-such-section", "missing.png"):
        assert broken in done.stderr, f"no warning about {broken}:\n{done.stderr}"
    assert "a-section" not in done.stderr
    assert f'href="{build.repository()}/blob/main/data/README.md"' in (tmp_path / "out" / "index.html").read_text()


def test_a_lesson_without_goals_or_a_widget_without_state_is_one_clear_error():
    with pytest.raises(build.SiteError, match="Learning goals"):
        build.first_cell("# 99 · A lesson\n\nNo goals here.", "notebooks/99_x.ipynb", build.repository())
    with pytest.raises(build.SiteError, match="tools/run_notebook.py"):
        build.widget_outputs("abc", {}, "notebooks/99_x.ipynb")


@contextlib.contextmanager
def serve(root: Path):
    """``root`` over HTTP on 127.0.0.1, on a free port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def loaded(page, shot: str | None = None) -> None:
    """Wait until every image is decoded (a broken one fails), then take a screenshot of the viewport."""
    page.wait_for_load_state("load")
    broken = page.evaluate("""() => Promise.all([...document.images].map((i) => i.decode().then(() => null,
        () => i.getAttribute('src'))))""")
    assert not [b for b in broken if b], f"{page.url}: images that do not load: {broken[:3]}"
    if shot:
        page.screenshot(path=ARTIFACTS / shot, timeout=30_000)


def test_a_reader_in_chromium(site):
    """Home page -> a track -> lesson 00 (goals, run-it bar, exercises) -> Next -> lesson 01; lesson 02's explorer
    as its saved state; an assignment; an API page from the sidebar; a search from the search box."""
    reason = missing()
    if reason:
        if os.environ.get("DFL_BROWSER_TESTS") == "1":
            pytest.fail(f"DFL_BROWSER_TESTS=1 but {reason}")
        pytest.skip(reason)
    assert site.rc == 0, "the site did not build"
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    with serve(site.out) as url, Browser() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        elsewhere: list[str] = []
        page.on("request", lambda r: None if r.url.startswith((url, "data:")) else elsewhere.append(r.url))

        page.goto(f"{url}/index.html")
        loaded(page, "1-home.png")
        page.locator(".bd-header .navbar-nav a", has_text="Feature learning").first.click()
        assert page.locator("article h1").inner_text().startswith("Feature learning")
        page.locator("article a", has_text="00 · Setup and a tour").first.click()
        loaded(page, "2-lesson-goals-and-run-it-bar.png")
        assert page.locator("article h1").inner_text().startswith("00 ·")
        first = page.evaluate("() => { const h = document.querySelector('article h1'); const g = h.nextElementSibling;"
                              " return [g.className, g.nextElementSibling.className]; }")
        assert "dfl-goals" in first[0] and "dfl-run-it" in first[1], first
        colab = page.locator(".dfl-run-it a.dfl-colab").get_attribute("href")
        assert colab.endswith("/blob/main/notebooks/00_setup_and_tour.ipynb"), colab
        exercises = page.locator("section.dfl-exercise").first
        exercises.scroll_into_view_if_needed()
        assert exercises.evaluate("(s) => getComputedStyle(s.querySelector('h2'), '::before').content") == '"Exercise"'
        page.screenshot(path=ARTIFACTS / "3-exercises-and-next-link.png")
        page.locator("a.right-next").click()
        loaded(page)
        assert page.locator("article h1").inner_text().startswith("01 ·")

        page.goto(f"{url}/notebooks/02_cnn_feature_hierarchies.html")
        loaded(page)
        explorer = page.locator(".cell", has=page.locator(".dfl-widget-note")).first
        explorer.scroll_into_view_if_needed()
        assert explorer.locator("img").count() == 1 and explorer.locator("select[disabled]").count() == 1
        page.screenshot(path=ARTIFACTS / "4-widget-saved-state.png")

        page.goto(f"{url}/notebooks/assignments/release/01_cnn_feature_probe.html")
        loaded(page)
        page.locator(".cell.tag_dfl-your-code").first.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "5-assignment-question.png")

        page.locator(".bd-header .navbar-nav a", has_text="API reference").first.click()
        page.locator(".bd-sidenav a", has_text="dfl_toolkit.train").first.click()
        page.locator("article a", has_text="dfl_toolkit.train.loop").first.click()
        loaded(page, "6-api-page.png")
        assert page.locator("dt#dfl_toolkit\\.train\\.loop\\.fit").is_visible()

        page.locator("button.search-button-field").first.click()
        box = page.locator("#pst-search-dialog input[name=q]")
        box.fill("regularized evolution")
        box.press("Enter")
        page.wait_for_url(re.compile(r"search\.html\?q=regularized"))
        results = page.locator("#search-results li")
        results.first.wait_for()
        hrefs = [a.get_attribute("href") for a in page.locator("#search-results li a").all()]
        page.screenshot(path=ARTIFACTS / "7-search-results.png")
        assert any("08_evolutionary_nas" in h for h in hrefs), hrefs[:10]
        assert not elsewhere, f"requests to other hosts: {elsewhere[:5]}"
