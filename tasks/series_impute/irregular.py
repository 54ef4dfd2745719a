"""Irregular versions of regular series, for series_impute's battery and its example file:
the readings a station or a flask sampler actually leaves, rather than a clean grid.

From a regular series (one row per step), seeded:

    outages    OUTAGES runs of rows removed, each OUTAGE_SHARE of the rows long (a
               station down for weeks)
    dropped    then rows removed at random, until about DROP_SHARE of all rows are gone
    jittered   each kept row's time moved by up to JITTER of a step either way, and
               written to the minute: no two gaps share a step, so no regular step
               exists (consecutive rows stay at least 1 - 2 * JITTER steps apart, in
               order)

    step     |    |    |    |    |    |    |    |    |
    kept     x         x    x              x    x          (rows 1, 4, 5, 6 dropped)
    times     x         x  x                x    x         (each off the grid)

A cell missing in the source stays missing. The same seed gives the same file, byte for
byte. Two series are made so (`--dataset seattle_irregular`, `--dataset co2_irregular`,
written into data/ as datasets.py's are): the daily Seattle weather and the weekly Mauna
Loa CO2 record, the latter shipped as `irregular_example.csv` in this folder (`python -m
tasks.series_impute.irregular` writes it again).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data import fetch

from .datasets import write_csv

SEED = 29
OUTAGES = 3
OUTAGE_SHARE = (0.01, 0.02)  # each outage's length, as a share of the rows: least, most
DROP_SHARE = 0.4
JITTER = 0.4                 # a kept row moves by up to this share of a step either way
DATE_FORMAT = "%Y-%m-%d %H:%M"
EXAMPLE = Path(__file__).with_name("irregular_example.csv")
SEATTLE = ("seattle-weather.csv", "date", ["precipitation", "temp_max", "temp_min", "wind"])


def make_irregular(frame: pd.DataFrame, date_column: str, seed: int = SEED) -> pd.DataFrame:
    """A regular series (a row per step, its dates in `date_column`, oldest first) -> the
    irregular one: outages, rows dropped at random and the kept rows' times jittered, as
    the module says; the other columns unchanged."""
    rng = np.random.default_rng(seed)
    dates = pd.to_datetime(frame[date_column]).to_numpy().astype("datetime64[s]")
    rows = len(frame)
    step = np.median(np.diff(dates).astype(np.int64))          # seconds
    kept = np.ones(rows, dtype=bool)
    for _ in range(OUTAGES):
        length = int(rng.integers(round(OUTAGE_SHARE[0] * rows),
                                  round(OUTAGE_SHARE[1] * rows) + 1))
        start = int(rng.integers(0, rows - length))
        kept[start:start + length] = False
    # the random drops make up the rest of DROP_SHARE among the rows the outages left
    share = max(DROP_SHARE * rows - (~kept).sum(), 0) / kept.sum()
    kept &= rng.random(rows) >= share
    shift = rng.uniform(-JITTER, JITTER, rows) * step
    seconds = dates.astype(np.int64) + np.round(shift).astype(np.int64)
    out = frame[kept].copy()
    out[date_column] = pd.to_datetime(seconds[kept], unit="s").strftime(DATE_FORMAT)
    return out.reset_index(drop=True)


def co2_frame() -> pd.DataFrame:
    """date,co2: the weekly Mauna Loa record 1958-2001 (statsmodels.datasets.co2, shipped
    with the package), its missing weeks empty."""
    from statsmodels.datasets import co2
    frame = co2.load_pandas().data
    return pd.DataFrame({"date": frame.index.strftime("%Y-%m-%d"),
                         "co2": frame["co2"].to_numpy()})


def co2_irregular_csv(folder: Path) -> Path:
    """date,co2: the weekly CO2 record made irregular (irregular_example.csv)."""
    return write_csv(make_irregular(co2_frame(), "date"), Path(folder) / "co2_irregular.csv")


def seattle_irregular_csv(folder: Path) -> Path:
    """date and the four weather columns of the daily Seattle weather (fetched by name,
    checksummed), made irregular."""
    name, date, columns = SEATTLE
    frame = pd.read_csv(fetch(name), dtype=str)[[date, *columns]]
    return write_csv(make_irregular(frame, date), Path(folder) / "seattle_irregular.csv")


if __name__ == "__main__":
    print(f"wrote {write_csv(make_irregular(co2_frame(), 'date'), EXAMPLE)}")
