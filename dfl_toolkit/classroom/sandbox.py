"""The grading sandbox: each notebook runs in its own bubblewrap (``bwrap``) container.

The container sees only what a notebook needs, read-only: the system (``/usr``, ``/etc``), the Python install and
its virtual environment, the toolkit's package and its data folder; plus a private writable ``/tmp`` and home
(size-capped in-memory file systems) where the runner copies the submission's folder. It has no network (its own
empty network namespace), its own process and IPC namespaces, and no view of the source notebooks, the other
submissions or the grader's output folder. Started as root, the runner drops to a uid of its own (one per job
slot and grader process, :func:`sandbox_uid`) so that the process limit holds; started as a user, bwrap uses a user
namespace. Memory, CPU time, processes and file size are capped with rlimits; the grader kills the whole container
at the notebook's time limit.

Without bwrap (not installed, or the kernel refuses its namespaces) grading can run with ``mode="none"``: the
same runner and limits, as the grader's own user, with no isolation. That mode is only used when asked for (or in
``auto`` mode, with a loud warning), and never when ``DFL_REQUIRE_SANDBOX=1``.

Example:
    >>> box = detect("auto")
    >>> box.mode, box.describe()
    ('bwrap', 'bubblewrap 0.8.0 as root: ...')
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DFLError

RUNNER = Path(__file__).with_name("runner.py")
PACKAGE = Path(__file__).resolve().parents[1]
MAX_JOBS = 64


def sandbox_uid(slot: int) -> int:
    """The uid job slot ``slot`` runs as when the grader is root: unused by the system and distinct per grader
    process, so that two graders on one machine do not share a process limit (it counts per uid)."""
    return 200_000 + MAX_JOBS * (os.getpid() % 100_000) + slot
HOME, WORK = "/home/student", "/home/student/work"
MAX_RESULT_BYTES = 64 * 2**20
MODES = ("auto", "bwrap", "none")


class SandboxError(DFLError, RuntimeError):
    """No sandbox can run (bwrap missing or refused) where one is required; the message says how to get one."""


@dataclass(frozen=True)
class Limits:
    """What one notebook may use: seconds per cell and per notebook, memory (bytes) and processes."""

    cell_seconds: float = 120
    notebook_seconds: float = 480
    memory_bytes: int = 4 * 2**30
    processes: int = 256
    file_bytes: int = 256 * 2**20
    tmp_bytes: int = 512 * 2**20  # each of /tmp and the home folder (in memory)
    input_bytes: int = 256 * 2**20  # of the student's folder copied in; larger files are left out


def copy_folder(src: Path, dst: Path, budget: int) -> list[str]:
    """Copy the regular files of ``src`` (no links, devices or sockets) while they fit in ``budget`` bytes;
    returns the files left out."""
    left_out = []
    for root, dirs, files in os.walk(src):  # linked folders are not entered
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        (dst / Path(root).relative_to(src)).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if size > budget:
                left_out.append(str(path.relative_to(src)))
                continue
            budget -= size
            shutil.copyfile(path, dst / path.relative_to(src))
    return left_out


@dataclass
class RunResult:
    """What came back from one sandboxed run: the runner's events (untrusted data) and how it ended."""

    events: list[dict[str, Any]]
    returncode: int | None
    killed: bool
    seconds: float
    stderr: str = ""
    truncated: bool = False


@dataclass(frozen=True)
class Sandbox:
    """The way notebooks are isolated: ``mode`` is "bwrap" or "none"; ``reason`` says why and how."""

    mode: str
    reason: str
    binds: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        return self.reason

    @property
    def isolated(self) -> bool:
        return self.mode == "bwrap"


def _data_dirs() -> list[Path]:
    from ..runtime import data_dir

    dirs = [data_dir(), PACKAGE.parent / "data"]
    return [d.resolve() for d in dirs if d.is_dir()]


