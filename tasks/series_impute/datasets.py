"""The series series_impute makes rather than fetches: two real records that ship with
statsmodels (offline) and a seeded synthetic one. Each is written as the CSV a user would
give `--csv`, into data/ beside the fetched datasets (`--dataset co2`, ...).

    co2        weekly CO2 at Mauna Loa 1958-2001, with the record's own missing weeks:
               a trend the training rows never reach
    sunspots   yearly sunspot numbers 1700-2008: no season
    synthetic  daily, 3 columns: trend, a yearly season, noise, and a level shift in the
               test part (the last 20% of rows), which no training row shows
    elec_equip monthly orders of electrical equipment in the euro area, 2005-2014 (120
               rows, statsmodels.datasets.elec_equip): a short file with a strong season
    business   business days (no weekend rows, a few holidays and empty cells), 3 prices
               that move together (seeded): the calendar of most financial files
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from core.files import atomic_write_text

SYNTHETIC_ROWS = 1200
SYNTHETIC_SEED = 26
BUSINESS_ROWS = 1000
BUSINESS_SEED = 34


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


def elec_equip_csv(folder: Path) -> Path:
    """date,orders monthly, 2005-01 to 2014-12: ten years of the record, a short file."""
    from statsmodels.datasets import elec_equip
    frame = elec_equip.load_pandas().data.loc["2005-01-01":"2014-12-01"]
    return write_csv(pd.DataFrame({"date": frame.index.strftime("%Y-%m"),
                                   "orders": frame.iloc[:, 0].to_numpy()}),
                     folder / "elec_equip.csv")


def business_csv(folder: Path, rows: int = BUSINESS_ROWS, seed: int = BUSINESS_SEED) -> Path:
    """date,a,b,c on business days from 2015-01-01: three prices, each a common market
    walk plus its own (log returns), with the weekday holidays of January 1 and December
    25 left out and a few cells empty."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-01", periods=rows)
    market = np.cumsum(0.01 * rng.normal(size=rows))
    own = np.cumsum(0.006 * rng.normal(size=(rows, 3)), axis=0)
    prices = np.array([100.0, 40.0, 250.0]) * np.exp(market[:, None] * [1.0, 1.4, 0.7] + own)
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"),
                          **{c: prices[:, i].round(2) for i, c in enumerate("abc")}})
    frame = frame.astype({c: object for c in "abc"})
    for i in rng.choice(rows, 12, replace=False):  # a few readings lost
        frame.iloc[i, 1 + rng.integers(3)] = ""
    holidays = (days.month == 1) & (days.day == 1) | (days.month == 12) & (days.day == 25)
    return write_csv(frame[~holidays], folder / "business.csv")
