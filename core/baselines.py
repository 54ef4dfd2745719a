"""Baseline forecasters for monthly series, the numbers a recurrent model must beat.

Each forecast function takes the past (a 1-D array ending just before the first month to
forecast) and returns the next `steps` values, so `core.series.walk_forward` can score all
of them the same way:

- AR(p): y_t = c + a_1 y_{t-1} + ... + a_p y_{t-p}, fitted by least squares on the
  training part (the same fit as statsmodels' `AutoReg(y, lags=p, trend="c")`); several
  steps ahead it feeds its own forecasts back in (iterated).
- seasonal naive: the value m months earlier (y_{t-m}).
- climatology: the training mean of the target's calendar month.
- persistence: the last value (y_{t-1}).
"""

from __future__ import annotations

import numpy as np

from core.series import MONTHS_PER_YEAR


def fit_ar(train: np.ndarray, p: int) -> np.ndarray:
    """Least-squares AR(p) with intercept on `train` (N,): returns [c, a_1, ..., a_p].

    Every t in p..N-1 is one equation, y_t = c + sum_i a_i y_{t-i}."""
    train = np.asarray(train, dtype=np.float64)
    if len(train) <= 2 * p:
        raise ValueError(f"AR({p}) needs more than {2 * p} training values, got {len(train)}")
    t = np.arange(p, len(train))
    design = np.column_stack([np.ones(len(t))] + [train[t - i] for i in range(1, p + 1)])
    coef, *_ = np.linalg.lstsq(design, train[t], rcond=None)
    return coef


def ar_forecast(coef: np.ndarray, past: np.ndarray, steps: int) -> np.ndarray:
    """Iterated AR forecasts of the `steps` values after `past` (which needs p values)."""
    p = len(coef) - 1
    history = list(np.asarray(past, dtype=np.float64)[-p:])
    if len(history) < p:
        raise ValueError(f"AR({p}) forecast needs {p} past values, got {len(history)}")
    out = []
    for _ in range(steps):
        # history[-1] is y_{t-1}, history[-p] is y_{t-p}
        value = coef[0] + float(np.dot(coef[1:], history[::-1][:p]))
        out.append(value)
        history.append(value)
    return np.array(out)


def seasonal_naive(past: np.ndarray, steps: int, m: int = MONTHS_PER_YEAR) -> np.ndarray:
    """y_{t-m} for each of the next `steps` months (steps <= m)."""
    if steps > m or len(past) < m:
        raise ValueError(f"seasonal naive needs steps <= {m} and {m} past values")
    return np.asarray(past, dtype=np.float64)[len(past) - m: len(past) - m + steps]


def persistence(past: np.ndarray, steps: int) -> np.ndarray:
    """The last value, repeated."""
    return np.full(steps, float(past[-1]))


def fit_climatology(train: np.ndarray, months: np.ndarray) -> np.ndarray:
    """(12,) mean of `train` per calendar month (index 0 is January)."""
    train, months = np.asarray(train, dtype=np.float64), np.asarray(months)
    missing = sorted(set(range(1, MONTHS_PER_YEAR + 1)) - set(months.tolist()))
    if missing:
        raise ValueError(f"climatology needs every calendar month in training; missing {missing}")
    return np.array([train[months == m].mean() for m in range(1, MONTHS_PER_YEAR + 1)])


def climatology(means: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The training mean of each target's calendar month (1..12)."""
    return np.asarray(means)[np.asarray(months) - 1]
