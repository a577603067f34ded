"""Sphinx configuration of the course website; ``tools/site/build.py`` stages the sources and runs Sphinx with it.

Besides the settings, four small hooks (``setup`` below), each for one thing the site needs offline:

- math is written as MathML at build time (docutils' converter; browsers draw it natively): no MathJax from a CDN;
- a link to a repository file that is not a page of the site (``../benchmarks/results/README.md``) becomes a link to
  that file on GitHub; a link to a file that does not exist stays a build warning, i.e. an error;
- sections titled like an exercise ("Exercises", "Try it", "q1 · ...") get a CSS class that marks them;
- MyST-NB writes the notebooks' output images into the work folder, not next to the output folder.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("dfl_site_build", HERE / "build.py")  # not "build": a PyPI name
site_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site_build)
ROOT, REPO_URL = site_build.ROOT, site_build.repository()

project = "dfl_toolkit"
html_title = "Deep feature learning and NAS"
copyright = "the dfl_toolkit authors"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.autosummary"]

# MyST: $math$, GitHub-style heading anchors (README.md#two-commands) for links between the Markdown files
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_dmath_allow_space = False  # "costs $5 or $6" in prose stays text: math is $x$, never $ x $
myst_heading_anchors = 3
# MyST-NB: notebooks show their committed outputs (build.py --execute re-runs them before staging); no widget JS
nb_execution_mode = "off"
nb_ipywidgets_js: dict = {}
nb_merge_streams = True

# API reference: Google-style docstrings, members in source order, the module's own members only
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autosummary_generate = False
napoleon_numpy_docstring = False
napoleon_use_ivar = True
add_module_names = False

html_theme = "pydata_sphinx_theme"
html_static_path = [str(HERE / "static")]
html_css_files = ["site.css"]
html_copy_source = False  # the staged notebooks are 12 MB; search summaries come from the pages themselves
html_show_sourcelink = False
html_math_renderer = "mathml"
html_theme_options = {
    "github_url": REPO_URL,
    "show_prev_next": True,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 7,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
    "search_bar_text": "Search the course ...",
}
html_sidebars = {"index": []}


def visit_math(self, node: nodes.Element) -> None:
    """Inline and display math as MathML (docutils' LaTeX converter), so no script is needed to show it."""
    from docutils.utils.math import latex2mathml

    block = isinstance(node, nodes.math_block)
    tex = node.astext().replace(r"\dots", r"\ldots")  # the one common command docutils does not know
    try:
        mathml = latex2mathml.tex2mathml(tex, as_block=block)
    except Exception as error:  # docutils' MathError for a command it does not know: a build warning
        logging.getLogger(__name__).warning("math not converted (%s): %s", error, tex, location=node)
        mathml = f"<code>{html.escape(tex)}</code>"
    self.body.append(f'<div class="math">{mathml}</div>' if block else mathml)
    raise nodes.SkipNode


class RepositoryLinks(SphinxPostTransform):
    """A Markdown link to a repository file that is not staged as a page (``../data/README.md``) points at the file
    on GitHub. Runs just before MyST resolves its references (priority 9); unresolvable links are left to it."""

    default_priority = 8

    def run(self, **kwargs) -> None:
        srcdir = Path(self.env.srcdir)
        for node in list(self.document.findall(addnodes.pending_xref)):
            target = node.get("reftarget", "")
            if node.get("reftype") != "myst" or node.get("refdomain") or re.match(r"[a-z][\w+.-]*:|#", target):
                continue
            path, _, anchor = target.partition("#")
            rel = Path(os.path.normpath(Path(node["refdoc"]).parent / path))
            if rel.parts[:1] == ("..",) or (srcdir / rel).exists() or not (ROOT / rel).exists():
                continue
            kind = "tree" if (ROOT / rel).is_dir() else "blob"
            url = f"{REPO_URL}/{kind}/main/{rel.as_posix()}" + (f"#{anchor}" if anchor else "")
            ref = nodes.reference("", "", *node.children[0].children or [nodes.literal(target, target)],
                                  refuri=url, internal=False, classes=["reference", "external"])
            node.replace_self(ref)


class MarkExercises(SphinxTransform):
    """Sections whose title is an exercise heading get the class ``dfl-exercise`` or ``dfl-question``."""

    default_priority = 500

    def apply(self, **kwargs) -> None:
        for section in self.document.findall(nodes.section):
            kind = site_build.exercise_kind(section[0].astext()) if section.children else None
            if kind:
                section["classes"].append(f"dfl-{kind}")


def output_images_in_work_folder(app) -> None:
    """MyST-NB writes output images to ``<outdir>/../jupyter_execute``; with ``site/`` as the output folder that is
    the repository root, so move it into the work folder (build.py sets DFL_SITE_WORK)."""
    work = os.environ.get("DFL_SITE_WORK")
    if work and hasattr(app.env, "mystnb_config"):
        app.env.mystnb_config = app.env.mystnb_config.copy(output_folder=str(Path(work) / "jupyter_execute"))


def setup(app) -> dict:
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_math, None))
    app.add_post_transform(RepositoryLinks)
    app.add_transform(MarkExercises)
    app.connect("builder-inited", output_images_in_work_folder, priority=600)  # after MyST-NB's own (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
