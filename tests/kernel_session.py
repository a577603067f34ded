"""Run code in a real Jupyter kernel through nbclient, which keeps ``ipywidgets.Output`` contents the way
JupyterLab does: ``clear_output(wait=True)`` + ``display`` replaces a figure, while
``update_display_data`` inside an Output is not applied (JupyterLab 4 does not redraw it either).

Example:
    >>> nb = run_cells("from IPython.display import display; import ipywidgets as w; o = w.Output(); display(o)")
    >>> output_widgets(nb)
    [[]]
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbclient import NotebookClient

# Kernels inherit MPLBACKEND=Agg from `make test`: use the notebook backend, as JupyterLab does.
INLINE = 'import matplotlib\nmatplotlib.use("module://matplotlib_inline.backend_inline")\n'


def run_cells(*cells: str, timeout: int = 120) -> Any:
    """Execute ``cells`` in a fresh python3 kernel; the executed notebook, widget state included."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(INLINE + cells[0])] + [nbformat.v4.new_code_cell(c) for c in cells[1:]]
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True).execute()
    return nb


def output_widgets(nb: Any) -> list[list[dict]]:
    """The outputs held by each ``ipywidgets.Output`` of an executed notebook, in creation order."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [m["state"].get("outputs", []) for m in state.values() if m["model_name"] == "OutputModel"]


def images(outputs: list[dict]) -> list[str]:
    """The base64 PNGs among ``outputs`` (cell or widget outputs)."""
    return [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]


def text(outputs: list[dict]) -> str:
    """All stream text among ``outputs``."""
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
