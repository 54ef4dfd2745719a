"""The series series_impute makes rather than fetches: two real records that ship with
statsmodels (offline) and a seeded synthetic one. Each is written as the CSV a user would
give `--csv`, into data/ beside the fetched datasets (`--dataset co2`, ...).

    co2        weekly CO2 at Mauna Loa 1958-2001, with the record's own missing weeks:
               a trend the training rows never reach
    sunspots   yearly sunspot numbers 1700-2008: no season
    synthetic  daily, 3 columns: trend, a yearly season, noise, and a level shift in the
               test part (the last 20% of rows), which no training row shows
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from core.files import atomic_write_text

SYNTHETIC_ROWS = 1200
SYNTHETIC_SEED = 26


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Atomically, so two runs making the same file never read half of it."""
    atomic_write_text(path, frame.to_csv(index=False))
    return path


def co2_csv(folder: Path) -> Path:
    """date,co2: weekly, with the record's own missing weeks left empty."""
    from statsmodels.datasets import co2
    frame = co2.load_pandas().data
    return write_csv(pd.DataFrame({"date": frame.index.strftime("%Y-%m-%d"),
                                    "co2": frame["co2"]}), folder / "co2.csv")


def sunspots_csv(folder: Path) -> Path:
    """year,sunactivity: yearly, 1700-2008."""
    from statsmodels.datasets import sunspots
    frame = sunspots.load_pandas().data
    return write_csv(pd.DataFrame({"year": frame["YEAR"].astype(int),
                                    "sunactivity": frame["SUNACTIVITY"]}),
                     folder / "sunspots.csv")


def synthetic_csv(folder: Path, rows: int = SYNTHETIC_ROWS, seed: int = SYNTHETIC_SEED) -> Path:
    """date,a,b,c daily: each a trend, a yearly season, noise that carries over from day
    to day, and a level shift in the test part (the last 20% of rows), which no
    training row shows."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    trend = t * np.array([0.004, -0.002, 0.01])
    season = np.array([1.0, 2.0, 0.5]) * np.sin(2 * math.pi * t / 365.25 + np.array([0, 1, 2]))
    noise = np.zeros((rows, 3))
    for i in range(1, rows):  # AR(1): tomorrow is close to today
        noise[i] = 0.7 * noise[i - 1] + 0.3 * rng.normal(size=3)
    shift = np.where(t >= round(0.85 * rows), np.array([3.0, -2.0, 4.0]), 0.0)
    values = trend + season + noise + shift
    dates = np.datetime64("2000-01-01") + np.arange(rows)
    return write_csv(pd.DataFrame({"date": dates.astype(str),
                                    **{c: values[:, i].round(4) for i, c in enumerate("abc")}}),
                     folder / "synthetic.csv")
