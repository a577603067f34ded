"""RayExecutor (issue 28) on a local Ray cluster of 2 CPUs: the same trials as SequentialExecutor, faults (a worker
killed mid-evaluation, the driver killed, the cluster lost), the command line, and the lazy import.

The module's cluster is a `ray start --head --block` process on the loopback address, stopped at the end; tests
that need a cluster of their own (the lost one) start another. Ray is in the test lock (the `distributed` extra).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

# Ray on the loopback address only (read when Ray is imported), no usage report, no token to hand around on this
# one-machine test cluster
ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
os.environ.update(ENV)
ray = pytest.importorskip("ray", reason="Ray is the optional `distributed` extra (in the test lock)")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module


from dfl_toolkit.__main__ import main  # noqa: E402
from dfl_toolkit.errors import ClusterLostError, DFLError, UsageError  # noqa: E402
from dfl_toolkit.nas import (  # noqa: E402
    Benchmark,
    CellSpace,
    RayExecutor,
    RegularizedEvolution,
    SequentialExecutor,
    TabularEvaluator,
    TrainBudget,
    TrainEvaluator,
    search,
)
from dfl_toolkit.nas.benchmark.build import build  # noqa: E402
from dfl_toolkit.runtime import derive_seed  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
SPACE = CellSpace()
TINY = {"data_options": {"train_size": 200, "image_size": 8}, "skeleton": {"channels": 4, "cells_per_stage": 1},
        "epochs": 1}  # a training run of about a second; TINY_FLAGS says the same on the command line
TINY_FLAGS = ["--train-size", "200", "--image-size", "8", "--channels", "4", "--cells-per-stage", "1", "--epochs", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(tmp / f"ray-head-{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([RAY, "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                             "--include-dashboard=false", "--disable-usage-stats", "--object-store-memory",
                             str(200 * 2**20)], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV},
                            start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited: {(tmp / f'ray-head-{port}.log').read_text()[-2000:]}")
        try:  # the head answers once `ray status` does
            subprocess.run([RAY, "status", "--address", address], check=True, capture_output=True, timeout=30,
                           env={**os.environ, **ENV})
            return proc, address
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            time.sleep(1)
    proc.kill()
    raise RuntimeError("the test Ray cluster did not start in 90 s")


def _stop_cluster(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes when terminated
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    proc, address = _start_cluster(tmp_path_factory.mktemp("ray"))
    yield address
    _stop_cluster(proc)


def _trials(result):
    return [(t.number, t.arch, t.result, t.cost, t.fidelity) for t in result.trials]


class Sleepy:
    """val_acc from the cell's ops; the first evaluation of ``slow_arch`` writes its worker's pid to ``pid_file``
    and sleeps, so a test can kill that worker mid-evaluation (the retry finds the file and does not sleep)."""

    def __init__(self, pid_file: str, slow_arch: str, log: str):
        self.pid_file, self.slow_arch, self.log = pid_file, slow_arch, log

    def __call__(self, arch, seed):
        key = SPACE.to_str(arch)
        with open(self.log, "a") as f:
            f.write(f"{key} {os.getpid()}\n")
        if key == self.slow_arch and not os.path.exists(self.pid_file):
            Path(self.pid_file + ".tmp").write_text(str(os.getpid()))
            os.replace(self.pid_file + ".tmp", self.pid_file)
            time.sleep(120)
        score = sum(op == "nor_conv_3x3" for op in arch) / 6
        return {"val_acc": score, "cost": 1.0}


def _kill_when_written(pid_file: Path, timeout: float = 120) -> threading.Thread:
    def kill():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not pid_file.exists():
            time.sleep(0.1)
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_importing_the_toolkit_never_imports_ray():
    code = ("import sys, dfl_toolkit, dfl_toolkit.nas, dfl_toolkit.nas.search, dfl_toolkit.__main__\n"
            "from dfl_toolkit.nas import RayExecutor\nRayExecutor()\nprint('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_without_ray_installed_the_executor_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(UsageError, match=r"pip install 'dfl_toolkit\[distributed\]'"):
        list(RayExecutor().map(lambda arch, seed: {}, []))


@pytest.mark.parametrize("kwargs, message", [
    ({"address": "localhost"}, "address is 'auto'"),
    ({"workers": 0}, "workers must be an int >= 1"),
    ({"retries": -1}, "retries must be an int >= 0"),
    ({"gpus": -1}, "gpus is what each task asks for"),
    ({"threads": 0}, "threads must be a positive int"),
])
def test_bad_options_are_refused_when_made(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RayExecutor(**kwargs)


def test_no_cluster_at_the_address_is_one_clear_error_at_once():
    t0 = time.monotonic()
    with pytest.raises(ClusterLostError, match=r"no Ray cluster answers at 127.0.0.1:\d+: start one there"):
        list(RayExecutor(f"127.0.0.1:{_free_port()}").map(lambda arch, seed: {}, [(None, 0, None)]))
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("flags, message", [
    (["--address", "auto"], "--address goes with --executor ray"),
    (["--gpus-per-task", "1", "--cpus-per-task", "2"], "--cpus-per-task, --gpus-per-task go with --executor ray"),
    (["--executor", "ray", "--gpus-per-task", "-1"], "--gpus-per-task is what each Ray task asks for"),
    (["--executor", "ray", "--workers", "0"], "--workers is the number of evaluations run at once"),
])
def test_bad_executor_flags_are_refused(flags, message, capsys):
    assert main(["search", "--table", "nb201_mnist14", "--budget", "4", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_table_search_on_ray_gives_the_same_trials_as_a_sequential_one(cluster):
    evaluator = TabularEvaluator(Benchmark.load())
    kwargs = {"budget": 30, "seed": 7, "batch_size": 4, "progress": False}
    alone = search(SPACE, RegularizedEvolution(population_size=8, sample_size=3), evaluator,
                   executor=SequentialExecutor(),
                   **kwargs)
    ray_executor = RayExecutor(cluster)
    try:
        on_ray = search(SPACE, RegularizedEvolution(population_size=8, sample_size=3), evaluator, executor=ray_executor,
                        **kwargs)
    finally:
        ray_executor.close()
    assert _trials(on_ray) == _trials(alone)


def test_a_training_search_on_ray_gives_the_same_trials_as_a_sequential_one(cluster):
    evaluator = TrainEvaluator(SPACE, TrainBudget(**TINY))
    kwargs = {"budget": 4, "seed": 3, "batch_size": 2, "progress": False}
    alone = search(SPACE, RegularizedEvolution(population_size=2, sample_size=2), evaluator, **kwargs)
    ray_executor = RayExecutor(cluster)
    try:
        on_ray = search(SPACE, RegularizedEvolution(population_size=2, sample_size=2), evaluator, executor=ray_executor,
                        **kwargs)
    finally:
        ray_executor.close()
    timing = ("train_time", "latency")  # wall-clock measurements: the only fields that may differ

    def same(trial):
        return trial.number, trial.arch, {k: v for k, v in trial.result.items() if k not in timing}
    assert [same(t) for t in on_ray.trials] == [same(t) for t in alone.trials]
    assert all(not t.failed and 0 < t.result["val_acc"] <= 1 for t in on_ray.trials)


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_mid_evaluation_is_retried_then_recorded_as_failed(cluster, tmp_path, retries):
    budget, seed = 8, 5
    plan = search(SPACE, RegularizedEvolution(population_size=4, sample_size=2), lambda a, s: {"val_acc": 0.5},
                  budget=budget, seed=seed, batch_size=2, progress=False)
    slow = plan.trials[2].arch  # a cell asked in the second batch
    pid_file, log = tmp_path / "pid", tmp_path / "calls.log"
    evaluator = Sleepy(str(pid_file), slow, str(log))
    killer = _kill_when_written(pid_file)
    ray_executor = RayExecutor(cluster, retries=retries)
    try:
        result = search(SPACE, RegularizedEvolution(population_size=4, sample_size=2), evaluator, budget=budget,
                        seed=seed, batch_size=2, progress=False, executor=ray_executor)
    finally:
        ray_executor.close()
    killer.join()
    assert len(result.trials) == budget
    trial = next(t for t in result.trials if t.arch == slow)
    killed = int(pid_file.read_text())
    calls = [line.split() for line in log.read_text().splitlines()]
    if retries:  # run again in another worker, and the trial is as if nothing happened
        assert not trial.failed and trial.result["val_acc"] == sum(op == "nor_conv_3x3" for op in
                                                                   SPACE.from_str(slow)) / 6
        assert [pid for arch, pid in calls if arch == slow][0] == str(killed)
        assert len([1 for arch, _ in calls if arch == slow]) == 2
    else:  # no retry: a failed trial saying why; the search went on
        assert trial.failed and "retries" in trial.result["error"] and "Worker" in trial.result["error"]
        assert sum(t.failed for t in result.trials) == sum(t.arch == slow for t in result.trials)


def test_resources_the_cluster_lacks_are_refused_when_it_starts(cluster):
    with pytest.raises(UsageError, match=r"each task asks for 1 GPUs \(gpus=\), but the Ray cluster has 0 in all"):
        RayExecutor(cluster, gpus=1).start()
    with pytest.raises(UsageError, match=r"each task asks for 3 CPUs \(cpus=\), but the Ray cluster has 2 in all"):
        RayExecutor(cluster, cpus=3).start()
    assert not ray.is_initialized()  # closed again


def test_an_evaluator_the_workers_cannot_import_stops_the_search_with_its_reason(cluster, tmp_path, monkeypatch):
    (tmp_path / "my_evaluators.py").write_text("class Constant:\n    def __call__(self, arch, seed):\n"
                                               "        return {'val_acc': 0.5}\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, not on the workers
    import my_evaluators

    checkpoint = tmp_path / "search.json"
    ray_executor = RayExecutor(cluster)
    try:
        with pytest.raises(UsageError, match="could not run on the Ray workers: .*No module named 'my_evaluators'; "
                                             "an evaluator defined in your own module"):
            search(SPACE, RegularizedEvolution(), my_evaluators.Constant(), budget=4, batch_size=2, progress=False,
                   executor=ray_executor, checkpoint=checkpoint)
    finally:
        ray_executor.close()
    assert not checkpoint.exists() or not _trials_in(checkpoint)  # nothing recorded as failed: a rerun retries


DRIVER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from dfl_toolkit.nas import CellSpace, RayExecutor, RegularizedEvolution, search

    class Logged:  # slow enough to be killed mid-search; logs every evaluation it starts
        def __init__(self, log):
            self.log = log

        def __call__(self, arch, seed):
            with open(self.log, "a") as f:
                f.write(CellSpace().to_str(arch) + f" {seed}\\n")
            time.sleep(0.4)
            return {"val_acc": sum(op == "nor_conv_3x3" for op in arch) / 6 + (seed % 1000) / 1e6, "cost": 1.0}

    address, checkpoint, log = sys.argv[1], sys.argv[2], sys.argv[3]
    executor = RayExecutor(None if address == "local" else address)
    try:
        result = search(CellSpace(), RegularizedEvolution(population_size=6, sample_size=3), Logged(log), budget=16,
                        seed=11, batch_size=2, checkpoint=checkpoint, progress=False, executor=executor)
    finally:
        executor.close()
    print("best", result.best.arch, result.best.result["val_acc"])
""")


