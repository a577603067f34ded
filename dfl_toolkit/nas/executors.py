"""Where a batch of evaluations runs: in this process, in worker processes, or as tasks on a Ray cluster.

The search loop (and the benchmark build) hands an executor a list of jobs ``(arch, seed, fidelity)``; the
executor yields ``(job index, (result, cost))`` as each evaluation finishes, in any order, and the loop puts
them back in ask order. So every executor gives exactly the same trials for the same seed and batch size:
only the wall time differs.

- ``SequentialExecutor``: one at a time in this process (the default).
- ``ProcessExecutor(workers)``: a pool of worker processes on this machine.
- ``RayExecutor(address=None)``: one Ray task per evaluation, on a cluster or on a local Ray instance started
  for the run (``pip install 'dfl_toolkit[distributed]'``; see docs/distributed.md). Importing the toolkit
  never imports Ray.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol

from ..errors import ClusterLostError, UsageError
from ..runtime import check_threads
from .spaces.base import Arch

Evaluator = Callable[..., dict[str, Any]]  # (arch, seed) -> metrics; also (arch, seed, fidelity=name)
Job = tuple[Arch, int, str | None]  # (arch, seed, fidelity or None for the full one)
Done = tuple[int, tuple[dict[str, Any], float]]  # (job index, (result, cost))


class Executor(Protocol):
    """What the search loop needs from an executor."""

    name: str

    def map(self, evaluator: Evaluator, jobs: Sequence[Job]) -> Iterator[Done]: ...
    def close(self) -> None: ...


def timed_call(evaluator: Evaluator, arch: Arch, seed: int,
               fidelity: str | None = None) -> tuple[dict[str, Any], float]:
    """Evaluate one architecture: ``(result, cost)``, where cost is the result's ``cost`` or else the wall time.

    An exception is a failed trial (``{"failed": True, "error": "..."}``), not a crash of the search.
    """
    t0 = time.perf_counter()
    try:
        result = dict(evaluator(arch, seed) if fidelity is None else evaluator(arch, seed, fidelity=fidelity))
    except Exception as err:  # noqa: BLE001 - a broken architecture is a failed trial, not a crash
        result = {"failed": True, "error": f"{type(err).__name__}: {err}"}
    elapsed = time.perf_counter() - t0
    return result, float(result.pop("cost", elapsed))


class SequentialExecutor:
    """Evaluates one architecture at a time in this process."""

    name = "sequential"

    def map(self, evaluator: Evaluator, jobs: Sequence[Job]) -> Iterator[Done]:
        for i, job in enumerate(jobs):
            yield i, timed_call(evaluator, *job)

    def close(self) -> None:
        pass


_WORKER_EVALUATOR: Evaluator | None = None


def _init_worker(evaluator: Evaluator, threads: int) -> None:
    import torch

    global _WORKER_EVALUATOR
    torch.set_num_threads(threads)
    _WORKER_EVALUATOR = evaluator


def _worker_call(arch: Arch, seed: int, fidelity: str | None) -> tuple[dict[str, Any], float]:
    return timed_call(_WORKER_EVALUATOR, arch, seed, fidelity)


class ProcessExecutor:
    """Evaluates a batch in parallel worker processes on this machine (``threads`` torch threads each,
    unless the evaluator fixes its own count, as ``TrainEvaluator`` does).

    The evaluator is sent to each worker once.

    Example:
        >>> ex = ProcessExecutor(workers=2)
        >>> result = search(CellSpace(), RegularizedEvolution(), evaluator, budget=16, batch_size=2, executor=ex)
        >>> ex.close()
    """

    name = "process"

    def __init__(self, workers: int = 2, threads: int = 1):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise UsageError(f"workers is a number of processes: a positive int, got {workers!r}")
        check_threads(threads)
        self.workers, self.threads = workers, threads
        self._pool: ProcessPoolExecutor | None = None
        self._evaluator: Evaluator | None = None

    def map(self, evaluator: Evaluator, jobs: Sequence[Job]) -> Iterator[Done]:
        import multiprocessing as mp

        if self._pool is None or self._evaluator is not evaluator:
            self.close()
            self._pool = ProcessPoolExecutor(self.workers, mp.get_context("spawn"), _init_worker,
                                             (evaluator, self.threads))
            self._evaluator = evaluator
        futures = {self._pool.submit(_worker_call, *job): i for i, job in enumerate(jobs)}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:  # left early (an error, Ctrl-C): what has not started never will
            for f in futures:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


_RAY_EVALUATOR: tuple[str, Evaluator] | None = None  # in a Ray worker: the last evaluator it fetched, by object id


def _ray_evaluate(evaluator_ref: list, arch: Arch, seed: int, fidelity: str | None,
                  threads: int) -> tuple[dict[str, Any], float]:
    """One Ray task: a single evaluation with ``threads`` torch threads.

    The evaluator comes as ``[ObjectRef]`` (a bare ref would be fetched and unpickled again for every task: a
    table evaluator's table each time); a worker fetches it once and keeps it for the tasks that follow.
    """
    import ray
    import torch

    global _RAY_EVALUATOR
    key = evaluator_ref[0].hex()
    if _RAY_EVALUATOR is None or _RAY_EVALUATOR[0] != key:
        _RAY_EVALUATOR = (key, ray.get(evaluator_ref[0]))
    torch.set_num_threads(threads)
    return timed_call(_RAY_EVALUATOR[1], arch, seed, fidelity)


def _reachable(address: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at ``HOST:PORT`` (a Ray cluster's head)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class RayExecutor:
    """Evaluates each architecture as one Ray task, on a Ray cluster or on a local Ray instance.

    - ``address=None``: a local Ray instance is started on the first batch or by ``start()`` (``workers`` CPUs,
      dashboard off, usage statistics off, its own token; on the loopback address unless Ray was imported before)
      and shut down by ``close()``.
      ``address="auto"`` (the cluster this machine joined with ``ray start``) or ``"HOST:PORT"`` connects to a
      running cluster; ``close()`` disconnects and leaves it running.
    - ``cpus`` and ``gpus``: the resources each task asks for (Ray runs as many at once as the cluster has
      room for; the search keeps ``batch_size`` in flight). ``threads``: torch threads inside a task.
    - Faults: a task whose worker process dies (killed, out of memory, node lost) is run again up to ``retries``
      times, then recorded as a failed trial whose ``error`` says so; the search goes on. A task that cannot run at
      all (the evaluator's module missing on a worker) stops the search with a ``UsageError`` saying why. A lost
      cluster (its head unreachable) raises ``ClusterLostError`` within seconds; the search names its checkpoint.
      Resources no machine of the cluster has (``gpus=1`` without a GPU) are refused when it starts.

    Every evaluator the toolkit has can be sent to a task; on a cluster of several machines, each needs the
    toolkit installed (and the offline datasets, which it ships).

    Example:
        >>> ex = RayExecutor(workers=2)                    # or RayExecutor(address="auto") on a cluster
        >>> result = search(space, RegularizedEvolution(), evaluator, budget=16, batch_size=2, executor=ex)
        >>> ex.close()
    """

    name = "ray"
    POLL_S = 1.0  # how often a wait checks that the cluster is still there

    def __init__(self, address: str | None = None, *, workers: int = 2, cpus: float = 1.0, gpus: float = 0.0,
                 retries: int = 2, threads: int = 1, object_store_mb: int = 256):
        if address is not None and (not isinstance(address, str) or not (
                address == "auto" or (address.rpartition(":")[0] and address.rpartition(":")[2].isdigit()))):
            raise UsageError(f"address is 'auto' (the cluster this machine joined) or HOST:PORT of a Ray head, "
                             f"e.g. 10.0.0.5:6379; leave it out to start a local Ray instance; got {address!r}")
        for label, value, least in (("workers", workers, 1), ("retries", retries, 0),
                                    ("object_store_mb", object_store_mb, 80)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise UsageError(f"{label} must be an int >= {least}, got {value!r}")
        for label, value in (("cpus", cpus), ("gpus", gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"{label} is what each task asks for: a number >= 0, got {value!r}")
        check_threads(threads)
        self.address, self.workers, self.cpus, self.gpus = address, workers, float(cpus), float(gpus)
        self.retries, self.threads, self.object_store_mb = retries, threads, object_store_mb
        self._ray: Any = None
        self._task: Any = None
        self._gcs: str | None = None
        self._lost = False
        self._evaluator: Evaluator | None = None
        self._evaluator_ref: Any = None

    def start(self) -> None:
        """Start the local Ray instance, or connect to the cluster, now (the first batch does it otherwise), so that
        its start is not counted in what is timed next.

        Example:
            >>> ex = RayExecutor(workers=2); ex.start()
        """
        if self._ray is not None:
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline first: no usage report
        if self.address is None or self.address.rpartition(":")[0].strip("[]") in ("127.0.0.1", "localhost", "::1"):
            # this machine only: Ray keeps to the loopback address (read when Ray is imported)
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        if self.address is None:  # a local instance makes its own token (Ray's default; said here, so no warning)
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            import ray
        except ImportError as err:
            raise UsageError("RayExecutor needs Ray: pip install 'dfl_toolkit[distributed]' (or pip install ray); "
                             "ProcessExecutor runs workers on this machine without it") from err
        if ray.is_initialized():
            raise UsageError("Ray is already initialised in this process; RayExecutor starts or connects it "
                             "itself: call ray.shutdown() first")
        if self.address not in (None, "auto") and not _reachable(self.address):
            raise ClusterLostError(f"no Ray cluster answers at {self.address}: start one there with "
                                   f"`ray start --head --port {self.address.rpartition(':')[2]}`, check the "
                                   f"address, or leave the address out to start a local Ray instance")
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
        if self.address is None:
            options.update(num_cpus=self.workers, object_store_memory=self.object_store_mb * 2**20)
        try:
            ray.init(address=self.address or "local", **options)  # "local": a new instance, never one found running
        except (ConnectionError, RuntimeError, TimeoutError) as err:
            raise ClusterLostError(f"cannot connect to the Ray cluster at {self.address} "
                                   f"({(str(err).strip().splitlines() or [''])[0][:200]}); run the search on a "
                                   f"machine that joined the cluster with `ray start` (`ray status` there lists "
                                   f"the nodes), or leave the address out to start a local Ray instance") from err
        self._ray = ray
        self._gcs = ray.get_runtime_context().gcs_address
        self._task = ray.remote(_ray_evaluate)
        have = ray.cluster_resources()
        for label, wanted, key in (("cpus", self.cpus, "CPU"), ("gpus", self.gpus, "GPU")):
            if wanted > have.get(key, 0):
                self.close()
                raise UsageError(f"each task asks for {wanted:g} {key}s ({label}=), but the Ray cluster has "
                                 f"{have.get(key, 0):g} in all, so no evaluation could ever start; ask for at most "
                                 f"that many")

    def _check_cluster(self) -> None:
        if self._gcs is not None and not _reachable(self._gcs) and not _reachable(self._gcs):
            self._lost = True
            # Ray's hook reports an uncaught error to the (gone) cluster first and would hang: print it at once
            sys.excepthook = sys.__excepthook__
            raise ClusterLostError(f"the Ray cluster at {self._gcs} is gone (its head does not answer)")

    def map(self, evaluator: Evaluator, jobs: Sequence[Job]) -> Iterator[Done]:
        self.start()
        ray = self._ray
        from ray.exceptions import NodeDiedError, OutOfMemoryError, RayError, RayTaskError, WorkerCrashedError

        if self._evaluator is not evaluator:  # sent to the cluster once, shared by every task
            self._evaluator, self._evaluator_ref = evaluator, ray.put(evaluator)
        task = self._task.options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.retries,
                                  retry_exceptions=False)
        started = time.perf_counter()
        pending = {task.remote([self._evaluator_ref], arch, seed, fidelity, self.threads): i
                   for i, (arch, seed, fidelity) in enumerate(jobs)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.POLL_S)
                if not ready:
                    self._check_cluster()
                    continue
                i = pending.pop(ready[0])
                try:
                    done = ray.get(ready[0])
                except (WorkerCrashedError, NodeDiedError, OutOfMemoryError) as err:  # retries spent: a failed trial
                    self._check_cluster()
                    reason = (str(err).strip().splitlines() or [""])[0][:300]
                    done = ({"failed": True, "error": f"{type(err).__name__} after {self.retries} retries: {reason}"},
                            time.perf_counter() - started)
                except RayError as err:  # the task could not run at all (the evaluator's errors are caught inside it)
                    self._check_cluster()
                    cause = err.cause if isinstance(err, RayTaskError) else err
                    reason = (str(cause).strip().splitlines() or [""])[0][:300]
                    raise UsageError(f"an evaluation could not run on the Ray workers: {type(cause).__name__}: "
                                     f"{reason}; an evaluator defined in your own module needs that module "
                                     f"importable on every worker (installed, or on PYTHONPATH)") from err
                yield i, done
        finally:  # left early (an error, Ctrl-C): stop what is still running or queued
            if pending and not self._lost:
                for ref in pending:
                    ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut the local Ray instance down, or disconnect from the cluster."""
        if self._ray is not None:
            if not self._lost:  # a lost cluster has nothing left to disconnect from
                self._ray.shutdown()
            self._ray = self._task = self._evaluator = self._evaluator_ref = None