def _roots() -> list[str]:
    """Read-only folders a kernel needs: Python, the venv, the toolkit and its data (/usr and /etc apart)."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix, str(PACKAGE),
             *(str(d) for d in _data_dirs())}
    paths |= {p for p in sys.path if p and Path(p).is_dir() and "site-packages" in p}
    real = sorted({str(Path(p).resolve()) for p in paths} | {str(Path(p).absolute()) for p in paths})
    real = [p for p in real if p != "/" and not p.startswith(("/usr/", "/etc/")) and p not in ("/usr", "/etc")]
    return [p for p in real if not any(p.startswith(q + "/") for q in real if q != p)]


def bwrap_args(binds: list[str], hidden: list[str], limits: Limits, env: dict[str, str]) -> list[str]:
    """The bwrap command line (up to the program) for one notebook."""
    args = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    for top in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
        p = Path("/") / top
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    # the private filesystems before the binds: a venv or clone under /tmp is then bound over the private /tmp
    # instead of being covered by it (bwrap mounts in order)
    args += ["--dev", "/dev", "--proc", "/proc",
             "--size", str(limits.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp",
             "--size", str(64 * 2**20), "--perms", "1777", "--tmpfs", "/dev/shm",
             "--size", str(limits.tmp_bytes), "--perms", "1777", "--tmpfs", HOME]
    parents = sorted({str(a) for b in binds for a in Path(b).parents if str(a) != "/"}, key=lambda s: s.count("/"))
    for d in parents:  # bwrap makes missing parents 0700: make them traversable for the dropped uid
        args += ["--perms", "0755", "--dir", d]
    for b in binds:
        args += ["--ro-bind", b, b]
    for h in hidden:  # a source, submissions or output folder inside a bound one: cover it
        if any(h == b or h.startswith(b + "/") for b in binds + ["/usr", "/etc"]):
            args += ["--tmpfs", h]
    cpu = Path("/sys/devices/system/cpu")
    if cpu.is_dir():  # torch reads the CPU list here
        args += ["--ro-bind", str(cpu), str(cpu)]
    args += ["--ro-bind", "{job}", "/job", "--chdir", HOME]
    for k, v in env.items():
        args += ["--setenv", k, v]
    return args


def environment(home: str, tmp: str) -> dict[str, str]:
    """The kernel's whole environment: fixed paths, one thread, the toolkit's own settings."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": home,
           "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "TMPDIR": tmp,
           "PYTHONPATH": str(PACKAGE.parent), "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": f"{tmp}/matplotlib", "IPYTHONDIR": f"{tmp}/ipython",
           "JUPYTER_RUNTIME_DIR": f"{tmp}/jupyter-runtime", "JUPYTER_CONFIG_DIR": f"{tmp}/jupyter-config",
           "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env["DFL_DATA_DIR"] = str(_data_dirs()[0]) if _data_dirs() else ""
    env.update({k: v for k, v in os.environ.items() if k.startswith("DFL_") and k not in env
                and k != "DFL_DATA_DIR" and k != "DFL_REQUIRE_SANDBOX"})
    return {k: v for k, v in env.items() if v}


