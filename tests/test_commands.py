"""The README's two commands, CI's entry point and the command line."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
needs_venv = pytest.mark.skipif(not (ROOT / ".venv" / ".dfl-installed").exists() or shutil.which("make") is None,
                                reason="runs only inside the venv that `make test` creates")


def test_readme_shows_both_commands_and_ci_calls_the_test_one():
    assert re.search(r"^make lab$", README, re.M) and re.search(r"^make test$", README, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec make test$", ci, re.M)
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_lock_pins_the_working_torch_pair_and_everything_else():
    lock = (ROOT / "requirements-lock.txt").read_text().splitlines()
    pins = [line for line in lock if line and not line.startswith("#")]
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins
    assert all("==" in line for line in pins)
    env = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in env and "-r requirements-lock.txt" in env


@needs_venv
def test_setup_is_up_to_date_so_commands_skip_the_install():
    assert subprocess.run(["make", "--question", "setup"], cwd=ROOT).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_venv
def test_make_lab_starts_jupyterlab_headless():
    port, token = free_port(), "dfltest"
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "lab", f"LAB_ARGS={args}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, answer = time.time() + 90, None
        while time.time() < deadline and answer is None and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=2) as r:
                    answer = r.read().decode()
            except OSError:
                time.sleep(1)
        assert answer is not None, "JupyterLab did not answer within 90 s"
        assert "00_setup_and_tour.ipynb" in answer  # it serves the notebooks folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_doctor_command_reports_versions():
    out = subprocess.run([sys.executable, "-m", "dfl_toolkit", "doctor", "--no-data"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^torch\s+\d+\.\d+", out.stdout, re.M) and "device" in out.stdout
