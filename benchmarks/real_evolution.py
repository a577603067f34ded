"""A real (non-tabular) evolution search: every architecture is trained on MNIST-5k on the CPU.

Runs `dfl search` (regularized evolution, real training) three ways and prints a table:
1. uninterrupted, timed;
2. killed with SIGKILL once K trials are in its checkpoint;
3. the same command again, which resumes from the checkpoint.
Then checks that (2)+(3) evaluated nothing twice and ended with exactly the trials of (1).

    python benchmarks/real_evolution.py            # full: 60 evaluations, 1,000 images, 3 epochs
    DFL_QUICK=1 python benchmarks/real_evolution.py  # quick: 20 evaluations, 500 images, 2 epochs
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dfl_toolkit as dfl


def command(checkpoint: Path, budget: int, train_size: int, epochs: int) -> list[str]:
    return [sys.executable, "-m", "dfl_toolkit", "search", "--strategy", "evolution", "--budget", str(budget),
            "--seed", "0", "--dataset", "mnist5k", "--image-size", "14", "--train-size", str(train_size),
            "--epochs", str(epochs), "--batch-size", "32", "--lr", "0.05", "--channels", "8",
            "--checkpoint", str(checkpoint)]


def trials(path: Path) -> list[dict]:
    return json.loads(path.read_text())["trials"] if path.exists() else []


def main() -> None:
    budget, train_size, epochs = dfl.by_mode(full=(60, 1000, 3), quick=(20, 500, 2))
    kill_at = budget // 2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        straight, killed = Path(tmp) / "straight.json", Path(tmp) / "killed.json"
        t0 = time.perf_counter()
        subprocess.run(command(straight, budget, train_size, epochs), check=True, env=env, capture_output=True)
        t_straight = time.perf_counter() - t0

        t0 = time.perf_counter()
        proc = subprocess.Popen(command(killed, budget, train_size, epochs), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while len(trials(killed)) < kill_at and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        saved = len(trials(killed))
        subprocess.run(command(killed, budget, train_size, epochs), check=True, env=env, capture_output=True)
        t_resumed = time.perf_counter() - t0
        a, b = trials(straight), trials(killed)
        same = [(t["arch"], t["result"]["val_acc"]) for t in a] == [(t["arch"], t["result"]["val_acc"]) for t in b]
        best = max(a, key=lambda t: t["result"]["val_acc"])
    print(f"\nregularized evolution, real training on MNIST-5k 14x14 ({train_size} images, {epochs} epochs), "
          f"{budget} evaluations, mode={'quick' if dfl.quick_mode() else 'full'}")
    print(f"{'run':<34}{'wall s':>8}")
    print(f"{'uninterrupted':<34}{t_straight:>8.0f}")
    print(f"{f'killed at {saved} trials + resumed':<34}{t_resumed:>8.0f}")
    print(f"resumed run identical to uninterrupted: {same}")
    print(f"best: val_acc {best['result']['val_acc']:.4f} test_acc {best['result']['test_acc']:.4f} {best['arch']}")


if __name__ == "__main__":
    main()
