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

import csv
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import UserError
from core.text import shorten

MONTHS_PER_YEAR = 12
# Spreadsheets export with commas, or with semicolons where the comma is the decimal mark.
SEPARATORS = (",", ";", "\t", "|")
MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
               "september", "october", "november", "december")
DATE_PARTS = ("year", "month", "day")
DATE_ADVICE = "write dates as YYYY-MM or YYYY-MM-DD (e.g. 2000-01-31), one row per month"
# parse_dates serves daily and hourly files too: its advice names no step
READABLE_DATES = ("write dates as YYYY-MM-DD (e.g. 2000-01-31), with a time of day as "
                  "YYYY-MM-DD HH:MM, or YYYY-MM for months")


def column_key(name: str) -> str:
    """Column names match whatever their spacing or case: "Relative Humidity" is
    "relative_humidity"."""
    return "_".join(str(name).strip().lower().replace("_", " ").split())


@dataclass
class MonthlyFrame:
    """A CSV's numeric columns (in the order asked for) and each row's calendar month."""

    values: np.ndarray  # (N, F) float64
    months: np.ndarray  # (N,) int, 1..12
    dates: np.ndarray  # (N,) datetime64[M]: each row's month, for plots and forecasts
    columns: list[str]  # the names as the CSV spells them


def find_column(header: list[str], name: str, filename: str, hint: str = "") -> int:
    """The position of column `name` in `header`, matched as `column_key` does; a column
    that is missing or named twice is one UserError listing what the file has (and
    `hint`, a task's own advice)."""
    found = [i for i, column in enumerate(header) if column_key(column) == column_key(name)]
    if not found:
        one = (" (one column only: separate columns with , ; tab or |)"
               if len(header) == 1 else "")
        raise UserError(f"{filename} has no column {shorten(name)}; found: "
                        f"{', '.join(h if len(h) <= 40 else shorten(h) for h in header)}"
                        f"{one}{'; ' + hint if hint else ''}")
    if len(found) > 1:
        raise UserError(f"{filename} has {len(found)} columns named like {shorten(name)}: "
                        + ", ".join(f"{shorten(header[i])} (column {i + 1})" for i in found)
                        + "; rename or drop all but one")
    return found[0]


def read_monthly_csv(path: Path, columns: Sequence[str], date_columns: Sequence[str],
                     min_rows: int) -> MonthlyFrame:
    """Read `columns` and the calendar month from a monthly CSV, or raise a UserError that
    says what was found: a missing or repeated column, a non-numeric or missing value
    (with its row), rows that are not consecutive months, or fewer than `min_rows` rows.

    The separator is the one of , ; tab | that splits the header into the most columns.
    `date_columns` is either one column of full dates (2000-01, 2000-01-31), or columns
    named year, month (1-12 or an English month name) and optionally day."""
    path = Path(path)
    check_date_columns(date_columns)
    if not path.is_file():
        raise UserError(f"no CSV at {path}")
    header, cells = _read_cells(path)

    names = [find_column(header, c, path.name) for c in columns]
    dates = [find_column(header, c, path.name) for c in date_columns]
    if len(cells) < min_rows:
        raise UserError(f"{path.name} has {len(cells)} rows; this run needs at least "
                        f"{min_rows} (the lags plus the test months plus some to train on)")
    numeric = cells[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numeric)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        cell = cells[names[col]].iloc[row].strip()
        found = "is empty" if not cell else f"holds {shorten(cell)}, not a number"
        if re.fullmatch(r"[-+]?\d+,\d+", cell):
            found += " (write decimals with a point, e.g. 1.5)"
        raise UserError(f"{path.name} column {header[names[col]]!r} row {row + 2} (counting "
                        f"the header as row 1) {found}; {int(bad.sum())} missing or "
                        "non-numeric cells in all: fill or drop them")
    stamps = parse_dates(cells, header, dates, path.name)
    _check_monthly(stamps, cells, header, dates, path.name)
    return MonthlyFrame(numeric, stamps.dt.month.to_numpy(),
                        stamps.to_numpy().astype("datetime64[M]"), [header[i] for i in names])


