"""JupyterLab in headless Chromium for tests: start a server on a free port, open a notebook, run it, find a cell,
run code in its kernel. Only localhost is reached; every wait has a timeout.

Example:
    >>> with JupyterLab(folder, {"DFL_QUICK": "1"}) as lab, Browser() as browser:
    ...     nb = LabNotebook(browser.new_page(), lab, "02_cnn_feature_hierarchies.ipynb")
    ...     nb.run_all()
    ...     cell = nb.cell("feature_map_explorer(")
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Plain DOM (every cell attached), and no notification asking to fetch news.
SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}


def missing() -> str | None:
    """Why the browser test cannot run here (no chromium, no playwright), or None."""
    if shutil.which("chromium") is None:
        return "no chromium on PATH (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on ``root`` (the venv's), with ``env`` added to its environment; a context manager
    that stops the server and its kernels on exit."""

    def __init__(self, root: Path, env: dict[str, str], start_timeout: float = 90):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        state = root.parent / f"{root.name}-lab-state"
        for rel, value in SETTINGS.items():
            path = state / "settings" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={self.port}",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}",
               # if the test process dies without its teardown: idle kernels, then the server, end on their own
               "--MappingKernelManager.cull_idle_timeout=300", "--MappingKernelManager.cull_interval=60",
               "--ServerApp.shutdown_no_activity_timeout=600"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        full_env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DFL_STATIC_WIDGETS")}
        full_env.update(JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_RUNTIME_DIR=str(state / "runtime"), **env)
        self.log = state / "jupyterlab.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=root,
                                         start_new_session=True)  # its own process group: kernels die with it
        try:
            self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def _kernel_pids(self) -> list[int]:
        """The server's child processes: its kernels (each in a session of its own, so not in its group)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """Stop the server and its kernels: SIGTERM (it shuts its kernels down), SIGKILL what is left after 15 s."""
        kernels = self._kernel_pids()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pid in kernels:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> JupyterLab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Browser:
    """Debian's headless Chromium driven by Playwright; a context manager."""

    def __enter__(self) -> Any:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                                     args=CHROMIUM_ARGS, timeout=60_000)
        except BaseException:
            self._pw.stop()
            raise
        return self._browser

    def __exit__(self, *exc: Any) -> None:
        try:
            self._browser.close()
        finally:
            self._pw.stop()


# Run code in the notebook's kernel (not in a cell) and collect what it prints and displays.
_EXECUTE = """async ([code, ms]) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const out = {text: "", png: [], error: null};
  const future = kernel.requestExecute({code, store_history: false});
  future.onIOPub = (msg) => {
    const c = msg.content, type = msg.header.msg_type;
    if (type === "stream") out.text += c.text;
    const png = (type === "display_data" || type === "execute_result") && c.data["image/png"];
    if (png) out.png.push(png);
    if (type === "error") out.error = `${c.ename}: ${c.evalue}`;
  };
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`kernel: no reply in ${ms} ms`)), ms));
  await Promise.race([future.done, timeout]);
  return out;
}"""


class LabNotebook:
    """One notebook open in JupyterLab in ``page``, its kernel started and idle.

    Example:
        >>> nb = LabNotebook(page, lab, "08_evolutionary_nas.ipynb"); nb.run_all(); nb.cell("search_runner(")
    """

    def __init__(self, page: Any, lab: JupyterLab, name: str, timeout: float = 120):
        self.page, self.name = page, name
        page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}&reset", timeout=timeout * 1000)
        page.wait_for_function(
            """(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                 return !!w && w.context && w.context.path === name &&
                        w.sessionContext.session?.kernel?.status === "idle"; }""",
            arg=name, timeout=timeout * 1000, polling=250)

    def run_all(self, timeout: float = 420) -> None:
        """Run All (``notebook:run-all-cells``) and wait until it is finished; fail with the error outputs."""
        self.page.evaluate("""() => { window.__dflRun = null;
            window.jupyterapp.commands.execute("notebook:run-all-cells").then(
                (ok) => { window.__dflRun = ok === false ? "failed" : "done"; },
                (e) => { window.__dflRun = "error: " + e; }); }""")
        self.page.wait_for_function("() => window.__dflRun !== null", timeout=timeout * 1000, polling=500)
        state = self.page.evaluate("() => window.__dflRun")
        if state != "done":
            errors = self.page.evaluate("""() => [...document.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.innerText)""")
            raise AssertionError(f"{self.name}: Run All {state}:\n" + "\n".join(errors)[-3000:])

    def cell(self, source_part: str) -> Any:
        """The last cell whose source contains ``source_part``, as a Playwright locator."""
        found = self.page.evaluate("""(part) => {
            const cells = window.jupyterapp.shell.currentWidget.content.widgets;
            document.querySelectorAll("[data-dfl-cell]").forEach(n => n.removeAttribute("data-dfl-cell"));
            for (let i = cells.length - 1; i >= 0; i--) {
              if (cells[i].model.sharedModel.getSource().includes(part)) {
                cells[i].node.setAttribute("data-dfl-cell", String(i)); return i; } }
            return -1; }""", source_part)
        assert found >= 0, f"{self.name}: no cell contains {source_part!r}"
        locator = self.page.locator(f"[data-dfl-cell='{found}']")
        locator.scroll_into_view_if_needed(timeout=10_000)
        return locator

    def kernel(self, code: str, timeout: float = 60) -> dict[str, Any]:
        """Run ``code`` in the notebook's kernel: ``{"text": stdout, "png": [base64 images], "error": ...}``."""
        out = self.page.evaluate(_EXECUTE, [code, int(timeout * 1000)])
        assert out["error"] is None, f"{self.name}: kernel check failed: {out['error']}"
        return out
