"""The classical fills series_impute's model is measured against, and corrects. Each
takes values (T, F), standardised, and seen (T, F); it reads values only where seen, and
returns the series with every unseen entry filled. None draws random numbers.

    mean, median  the training rows' (per variable; the median is the better constant for
                  MAE, and precipitation has many dry days)
    locf          last observation carried forward, then backward at the start
    linear        interpolation in time
    seasonal      training mean of the row's place in its cycle (data.seasonal_profile),
                  plus, for the variables and patterns where it is better on the
                  validation masks, the local offset (the interpolated difference from it)

Time is each row's time (Table.times): its row number in a regular series, its own time
in an irregular one, where interpolation weighs the neighbours by their distance in time
and the season is looked up by each row's own date (its day or hour in the cycle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import PATTERNS, Data
from .scores import errors

BASELINES = ("mean", "median", "locf", "linear", "seasonal")


def fill_constant(values: np.ndarray, seen: np.ndarray, level: np.ndarray) -> np.ndarray:
    """One value per variable, `level` (F,): the training mean (0 in standardised units)
    or median."""
    return np.where(seen, values, level)


def fill_linear(values: np.ndarray, seen: np.ndarray,
                times: np.ndarray | None = None) -> np.ndarray:
    """Linear interpolation in time between the nearest seen rows, at `times` (T,) rising
    (None: rows 0, 1, 2, ...); flat beyond the first and last; the training mean for a
    variable never seen."""
    rows = np.arange(len(values)) if times is None else times
    out = np.zeros(values.shape)
    for f in range(values.shape[1]):
        known = seen[:, f]
        if known.any():
            out[:, f] = np.interp(rows, rows[known], values[known, f])
    return np.where(seen, values, out)


def fill_locf(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The last seen value carried forward; before the first, the first carried back."""
    out = np.zeros(values.shape)
    for f in range(values.shape[1]):
        known = np.nonzero(seen[:, f])[0]
        if len(known):
            # index of the last seen row at or before each row (the first, before it)
            last = np.searchsorted(known, np.arange(len(values)), side="right") - 1
            out[:, f] = values[known[np.maximum(last, 0)], f]
    return np.where(seen, values, out)


def fill_seasonal(values: np.ndarray, seen: np.ndarray, season: np.ndarray,
                  offset: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """season (T, F): the profile at each row. With offset[f], variable f also gets the
    local difference from its season, interpolated in time between the nearest seen
    rows (`times` as fill_linear's)."""
    anomaly = fill_linear(np.where(seen, values - season, 0.0), seen, times)
    return np.where(seen, values, season + np.where(offset, anomaly, 0.0))


@dataclass
class Baselines:
    """What the baselines learn from the training rows: the median and the seasonal
    profile at every row (None where the rows have no cycle), and per pattern the
    variables that get the seasonal offset (set on validation)."""

    median: np.ndarray                    # (F,) standardised
    season: np.ndarray | None             # (N, F); None: no cycle
    offset: dict[str, np.ndarray]         # pattern: (F,) bool

    @property
    def methods(self) -> tuple[str, ...]:
        return BASELINES if self.season is not None else BASELINES[:-1]

    def fill(self, data: Data, split: str, hidden: np.ndarray, pattern: str,
             offset: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{method: filled (T, F)} on `split` with `hidden` hidden; `offset` overrides the
        chosen seasonal variant."""
        rows = data.parts[split]
        values, seen = data.z[rows], data.observed[rows] & ~hidden
        times = data.table.times[rows]
        fills = {"mean": fill_constant(values, seen, np.zeros(len(self.median))),
                 "median": fill_constant(values, seen, self.median),
                 "locf": fill_locf(values, seen), "linear": fill_linear(values, seen, times)}
        if self.season is not None:
            chosen = self.offset[pattern] if offset is None else offset
            fills["seasonal"] = fill_seasonal(values, seen, self.season[rows], chosen, times)
        return fills


def fit_baselines(data: Data) -> Baselines:
    """The median and the seasonal profile from the training rows; then, for each
    pattern, the offset for the variables where it is better on the validation masks."""
    train = data.z[:data.n_train]
    n_features = data.z.shape[1]
    season = None if data.profile is None else data.season
    if season is None:
        print(f"seasonal baseline: none, rows {data.table.step.label} apart have no cycle "
              "(a day or a year) to average over")
    baselines = Baselines(np.nanmedian(train, axis=0), season, {})
    for p in PATTERNS:
        baselines.offset[p] = np.zeros(n_features, bool)
        if season is None:
            continue
        hidden, truth = data.val_masks[p], data.truth("val")
        plain = errors(truth, baselines.fill(data, "val", hidden, p)["seasonal"], hidden)[0]
        shifted = errors(truth, baselines.fill(data, "val", hidden, p,
                                               np.ones(n_features, bool))["seasonal"], hidden)[0]
        baselines.offset[p] = shifted < plain
        chosen = np.array(data.table.columns)[baselines.offset[p]]
        print(f"seasonal baseline, {p}: " + (f"+ offset for {', '.join(chosen)}" if len(chosen)
                                              else "the profile alone, no offset"))
    return baselines


def baseline_draws(data: Data, baselines: Baselines) -> dict[str, list[dict[str, np.ndarray]]]:
    """{method: [{pattern: filled test rows (T, F)} per test draw]}."""
    out = {m: [] for m in baselines.methods}
    for masks in data.test_masks:
        by_pattern = {p: baselines.fill(data, "test", masks[p], p) for p in PATTERNS}
        for m in baselines.methods:
            out[m].append({p: by_pattern[p][m] for p in PATTERNS})
    return out