def check_date_columns(date_columns: Sequence[str]) -> None:
    """One date column, or year and month (and day) columns: anything else would be
    silently half-used."""
    keys = [column_key(c) for c in date_columns]
    given = f"--date-columns {' '.join(date_columns)}"
    if len(keys) > len(DATE_PARTS):
        raise UserError(f"{given}: at most {len(DATE_PARTS)} date columns (year, month, day), "
                        f"got {len(keys)}")
    if len(keys) != 1 and sorted(keys) not in (sorted(DATE_PARTS[:2]), sorted(DATE_PARTS)):
        raise UserError(f"{given}: give one column of full dates, or 2 or 3 columns named "
                        "year and month (and day), each once")


def _read_cells(path: Path) -> tuple[list[str], pd.DataFrame]:
    """The header's column names and every cell as its stripped text.

    Cells stay text, with no "n/a"/"NA" turned into missing values, so messages can
    quote what the file holds; the header is read as a row so repeated names are not
    silently renamed ("Value", "Value.1")."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = f.readline()
        # max keeps the first of equals, so a one-column header reads as comma-separated
        sep = max(SEPARATORS, key=lambda s: len(next(csv.reader([first], delimiter=s), [])))
        table = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else "empty file"
        raise UserError(f"cannot read {path} as CSV: {message}") from None
    except OSError as error:  # no read permission (mode 000), a folder, a dead mount
        raise UserError(f"cannot read {path}: {error.strerror or error}; check that it is a "
                        "file you may read (ls -l)") from None
    header = [str(name).strip() for name in table.iloc[0]]
    cells = table.iloc[1:].reset_index(drop=True)
    cells.columns = range(len(header))
    return header, cells.apply(lambda column: column.str.strip())


def parse_dates(cells: pd.DataFrame, header: list[str], dates: list[int],
           filename: str) -> pd.Series:
    """Each row's date from one date column, or from year/month(/day) columns."""
    if len(dates) == 1:
        text = cells[dates[0]]
        if text.str.fullmatch(r"\d{1,4}").all():
            # pandas would read 2000 as 2000-01-01 (a string) or as 2000 ns after 1970
            raise UserError(f"{filename} column {header[dates[0]]!r} holds years only "
                            f"({shorten(text.iloc[0])}); a single date column must hold full "
                            "dates such as 2000-01 or 2000-01-31, or give year and month columns: "
                            "--date-columns Year Month")
        stamps = _wall_times(text, filename, header[dates[0]])
        if stamps.isna().any():
            row = int(np.nonzero(stamps.isna().to_numpy())[0][0])
            raise UserError(f"{filename} row {row + 2}: cannot read a date from "
                            f"{shorten(text.iloc[row])} in column {header[dates[0]]!r} (pandas "
                            f"takes the first row's format for all); {READABLE_DATES}")
        return stamps
    parts = {column_key(header[c]): c for c in dates}
    year = _integers(cells, header, parts["year"], filename, "a year such as 2000")
    month = _months(cells, header, parts["month"], filename)
    day = (_integers(cells, header, parts["day"], filename, "a day of the month, 1-31")
           if "day" in parts else 1)
    stamps = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}),
                            errors="coerce")
    if stamps.isna().any():
        row = int(np.nonzero(stamps.isna().to_numpy())[0][0])
        raise UserError(f"{filename} row {row + 2}: {_raw(cells, header, dates, row)} is no "
                        "calendar date")
    return stamps