def _trials_in(checkpoint: Path) -> list[dict]:
    return json.loads(checkpoint.read_text())["trials"]


def test_a_driver_killed_mid_search_resumes_and_ends_as_an_uninterrupted_run(cluster, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, **ENV}
    whole = tmp_path / "whole.json"
    subprocess.run([sys.executable, str(script), cluster, str(whole), str(tmp_path / "whole.log")], check=True,
                   env=env, capture_output=True, timeout=300)
    cut, log = tmp_path / "cut.json", tmp_path / "cut.log"
    driver = subprocess.Popen([sys.executable, str(script), cluster, str(cut), str(log)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (cut.exists() and len(_trials_in(cut)) >= 6):
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(30)
    finished = {f"{t['arch']} {derive_seed(11, t['number'])}" for t in _trials_in(cut)}  # as the log has them
    assert 6 <= len(finished) < 16, "the driver should die mid-search"
    started_before = len(log.read_text().splitlines())
    subprocess.run([sys.executable, str(script), cluster, str(cut), str(log)], check=True, env=env,
                   capture_output=True, timeout=300)
    assert _trials_in(cut) == _trials_in(whole)  # the same 16 trials, results and costs
    rerun = log.read_text().splitlines()[started_before:]
    assert not finished & set(rerun)  # nothing finished before the kill was evaluated again
    assert len(rerun) <= 16 - len(finished) + 2  # only what was left (and what was in flight: one batch)


def test_a_lost_cluster_is_one_clear_error_naming_the_checkpoint(tmp_path):
    proc, address = _start_cluster(tmp_path)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    checkpoint = tmp_path / "search.json"
    try:
        driver = subprocess.Popen([sys.executable, str(script), address, str(checkpoint), str(tmp_path / "log")],
                                  env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (checkpoint.exists() and _trials_in(checkpoint)):
            time.sleep(0.05)
        lost_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)  # the head and everything it started, at once
        _, err = driver.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if driver.poll() is None:
            driver.kill()
    assert time.monotonic() - lost_at < 30
    assert driver.returncode != 0
    assert f"the Ray cluster at {address} is gone" in err
    assert f"are saved in the checkpoint {checkpoint}: run the same search again" in err


def test_the_command_line_runs_a_search_and_a_build_on_a_local_ray_instance(tmp_path, capsys):
    """No --address: a local Ray instance with --workers CPUs, shut down at the end; the same output as the
    process executor."""
    args = ["search", "--table", "nb201_mnist14", "--budget", "20", "--seed", "4", "--workers", "2", "--top", "3"]
    assert main(args) == 0
    process_out = capsys.readouterr().out
    assert main([*args, "--executor", "ray"]) == 0
    assert capsys.readouterr().out == process_out
    assert not ray.is_initialized()  # shut down

    def rows(out):
        return [{k: v for k, v in r.items() if k not in ("train_time", "latency", "finished_at")}
                for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())]
    flags = [*TINY_FLAGS, "--seeds", "0", "--limit", "2"]
    assert main(["benchmark", "build", "--out", str(tmp_path / "alone"), *flags]) == 0
    assert main(["benchmark", "build", "--out", str(tmp_path / "ray"), *flags, "--executor", "ray",
                 "--workers", "2"]) == 0
    assert len(rows(tmp_path / "ray")) == 2
    assert sorted(rows(tmp_path / "ray"), key=str) == sorted(rows(tmp_path / "alone"), key=str)


def test_a_build_does_not_write_what_failed_and_says_to_rerun(tmp_path, monkeypatch):
    """An evaluation whose worker is lost (retries spent) is left out of results.jsonl, so a rerun retries it."""
    import dfl_toolkit.nas.executors as executors

    def lost(self, evaluator, jobs):
        for i, (arch, seed, fidelity) in enumerate(jobs):
            yield i, ({"failed": True, "error": "WorkerCrashedError after 2 retries: the worker died"}, 1.0) if i == 0 \
                else executors.timed_call(evaluator, arch, seed, fidelity)
    monkeypatch.setattr(executors.SequentialExecutor, "map", lost)
    budget = TrainBudget(**TINY)
    with pytest.raises(DFLError, match=r"1 of 2 evaluations failed and were not written .*WorkerCrashedError"):
        list(build(tmp_path, budget, [0], limit=2, progress=False))
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 1
