"""Real time series bundled with statsmodels, cut into windows for forecasting.

Split chronologically (first 70% of targets train, next 15% val, last 15% test) so the model
never sees the future; normalised with the train part's mean and std.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UsageError
from .splits import DatasetSplits, TensorDataset


def _windows(series: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(series) - window - horizon + 1
    x = np.stack([series[i:i + window] for i in range(n)])
    y = np.stack([series[i + window:i + window + horizon] for i in range(n)])
    return x[..., None], y


def _check_window(name: str, n: int, window: int, horizon: int) -> None:
    for arg, value in (("window", window), ("horizon", horizon)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{arg} must be a positive int, got {value!r}")
    if window + horizon > n // 4:
        raise UsageError(f"window + horizon must be at most {n // 4} for {name!r} ({n} points), got {window + horizon}")


def _series_splits(name: str, values: np.ndarray, time: np.ndarray, *, window: int, horizon: int,
                   normalize: bool, source: str, unit: str) -> DatasetSplits:
    _check_window(name, len(values), window, horizon)
    x, y = _windows(values.astype(np.float32), window, horizon)
    n = len(x)
    n_train, n_val = int(n * 0.70), int(n * 0.15)
    cut_train, cut_val = n_train, n_train + n_val
    train_vals = values[: cut_train + window]  # every value the train windows can see
    mean, std = float(train_vals.mean()), float(train_vals.std())
    if normalize:
        x, y = (x - mean) / std, (y - mean) / std

    def part(a: int, b: int) -> TensorDataset:
        return TensorDataset(torch.from_numpy(x[a:b]).float(), torch.from_numpy(y[a:b]).float())

    return DatasetSplits(
        name=name, train=part(0, cut_train), val=part(cut_train, cut_val), test=part(cut_val, n),
        task="regression", classes=None, input_shape=(window, 1), mean=(mean,), std=(std,),
        normalized=normalize, source=source,
        info={"series": values, "time": time, "unit": unit, "window": window, "horizon": horizon,
              # time index of the first target of each split: train starts at time[window]
              "split_starts": (time[window], time[window + cut_train], time[window + cut_val])},
    )


def load_sunspots(*, window: int = 20, horizon: int = 1, normalize: bool = True) -> DatasetSplits:
    """Yearly sunspot numbers 1700-2008 (309 values): predict the next ``horizon`` years from ``window``."""
    from statsmodels.datasets import sunspots

    df = sunspots.load_pandas().data
    return _series_splits("sunspots", df["SUNACTIVITY"].to_numpy(float), df["YEAR"].to_numpy(int),
                          window=window, horizon=horizon, normalize=normalize, unit="sunspot number",
                          source="Yearly sunspot numbers 1700-2008 (SIDC), via statsmodels")


def load_co2(*, window: int = 52, horizon: int = 1, normalize: bool = True) -> DatasetSplits:
    """Weekly atmospheric CO2 at Mauna Loa 1958-2001 (2,284 weeks; 59 gaps filled by interpolation)."""
    from statsmodels.datasets import co2

    s = co2.load_pandas().data["co2"].interpolate(limit_direction="both")
    return _series_splits("co2", s.to_numpy(float), s.index.to_numpy(), window=window, horizon=horizon,
                          normalize=normalize, unit="ppm",
                          source="Mauna Loa weekly CO2 (Keeling et al.), via statsmodels")
