"""Look architectures up in a benchmark table instead of training them: seconds instead of hours,
with the table's recorded training time as the simulated cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import UnknownNameError
from ..spaces.base import Arch

if TYPE_CHECKING:
    from ..benchmark.published import PublishedBenchmark
    from ..benchmark.table import Benchmark


class TabularEvaluator:
    """``evaluator(arch, seed)`` returns the table's metrics of ``arch`` and ``cost`` = its recorded training time.

    - A toolkit table (``nb201_mnist14``, one value per training seed): one seed's metrics, chosen from ``seed`` (as
      if the architecture had been trained once with that seed), plus ``mean_val_acc`` and ``mean_test_acc`` over
      the table's complete seeds for honest reporting.
    - A published table (``nb201_cifar10``, ...; one value per cell): every column, whatever the seed: ``val_acc``
      is one training run (the search signal), ``test_acc`` and ``mean_test_acc`` the mean over NATS-Bench's seeds.

    ``metrics`` declares what every evaluation returns, for the table given (an objective must be one of them).
    A published table also has two ``fidelities``: ``"12ep"`` (the cheap one: ``val_acc`` is the 12-epoch
    validation accuracy and ``cost`` its training time; nothing else) and ``"200ep"`` (the full one, the default),
    for multi-fidelity strategies such as successive halving.

    Example:
        >>> ev = TabularEvaluator(Benchmark.load("nb201_cifar10"))
        >>> ev(("nor_conv_3x3",) * 6, seed=0)["val_acc"]
    """

    name = "table"
    metrics: tuple[str, ...] = ("val_acc", "test_acc", "train_acc", "params", "flops", "latency", "train_time",
                                "mean_val_acc", "mean_test_acc")  # a toolkit table's; a published table's: __init__

    def __init__(self, bench: Benchmark | PublishedBenchmark):
        self.bench = bench
        self.seeds = list(bench.seeds)
        if not self.seeds:  # a published table: its columns (its proxies only exist for some cells)
            self.metrics = ("val_acc", *(k for k in bench.meta["columns"] if k != "val_acc"), "mean_test_acc")
            self.fidelities = ("12ep", "200ep")  # cheapest first, the full one last (see search)

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records about this evaluator: which table (by checksum)."""
        return {"evaluator": self.name, "table_sha256": self.bench.meta["sha256"]}

    def __call__(self, arch: Arch, seed: int = 0, fidelity: str | None = None) -> dict[str, Any]:
        if fidelity not in (None, *getattr(self, "fidelities", ())):
            raise UnknownNameError(f"fidelity of {self.bench.meta.get('name', 'this table')}:", fidelity,
                                   getattr(self, "fidelities", ()) or ["none (a toolkit table has one)"])
        if not self.seeds:
            row = self.bench.query(arch)
            if fidelity == "12ep":
                return {"val_acc": row["val_acc_12ep"], "train_time": row["train_time_12ep"],
                        "cost": row["train_time_12ep"]}
            return {**row, "mean_test_acc": row["test_acc"], "cost": row["train_time"]}
        one = self.bench.query(arch, seed=self.seeds[seed % len(self.seeds)])
        mean = self.bench.query(arch)
        return {**one, "mean_test_acc": mean["test_acc"], "mean_val_acc": mean["val_acc"], "cost": one["train_time"]}
