"""Look architectures up in a benchmark table instead of training them: seconds instead of hours,
with the table's recorded training time as the simulated cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records about this evaluator: which table (by checksum)."""
        return {"evaluator": self.name, "table_sha256": self.bench.meta["sha256"]}

    def __call__(self, arch: Arch, seed: int = 0) -> dict[str, Any]:
        if not self.seeds:
            row = self.bench.query(arch)
            return {**row, "mean_test_acc": row["test_acc"], "cost": row["train_time"]}
        one = self.bench.query(arch, seed=self.seeds[seed % len(self.seeds)])
        mean = self.bench.query(arch)
        return {**one, "mean_test_acc": mean["test_acc"], "mean_val_acc": mean["val_acc"], "cost": one["train_time"]}
