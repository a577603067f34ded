"""Look architectures up in a benchmark table instead of training them: seconds instead of hours,
with the table's recorded training time as the simulated cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..spaces.base import Arch

if TYPE_CHECKING:
    from ..benchmark.table import Benchmark


class TabularEvaluator:
    """``evaluator(arch, seed)`` returns one training seed's recorded metrics, chosen from ``seed``
    (as if the architecture had been trained once with that seed), plus ``mean_test_acc`` over the
    table's complete seeds for honest reporting, and ``cost`` = the recorded training time.

    Example:
        >>> ev = TabularEvaluator(Benchmark.load(path))
        >>> ev(("nor_conv_3x3",) * 6, seed=0)["val_acc"]
    """

    name = "table"
    metrics = ("val_acc", "test_acc", "train_acc", "params", "flops", "latency", "train_time", "mean_val_acc",
               "mean_test_acc")  # what each evaluation returns (an objective must be one of them)

    def __init__(self, bench: Benchmark):
        self.bench = bench
        self.seeds = list(bench.seeds)

    def config(self) -> dict[str, Any]:
        """What a search checkpoint records about this evaluator: which table (by checksum)."""
        return {"evaluator": self.name, "table_sha256": self.bench.meta["sha256"]}

    def __call__(self, arch: Arch, seed: int = 0) -> dict[str, Any]:
        one = self.bench.query(arch, seed=self.seeds[seed % len(self.seeds)])
        mean = self.bench.query(arch)
        return {**one, "mean_test_acc": mean["test_acc"], "mean_val_acc": mean["val_acc"], "cost": one["train_time"]}
