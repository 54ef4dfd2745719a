"""Monthly series for forecasting: reading a CSV, lag windows, a scaler fitted on the
training part only, month-of-year features and walk-forward evaluation.

Time runs down the rows. An *origin* o is the first month a forecast is for; what the
forecaster may read is the rows before it, `values[:o]`:

    index     0   1   2   3   4   5
    values   v0  v1  v2  v3  v4  v5
    lags=3, origin o=3: window (v0 v1 v2) -> targets v3 (h=1), v4 (h=2), v5 (h=3)

so with L lags the first origin that has a full window is L. The h-step forecast of month
t comes from origin t - h + 1 (it reads months up to t - h).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import UserError

MONTHS_PER_YEAR = 12


def _key(name: str) -> str:
    """Column names match whatever their spacing or case: "Relative Humidity" is
    "relative_humidity"."""
    return "_".join(str(name).strip().lower().replace("_", " ").split())


@dataclass
class MonthlyFrame:
    """A CSV's numeric columns (in the order asked for) and each row's calendar month."""

    values: np.ndarray  # (N, F) float64
    months: np.ndarray  # (N,) int, 1..12
    columns: list[str]  # the names as the CSV spells them


def read_monthly_csv(path: Path, columns: Sequence[str], date_columns: Sequence[str],
                     min_rows: int) -> MonthlyFrame:
    """Read `columns` and the calendar month from a monthly CSV, or raise a UserError that
    says what was found: a missing column, a non-numeric or missing value (with its row),
    rows that are not consecutive months, or fewer than `min_rows` rows.

    `date_columns` is either one column pandas can parse as a date, or columns named
    year, month (and optionally day)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no CSV at {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path} as CSV: {error}") from None
    by_key = {_key(c): c for c in frame.columns}

    def find(name: str) -> str:
        if _key(name) not in by_key:
            raise UserError(f"{path.name} has no column {name!r}; found: "
                            f"{', '.join(map(str, frame.columns))}")
        return by_key[_key(name)]

    names = [find(c) for c in columns]
    dates = [find(c) for c in date_columns]
    if len(frame) < min_rows:
        raise UserError(f"{path.name} has {len(frame)} rows; this run needs at least "
                        f"{min_rows} (the lags plus the test months plus some to train on)")
    numeric = frame[names].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(numeric.to_numpy(dtype=np.float64))
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        cell = frame[names[col]].iloc[row]
        found = "is empty" if pd.isna(cell) else f"holds {str(cell)!r}, not a number"
        raise UserError(f"{path.name} column {names[col]!r} row {row + 2} (counting the "
                        f"header as row 1) {found}; {int(bad.sum())} missing or non-numeric "
                        "cells in all: fill or drop them")
    stamps = _dates(frame, dates, path.name)
    step = np.diff(stamps.dt.year.to_numpy() * MONTHS_PER_YEAR + stamps.dt.month.to_numpy())
    if (step != 1).any():
        row = int(np.nonzero(step != 1)[0][0])
        raise UserError(f"{path.name} rows {row + 2} and {row + 3} are "
                        f"{stamps.iloc[row]:%Y-%m} then {stamps.iloc[row + 1]:%Y-%m}: "
                        "the rows must be consecutive months, oldest first")
    return MonthlyFrame(numeric.to_numpy(dtype=np.float64), stamps.dt.month.to_numpy(), names)


def _dates(frame: pd.DataFrame, dates: list[str], filename: str) -> pd.Series:
    """Each row's date from one date column, or from year/month(/day) columns."""
    if len(dates) == 1:
        stamps = pd.to_datetime(frame[dates[0]], errors="coerce")
    else:
        parts = {_key(c): pd.to_numeric(frame[c], errors="coerce") for c in dates}
        if "year" not in parts or "month" not in parts:
            raise UserError(f"--date-columns {' '.join(dates)}: give one date column, or "
                            "columns named year and month (and optionally day)")
        stamps = pd.to_datetime(pd.DataFrame({"year": parts["year"], "month": parts["month"],
                                              "day": parts.get("day", 1)}), errors="coerce")
    if stamps.isna().any():
        row = int(np.nonzero(stamps.isna().to_numpy())[0][0])
        raise UserError(f"{filename} row {row + 2}: cannot read a date from "
                        f"{frame[dates].iloc[row].tolist()}")
    return stamps


@dataclass
class StandardScaler:
    """Per-column (x - mean) / std with statistics from the training rows only, so no
    test value leaks into the inputs' scale."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray) -> StandardScaler:
        train = np.asarray(train, dtype=np.float64)
        std = train.std(axis=0)
        # a constant column (e.g. no rain in any training month) would divide by zero
        return cls(train.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.std + self.mean


def month_features(months: np.ndarray) -> np.ndarray:
    """Calendar months 1..12 -> (N, 2) sin and cos of the angle on the year's circle, so
    December sits next to January."""
    angle = 2 * np.pi * (np.asarray(months) - 1) / MONTHS_PER_YEAR
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def monthly_std(train: np.ndarray, months: np.ndarray) -> np.ndarray:
    """(12,) standard deviation of `train` per calendar month (index 0 is January); a
    month whose values never vary gets 1 so it can divide."""
    train, months = np.asarray(train, dtype=np.float64), np.asarray(months)
    std = np.array([train[months == m].std() if (months == m).any() else 0.0
                    for m in range(1, MONTHS_PER_YEAR + 1)])
    return np.where(std > 0, std, 1.0)


def windows(values: np.ndarray, lags: int, origins: np.ndarray) -> np.ndarray:
    """values (N, F) -> (len(origins), lags, F): row k is values[o - lags : o] for
    o = origins[k], the `lags` months just before origin o (never o itself)."""
    origins = np.asarray(origins)
    if origins.size and (origins.min() < lags or origins.max() > len(values)):
        raise ValueError(f"origins must lie in {lags}..{len(values)}, got "
                         f"{origins.min()}..{origins.max()}")
    index = origins[:, None] + np.arange(-lags, 0)[None, :]  # (K, lags)
    return np.asarray(values)[index]


def targets(series: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """series (N,) -> (len(origins), horizon): row k is series[o : o + horizon]; months
    past the end of the series are NaN."""
    padded = np.concatenate([np.asarray(series, dtype=np.float64), np.full(horizon, np.nan)])
    return padded[np.asarray(origins)[:, None] + np.arange(horizon)[None, :]]


def walk_forward(series: np.ndarray, months: np.ndarray, horizon: int,
                 forecast: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The `horizon`-step forecast of each month t in `months`: forecast(series[:t -
    horizon + 1]) returns the next `horizon` values, and the last one is kept.

    `forecast` sees a read-only copy of the past only, so it cannot read month t or later.
    """
    if len(months) and min(months) - horizon + 1 < 1:
        raise ValueError(f"month {min(months)} has no past at horizon {horizon}")
    out = np.empty(len(months))
    for i, t in enumerate(months):
        past = np.array(series[: t - horizon + 1], dtype=np.float64)
        past.flags.writeable = False
        out[i] = forecast(past)[horizon - 1]
    return out
