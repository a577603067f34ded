"""Runs one notebook's cells inside the grading sandbox and reports each cell as one JSON line on stdout.

Started by the grader as ``python -I runner.py JOB.json`` (a file, not a module: it imports nothing from the
toolkit, so it starts fast). It applies the limits in the job (memory, CPU time, processes, file size), drops root
to the job's uid, copies the submission's folder into the writable work folder, starts a fresh kernel there and
runs the cells one by one with a time limit each. It keeps only what grading needs from the outputs: errors and
the answers of check calls. Everything it writes is read by the grader as untrusted data.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from typing import Any

ANSWER_MIMES = ("application/vnd.dfl.answer+json", "application/vnd.dfl.reference+json")
MAX_ANSWER_BYTES = 48 * 2**20  # all answers of one run
TIMEOUT_ENAME = "CellTimeout"


def apply_limits(limits: dict[str, Any]) -> None:
    """rlimits from the job, then (when started as root) drop to the job's uid and gid for good."""
    pairs = {"data_bytes": resource.RLIMIT_DATA, "address_bytes": resource.RLIMIT_AS,
             "cpu_seconds": resource.RLIMIT_CPU, "processes": resource.RLIMIT_NPROC,
             "file_bytes": resource.RLIMIT_FSIZE, "open_files": resource.RLIMIT_NOFILE}
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in pairs.items():
        if limits.get(key):
            value = int(limits[key])
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
    uid = limits.get("uid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.geteuid() == 0 or os.getegid() == 0:
            raise SystemExit("could not drop root")


def _copy_input(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s) and not os.path.islink(s):
            shutil.copytree(s, d, symlinks=True, dirs_exist_ok=True)
        elif os.path.isfile(s) and not os.path.islink(s):
            shutil.copyfile(s, d)


def _client_class() -> type:
    from nbclient import NotebookClient

    class Client(NotebookClient):
        """Keeps only errors and check answers of each cell (no output flood can fill the runner's memory)."""

        answers: list[Any]
        answer_bytes = 0

        def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> None:
            msg_type, content = msg.get("msg_type"), msg.get("content") or {}
            if msg_type in ("display_data", "execute_result"):
                data = content.get("data") or {}
                for mime in ANSWER_MIMES:
                    if mime in data:
                        size = len(json.dumps(data[mime]))
                        Client.answer_bytes += size
                        if Client.answer_bytes <= MAX_ANSWER_BYTES:
                            self.answers.append(data[mime])
            elif msg_type == "error":
                outs.append({"ename": str(content.get("ename", ""))[:200],
                             "evalue": str(content.get("evalue", ""))[:2000]})
            return None

    return Client


def run(job: dict[str, Any], emit: Any) -> None:
    """Execute ``job["cells"]`` in order and ``emit`` one event per cell."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    work = job["work"]
    if job.get("input"):
        _copy_input(job["input"], work)
    for folder in job.get("make_dirs", []):
        os.makedirs(folder, exist_ok=True)
    for src, dst in job.get("copy_files", []):
        if os.path.isfile(src):
            shutil.copyfile(src, dst)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c["source"]) for c in job["cells"]]
    timeout = float(job["timeout"])
    client = _client_class()(nb, timeout=int(timeout), interrupt_on_timeout=True, allow_errors=True,
                             error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "time limit", "traceback": []},
                             kernel_name="python3", resources={"metadata": {"path": work}},
                             startup_timeout=int(job.get("startup_timeout", 120)))
    stopped = ""  # why the remaining cells cannot run
    started = time.monotonic()
    try:
        with client.setup_kernel():
            _hidden_cell(client, QUIET, 30)
            emit({"event": "kernel", "seconds": round(time.monotonic() - started, 2)})
            # the notebook's time counts from a ready kernel: a slow start on a busy machine is not the student's
            deadline = time.monotonic() + float(job["notebook_timeout"])
            for i, cell in enumerate(nb.cells):
                left = deadline - time.monotonic()
                if stopped or left <= 1:
                    emit({"event": "cell", "index": i, "status": "skipped",
                          "reason": stopped or "notebook time limit"})
                    continue
                client.timeout = int(max(1, min(timeout, left)))
                client.answers = []
                t0 = time.monotonic()
                status, ename, evalue = "ok", "", ""
                try:
                    client.execute_cell(cell, i)
                    errors = [o for o in cell.outputs if "ename" in o]
                    if errors:
                        status, ename, evalue = "error", errors[0]["ename"], errors[0]["evalue"]
                    if ename == TIMEOUT_ENAME or time.monotonic() - t0 >= client.timeout:
                        status, ename, evalue = "timeout", "", ""
                except DeadKernelError:
                    status, stopped = "dead", "the kernel died"
                seconds = round(time.monotonic() - t0, 2)
                event = {"event": "cell", "index": i, "status": status, "ename": ename, "evalue": evalue,
                         "seconds": seconds, "limit": client.timeout, "answers": client.answers}
                if status == "dead":
                    event["exit"] = _exit_status(client)
                emit(event)
                if status == "timeout" and not _responds(client):
                    stopped = "the kernel did not stop after the time limit"
    except DeadKernelError:
        emit({"event": "stopped", "reason": "the kernel died", "exit": _exit_status(client)})
    except Exception as err:  # the kernel did not start, or nbclient failed: the grader reads the rest as not run
        emit({"event": "stopped", "reason": f"{type(err).__name__}: {str(err)[:500]}"})
    emit({"event": "done", "seconds": round(time.monotonic() - started, 2)})


# Run before the first cell. Printed text is never graded (the client drops it), but a loop that prints fills the
# kernel's memory: IPython 9 keeps every line a cell prints or displays in ``history_manager.outputs``, and text
# printed faster than the kernel sends it piles up in its buffer. With a memory limit the kernel then crashes or
# drops its messages, and a cell that should meet the time limit reads as "ok" with no answers. So nothing is kept
# in that history, and past a budget the text is dropped inside the kernel, where it is made.
QUIET = """
import sys as _dfl_sys


class _DflForget(dict):
    def __contains__(self, key):
        return False

    def __missing__(self, key):
        return []


class _DflCappedStream:
    def __init__(self, stream, budget):
        self._dfl_stream, self._dfl_left = stream, budget

    def write(self, text):
        if self._dfl_left > 0:
            self._dfl_left -= len(text)
            return self._dfl_stream.write(text)
        return len(text)

    def __getattr__(self, name):
        return getattr(self._dfl_stream, name)


if hasattr(get_ipython().history_manager, "outputs"):
    get_ipython().history_manager.outputs = _DflForget()
_dfl_sys.stdout = _DflCappedStream(_dfl_sys.stdout, 2**20)
_dfl_sys.stderr = _DflCappedStream(_dfl_sys.stderr, 2**20)
del _dfl_sys, _DflForget, _DflCappedStream
"""


def _hidden_cell(client: Any, source: str, seconds: int) -> bool:
    """Run ``source`` in the kernel outside the job's cells; whether it finished within ``seconds``."""
    import nbformat

    probe = nbformat.v4.new_code_cell(source)
    saved, client.timeout = client.timeout, seconds
    try:
        client.nb.cells.append(probe)
        t0 = time.monotonic()
        client.execute_cell(probe, len(client.nb.cells) - 1)
        return time.monotonic() - t0 < seconds and not any("ename" in o for o in probe.outputs)
    except Exception:
        return False
    finally:
        client.nb.cells.pop()
        client.timeout = saved


def _responds(client: Any) -> bool:
    """Whether the kernel runs a trivial cell within 10 s after an interrupted one."""
    return _hidden_cell(client, "pass", 10)


def _exit_status(client: Any) -> int | None:
    try:
        return client.km.provisioner.process.poll()
    except Exception:
        return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:  # the grader's check that a sandbox works: limits, uid, python, nbclient
        apply_limits(json.loads(argv[1]) if len(argv) > 1 else {})
        import importlib.util

        ok = importlib.util.find_spec("nbclient") is not None and importlib.util.find_spec("ipykernel") is not None
        print(json.dumps({"uid": os.getuid(), "nbclient": ok}))
        return 0
    with open(argv[0]) as f:
        job = json.load(f)
    apply_limits(job.get("limits", {}))
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.set_inheritable(results.fileno(), False)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # the kernel's stray output (and a forger's prints to fd 1) stays out of the results
    os.dup2(devnull, 2)
    run(job, lambda event: results.write(json.dumps(event) + "\n"))
    results.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