def _wall_times(text: pd.Series, filename: str, column: str) -> pd.Series:
    """Each cell's date and time as the file writes it (NaT where unreadable). A time-zone
    offset (+01:00, Z) is dropped, not converted: a daily series stays on its days, and
    rows with different offsets (summer time) need no common zone."""
    # a time then Z or +hh:mm: some rows with an offset and some without cannot share
    # a format (pandas reads the others as unreadable), and are more likely two sources
    zoned = text.str.contains(r"\d:\d\d(?::\d\d(?:\.\d*)?)?\s*(?:Z|[+-]\d\d:?\d\d)$")
    if zoned.any() and not zoned.all():
        first, other = int(np.argmax(zoned.to_numpy())), int(np.argmin(zoned.to_numpy()))
        raise UserError(f"{filename} column {column!r} mixes dates with a time-zone offset "
                        f"(row {first + 2}: {shorten(text.iloc[first])}) and dates without "
                        f"one (row {other + 2}: {shorten(text.iloc[other])}); give every "
                        "date its UTC offset, or none")

    def parse(cells: pd.Series) -> pd.Series:
        with warnings.catch_warnings():  # pandas warns when it guesses a format per row
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(cells, errors="coerce")

    try:
        try:
            stamps = parse(text)
        except ValueError:  # "Mixed timezones detected": each row on its own wall clock
            rows = [parse(pd.Series([cell])) for cell in text]
            stamps = pd.Series([(r.dt.tz_localize(None) if r.dt.tz is not None else r).iloc[0]
                                for r in rows], index=text.index, dtype="datetime64[ns]")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)  # numpy's datetime64 has no zone
    except (ValueError, TypeError, AttributeError, OverflowError) as error:
        # pandas' reader fails on some cells with an error of its own insides
        raise UserError(f"{filename} column {column!r}: cannot read its dates "
                        f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
                        f"; {READABLE_DATES}") from None
    return stamps


def _integers(cells: pd.DataFrame, header: list[str], column: int, filename: str,
              what: str) -> pd.Series:
    """A column of whole numbers, or a UserError quoting the first cell that is not."""
    numbers = pd.to_numeric(cells[column], errors="coerce")
    bad = ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
    if bad.any():
        row = int(np.nonzero(bad.to_numpy())[0][0])
        raise UserError(f"{filename} column {header[column]!r} row {row + 2} holds "
                        f"{shorten(cells[column].iloc[row])}; it should be {what}")
    return numbers.astype(np.int64)


def _months(cells: pd.DataFrame, header: list[str], column: int, filename: str) -> list[int]:
    """Months as 1-12 from numbers or English names (January, Jan, Sept, jan.)."""
    months = []
    for row, text in enumerate(cells[column]):
        word = text.lower().rstrip(".")
        by_name = [i + 1 for i, name in enumerate(MONTH_NAMES)
                   if len(word) >= 3 and name.startswith(word)]
        if text.isdigit() and 1 <= int(text) <= MONTHS_PER_YEAR:
            months.append(int(text))
        elif len(by_name) == 1:
            months.append(by_name[0])
        else:
            raise UserError(f"{filename} column {header[column]!r} row {row + 2} holds "
                            f"{shorten(text)}; a month must be 1-12 or an English month name "
                            "(Jan, January)")
    return months


def _raw(cells: pd.DataFrame, header: list[str], dates: list[int], row: int) -> str:
    """A row's date cells as the file writes them: 'Year 2000, Month Jan'."""
    if len(dates) == 1:
        return shorten(cells[dates[0]].iloc[row])
    return shorten(", ".join(f"{header[c]} {cells[c].iloc[row]}" for c in dates))


def _check_monthly(stamps: pd.Series, cells: pd.DataFrame, header: list[str],
                   dates: list[int], filename: str) -> None:
    """The rows must step one calendar month at a time, oldest first."""
    def steps(s: pd.Series) -> np.ndarray:
        return np.diff(s.dt.year.to_numpy() * MONTHS_PER_YEAR + s.dt.month.to_numpy())

    wrong = np.nonzero(steps(stamps) != 1)[0]
    if not len(wrong):
        return
    row = int(wrong[0])
    if len(dates) == 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            day_first = pd.to_datetime(cells[dates[0]], errors="coerce", dayfirst=True)
        advice = ("they read as consecutive months day first: rewrite them as YYYY-MM-DD"
                  if not day_first.isna().any() and (steps(day_first) == 1).all()
                  else DATE_ADVICE)
    else:
        advice = "one row per month, none missing or repeated"
    raise UserError(f"{filename} rows {row + 2} and {row + 3} are {stamps.iloc[row]:%Y-%m} "
                    f"then {stamps.iloc[row + 1]:%Y-%m}: the rows must be consecutive "
                    f"months, oldest first; the file has {_raw(cells, header, dates, row)} "
                    f"then {_raw(cells, header, dates, row + 1)}; {advice}")


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
        # a constant column (e.g. zero in every training month) would divide by zero
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
