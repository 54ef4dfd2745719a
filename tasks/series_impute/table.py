"""A multivariate series in a CSV, daily or monthly, with missing cells allowed: reading it
with one-line errors, and writing it back with only the missing cells filled.

Time runs down the rows, which must be consecutive days or consecutive months, oldest
first. A day with no measurement is a row of empty cells, not a row left out: the row's
position is its time. A cell is missing when it is empty or says NA, N/A, NaN, null or
none (any case); any other text that is not a number is an error naming its row.

The cells are kept as the file writes them, so `write_filled` changes the missing cells
of the series' columns and nothing else: every other cell comes back character for
character (only the quoting and line endings are the csv module's).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import UserError
from core.files import atomic_write_text
from core.series import check_date_columns, find_column, parse_dates

MISSING = {"", "na", "n/a", "nan", "null", "none"}
# Spreadsheets export with commas, or with semicolons where the comma is the decimal mark.
SEPARATORS = (",", ";", "\t", "|")
DATE_ADVICE = ("write dates as YYYY-MM-DD (daily rows) or YYYY-MM (monthly rows), e.g. "
               "2012-01-31, one row per day or per month")


@dataclass
class Table:
    """The series' columns as numbers (NaN where missing), each row's date, and the whole
    file as text for writing it back."""

    values: np.ndarray      # (N, F) float64, NaN where a cell is missing
    dates: np.ndarray       # (N,) datetime64[D]
    frequency: str          # "daily" or "monthly"
    columns: list[str]      # the series' column names, as the file spells them
    positions: list[int]    # where those columns sit in the file
    rows: list[list[str]]   # every row, header first, each cell exactly as written
    separator: str


def read_table(path: Path, columns: Sequence[str], date_columns: Sequence[str],
               min_rows: int = 2, hint: str = "") -> Table:
    """Read `columns` and the dates from a CSV, or raise a UserError saying what was found:
    a missing or repeated column, a cell that is neither a number nor missing, a date that
    cannot be read, rows that are not consecutive days or months, too few rows. `hint`
    ends the message about a missing column (what the caller expected)."""
    path = Path(path)
    check_date_columns(date_columns)
    if not path.is_file():
        raise UserError(f"no CSV at {path}")
    rows, separator = _read_rows(path)
    header = [name.strip() for name in rows[0]]
    width = len(header)
    # short rows are padded with empty (missing) cells; long rows are a parse error above
    cells = pd.DataFrame([[c.strip() for c in row] + [""] * (width - len(row))
                          for row in rows[1:]], columns=range(width), dtype=str)

    positions = [find_column(header, c, path.name, hint) for c in columns]
    dates = [find_column(header, c, path.name, hint) for c in date_columns]
    if len(cells) < min_rows:
        raise UserError(f"{path.name} has {len(cells)} rows after the header; this needs "
                        f"at least {min_rows}")
    values = np.column_stack([_numbers(cells[i], header[i], path.name) for i in positions])
    stamps = parse_dates(cells, header, dates, path.name)
    frequency = _frequency(stamps, cells, dates, path.name)
    return Table(values, stamps.to_numpy().astype("datetime64[D]"), frequency,
                 [header[i] for i in positions], positions, rows, separator)


def _read_rows(path: Path) -> tuple[list[list[str]], str]:
    """Every row as a list of cells, unchanged, and the separator: the one of , ; tab |
    that splits the header into the most columns."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as error:
        raise UserError(f"cannot read {path} as CSV: not UTF-8 text ({error.reason} at "
                        f"byte {error.start}); save it as UTF-8") from None
    first = text.split("\n", 1)[0]
    # max keeps the first of equals, so a one-column header reads as comma-separated
    separator = max(SEPARATORS, key=lambda s: len(next(csv.reader([first], delimiter=s), [])))
    try:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=separator) if row]
    except csv.Error as error:
        raise UserError(f"cannot read {path} as CSV: {error}") from None
    if not rows:
        raise UserError(f"cannot read {path} as CSV: the file is empty")
    width = len(rows[0])
    long = [i for i, row in enumerate(rows) if len(row) > width]
    if long:
        raise UserError(f"{path.name} row {long[0] + 1} has {len(rows[long[0]])} cells "
                        f"but the header has {width} (separator {separator!r}); quote "
                        "cells that contain it")
    return rows, separator


def _numbers(text: pd.Series, name: str, filename: str) -> np.ndarray:
    """A column's cells as floats, NaN where missing; any other non-number is an error."""
    missing = text.str.lower().isin(MISSING)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(np.float64)
    bad = ~missing.to_numpy() & ~np.isfinite(numbers)
    if bad.any():
        row = int(np.nonzero(bad)[0][0])
        cell = text.iloc[row]
        advice = (" (write decimals with a point, e.g. 1.5)"
                  if re.fullmatch(r"[-+]?\d+,\d+", cell) else "")
        raise UserError(f"{filename} column {name!r} row {row + 2} (counting the header as "
                        f"row 1) holds {cell!r}, not a number{advice}; a missing value is "
                        f"an empty cell or NA ({int(bad.sum())} such cells in the column)")
    return numbers


def _frequency(stamps: pd.Series, cells: pd.DataFrame, dates: list[int],
               filename: str) -> str:
    """"daily" when each row is the day after the one before, "monthly" when each is the
    next calendar month; anything else is an error naming the first wrong pair of rows."""
    days = np.diff(stamps.to_numpy().astype("datetime64[D]").astype(np.int64))
    months = np.diff(stamps.dt.year.to_numpy() * 12 + stamps.dt.month.to_numpy())
    if (days == 1).all():
        return "daily"
    if (months == 1).all():
        return "monthly"
    daily = np.median(days) < 28  # what the file mostly is, to word the message
    row = int(np.nonzero((days if daily else months) != 1)[0][0])
    unit = "day" if daily else "month"
    shown = "%Y-%m-%d" if daily else "%Y-%m"
    raw = [" ".join(cells[c].iloc[r] for c in dates) for r in (row, row + 1)]
    raise UserError(f"{filename} rows {row + 2} and {row + 3} are "
                    f"{stamps.iloc[row]:{shown}} then {stamps.iloc[row + 1]:{shown}} (the "
                    f"file has {raw[0]!r} then {raw[1]!r}): the rows must be consecutive "
                    f"{unit}s, oldest first; give a {unit} without data a row of empty cells")


def decimals(table: Table, column: int) -> int:
    """How many decimals the file writes in a column: the most among its plain numbers
    (at least 1, at most 6), so filled cells look like their neighbours."""
    position = table.positions[column]
    found = [len(m.group(1)) for row in table.rows[1:] if position < len(row)
             for m in [re.fullmatch(r"\s*[-+]?\d*\.(\d+)\s*", row[position])] if m]
    return min(max(found, default=1), 6)


def write_filled(table: Table, filled: np.ndarray, path: Path) -> int:
    """Write the file again with the missing cells of the series' columns set to `filled`
    (N, F); every other cell as it was read. Atomic: `path` is whole or untouched. Returns
    the number of cells filled."""
    rows = [list(row) for row in table.rows]
    width = len(rows[0])
    count = 0
    for j, position in enumerate(table.positions):
        places = decimals(table, j)
        for i in np.nonzero(np.isnan(table.values[:, j]))[0]:
            row = rows[i + 1]
            row += [""] * (width - len(row))
            row[position] = f"{filled[i, j]:.{places}f}"
            count += 1
    out = io.StringIO()
    csv.writer(out, delimiter=table.separator, lineterminator="\n").writerows(rows)
    atomic_write_text(path, out.getvalue())
    return count
