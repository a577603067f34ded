"""Re-run notebooks top to bottom in full mode and save them with their outputs AND their widget state.

    .venv/bin/python tools/run_notebook.py notebooks/08_evolutionary_nas.ipynb [more.ipynb ...]

The kernel runs in the notebook's folder (as JupyterLab and nbval run it) with ``DFL_QUICK`` removed (full mode).
Each code cell's wall time is printed. The notebook is written back only if every cell ran without an error.

Why not run cells one by one with nbclient's ``execute_cell`` and save: that never calls
``set_widgets_metadata()``, so the saved notebook keeps an earlier run's widget state, whose model ids the new
outputs no longer use, and a fresh viewer shows ``VBox(children=(HBox(...`` text instead of the widget.
``NotebookClient.execute()`` (used here, and by ``jupyter nbconvert --execute``) stores the state at the end.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path: Path, timeout: int = 3600) -> None:
    nb = nbformat.read(path, as_version=4)
    started: dict[int, float] = {}

    def on_start(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
        started[cell_index] = time.perf_counter()

    def on_done(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
        first = cell.source.splitlines()[0][:70] if cell.source else ""
        print(f"{cell_index:3d} {time.perf_counter() - started[cell_index]:7.1f}s  {first}", flush=True)

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_execute=on_start, on_cell_executed=on_done)
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first error: nothing is written then
    nbformat.write(nb, path)
    widgets = len(nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {}))
    print(f"saved {path}: {time.perf_counter() - t0:.0f} s, {widgets} widget models stored")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    os.environ.pop("DFL_QUICK", None)  # full mode: the kernel inherits this environment
    for arg in sys.argv[1:]:
        run(Path(arg))