def _probe_bwrap() -> tuple[bool, str]:
    """Whether bwrap runs the runner's probe (as the dropped uid when root); the reason when it does not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bubblewrap (bwrap) is not installed; on Debian/Ubuntu: apt-get install bubblewrap"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip() or "bwrap"
    limits = {"uid": sandbox_uid(0)} if os.geteuid() == 0 else {}
    with tempfile.TemporaryDirectory() as job:
        os.chmod(job, 0o755)
        args = [a.replace("{job}", job) for a in bwrap_args(_roots(), [], Limits(), environment(HOME, "/tmp"))]
        cmd = [*args, sys.executable, "-I", str(RUNNER), "--probe", json.dumps(limits)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return False, f"{version} did not answer within 120 s"
    try:
        info = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = (p.stderr or p.stdout).strip().splitlines()
        hint = "" if os.geteuid() == 0 else " (are unprivileged user namespaces allowed? sysctl " \
                                            "kernel.unprivileged_userns_clone / user.max_user_namespaces)"
        return False, f"{version} failed: {err[-1] if err else f'exit {p.returncode}'}{hint}"
    if not info.get("nbclient"):
        return False, f"{version} runs, but Python inside it cannot find nbclient/ipykernel"
    who = (f"as root: each notebook runs as uid {sandbox_uid(0)}+slot, no user namespace needed" if os.geteuid() == 0
           else f"as uid {os.getuid()}, in a user namespace")
    return True, f"{version} {who}; no network, read-only system, private /tmp and home"


def detect(mode: str = "auto") -> Sandbox:
    """The sandbox to grade with. ``auto``: bwrap when it works, else none (``DFL_REQUIRE_SANDBOX=1``: an error);
    ``bwrap``: bwrap or an error; ``none``: no isolation (limits only), on purpose.

    Example:
        >>> detect("auto").mode
        'bwrap'
    """
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}; accepted: {', '.join(MODES)}")
    required = os.environ.get("DFL_REQUIRE_SANDBOX", "") not in ("", "0")
    if mode == "none":
        if required:
            raise SandboxError("--sandbox none refused: DFL_REQUIRE_SANDBOX=1 requires the bwrap sandbox")
        return Sandbox("none", "no sandbox (asked for): limits only; each notebook runs as the grader's user and "
                               "can read and write whatever that user can, and use the network")
    ok, why = _probe_bwrap()
    if ok:
        return Sandbox("bwrap", why, tuple(_roots()))
    if mode == "bwrap" or required:
        reason = "DFL_REQUIRE_SANDBOX=1" if required and mode == "auto" else "--sandbox bwrap"
        raise SandboxError(f"no sandbox for grading ({reason}): {why}")
    return Sandbox("none", f"NO SANDBOX: {why}. Notebooks run as the grader's user, with limits only: a "
                           f"submission can read and write whatever that user can, and use the network")


def _reader(stream: Any, sink: bytearray, state: dict[str, bool]) -> None:
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        if len(sink) + len(chunk) > MAX_RESULT_BYTES:
            state["truncated"] = True
            continue  # keep draining so the runner never blocks on a full pipe
        sink.extend(chunk)


class Runs:
    """The live sandboxed processes, so an interrupted grader can stop them all."""

    lock = threading.Lock()
    live: set[subprocess.Popen] = set()
    stopped = False

    @classmethod
    def stop(cls) -> None:
        """Kill every live sandbox, and start no new one in this process."""
        with cls.lock:
            cls.stopped = True
            for p in list(cls.live):
                _kill(p)


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.kill()
    except ProcessLookupError:
        pass


def run_job(box: Sandbox, job: dict[str, Any], input_dir: Path | None, limits: Limits, slot: int,
            hidden: list[str]) -> RunResult:
    """Run one job (cells to execute) with the runner in a fresh sandbox; never raises for what happens inside."""
    with tempfile.TemporaryDirectory(prefix="dfl-grade-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        jobdir = root / "job"
        jobdir.mkdir()
        inside = box.mode == "bwrap"
        home, tmpdir = (HOME, "/tmp") if inside else (str(root / "home"), str(root / "tmp"))
        work = WORK if inside else str(root / "home" / "work")
        if input_dir is not None:
            copy_folder(input_dir, jobdir / "input", limits.input_bytes)
        mpl = _font_cache()
        copy = [[str((Path("/job") if inside else jobdir) / "fonts" / f.name), f"{tmpdir}/matplotlib/{f.name}"]
                for f in mpl]
        if mpl:
            (jobdir / "fonts").mkdir()
            for f in mpl:
                shutil.copyfile(f, jobdir / "fonts" / f.name)
        cpu = int(limits.notebook_seconds + 120)
        full = {**job, "work": work, "input": str((Path("/job") if inside else jobdir) / "input")
                if input_dir is not None else "",
                "make_dirs": [f"{tmpdir}/matplotlib", f"{tmpdir}/ipython", f"{tmpdir}/jupyter-runtime", work],
                "copy_files": copy, "timeout": limits.cell_seconds, "notebook_timeout": limits.notebook_seconds,
                "limits": {"data_bytes": limits.memory_bytes, "address_bytes": limits.memory_bytes + 16 * 2**30,
                           "cpu_seconds": cpu, "processes": limits.processes if inside or os.geteuid() else 0,
                           "file_bytes": limits.file_bytes, "open_files": 1024,
                           "uid": sandbox_uid(slot) if inside and os.geteuid() == 0 else None}}
        (jobdir / "job.json").write_text(json.dumps(full))
        for p in [jobdir, *jobdir.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        env = environment(home, tmpdir)
        runner = [sys.executable, "-I", str(RUNNER), str((Path("/job") if inside else jobdir) / "job.json")]
        if inside:
            cmd = [a.replace("{job}", str(jobdir)) for a in bwrap_args(list(box.binds), hidden, limits, env)]
            cmd += runner
            env = {}
        else:
            for d in (home, tmpdir):
                os.makedirs(d, exist_ok=True)
            cmd = runner
        return _wait(cmd, env or None, cwd=str(root) if not inside else None,
                     wall=limits.notebook_seconds + 90)


def _wait(cmd: list[str], env: dict[str, str] | None, cwd: str | None, wall: float) -> RunResult:
    started = time.monotonic()
    out, err, state = bytearray(), bytearray(), {"truncated": False}
    with Runs.lock:
        if Runs.stopped:
            return RunResult([], None, True, 0.0, "grading was interrupted")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             cwd=cwd, start_new_session=True)
        Runs.live.add(p)
    readers = [threading.Thread(target=_reader, args=(p.stdout, out, state), daemon=True),
               threading.Thread(target=_reader, args=(p.stderr, err, {"truncated": False}), daemon=True)]
    for t in readers:
        t.start()
    killed = False
    try:
        p.wait(timeout=wall)
    except subprocess.TimeoutExpired:
        killed = True
        _kill(p)
        p.wait()
    finally:
        with Runs.lock:
            Runs.live.discard(p)
    for t in readers:
        t.join(timeout=10)
    events = []
    for line in bytes(out).decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return RunResult(events, p.returncode, killed, round(time.monotonic() - started, 2),
                     bytes(err[-4000:]).decode("utf-8", "replace"), state["truncated"])


def _font_cache() -> list[Path]:
    """matplotlib's font list, copied into each sandbox so that kernels do not rebuild it."""
    try:
        import matplotlib

        return sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))
    except Exception:
        return []
