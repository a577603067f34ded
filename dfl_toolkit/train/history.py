"""Per-epoch record of a training run that can plot itself and round-trip through JSON."""

from __future__ import annotations

import math
from typing import Any


class History:
    """What :func:`fit` returns: one dict per epoch (``epoch``, ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``, ``lr``, ``time``) plus how the run ended.

    Example:
        >>> h = fit(model, train_dl, val_dl, epochs=3)
        >>> h["val_acc"][-1], h.best_epoch
        >>> h.plot()
    """

    def __init__(self, records: list[dict[str, float]] | None = None, *, stopped_early: bool = False,
                 diverged: bool = False, best_epoch: int | None = None, monitor: str = "val_loss"):
        self.records = list(records or [])
        self.stopped_early, self.diverged = stopped_early, diverged
        self.best_epoch, self.monitor = best_epoch, monitor

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        """All values of one metric, one per epoch (``nan`` where an epoch lacks it)."""
        known = sorted({k for r in self.records for k in r})
        if self.records and key not in known:
            raise KeyError(f"no metric {key!r} in this history; available: {', '.join(known)}")
        return [r.get(key, math.nan) for r in self.records]

    @property
    def last(self) -> dict[str, float]:
        """The metrics of the final epoch."""
        return dict(self.records[-1]) if self.records else {}

    def metrics(self) -> list[dict[str, float]]:
        """Records without wall-clock times: what must be identical for two runs with one seed."""
        return [{k: v for k, v in r.items() if k != "time"} for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "stopped_early": self.stopped_early, "diverged": self.diverged,
                "best_epoch": self.best_epoch, "monitor": self.monitor}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(d["records"], stopped_early=d["stopped_early"], diverged=d["diverged"],
                   best_epoch=d["best_epoch"], monitor=d["monitor"])

    def plot(self, title: str | None = None):
        """Learning curves: loss (and accuracy, if recorded) for train and val. Returns the Figure."""
        import matplotlib.pyplot as plt

        has_acc = any("train_acc" in r for r in self.records)
        fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.5), squeeze=False)
        epochs = self["epoch"] if self.records else []
        panels = [("loss", axes[0, 0])] + ([("acc", axes[0, 1])] if has_acc else [])
        for metric, ax in panels:
            for split, style in (("train", "-o"), ("val", "-s")):
                key = f"{split}_{metric}"
                if any(key in r for r in self.records):
                    ax.plot(epochs, self[key], style, ms=3, label=split)
            if self.best_epoch is not None:
                ax.axvline(self.best_epoch, color="grey", ls=":", lw=1, label="best epoch")
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy" if metric == "acc" else "loss")
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        end = " (stopped early)" if self.stopped_early else " (diverged)" if self.diverged else ""
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last.items() if k not in ("epoch", "time", "lr"))
        return f"History({len(self)} epochs{end}: {last})"
