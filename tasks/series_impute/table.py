"""A multivariate series in a CSV, with missing cells allowed: reading it with one-line
errors, and writing it back with only the missing cells filled.

Time runs down the rows, oldest first, on one regular step (10 minutes, hours, days,
weeks, months, years: steps.py finds it from the dates), or at any times (an irregular
series: each row at its own time). A row a regular file leaves out is a row of missing
cells. A cell is missing when it is empty or says NA, N/A, NaN, null or
none (any case); any other text that is not a number is an error naming its row.

The cells are kept as the file writes them, so `write_filled` changes the missing cells
of the series' columns and nothing else: every other cell comes back character for
character (only the quoting and line endings are the csv module's). A row the file left
out stays out.
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
from core.series import SEPARATORS, check_date_columns, find_column, parse_dates
from core.text import shorten

from .steps import Step, grid_dates, infer_step, row_times

MISSING = {"", "na", "n/a", "nan", "null", "none"}


@dataclass
class Table:
    """The series' columns as numbers (NaN where missing) on a regular grid of dates (or,
    irregular, at the file's own dates), and the whole file as text for writing it back.
    N counts the rows a regular file left out."""

    values: np.ndarray      # (N, F) float64, NaN where a cell is missing
    dates: np.ndarray       # (N,) datetime64[s]
    step: Step | None       # None for a single row
    file_rows: np.ndarray   # (N,) int: each grid row's data row in the file, -1 if left out
    columns: list[str]      # the series' column names, as the file spells them
    positions: list[int]    # where those columns sit in the file
    rows: list[list[str]]   # every row, header first, each cell exactly as written
    separator: str
    note: str = ""          # irregular: why the file has no regular step, for a message

    @property
    def times(self) -> np.ndarray:
        """(N,) each row's time: grid positions, or nominal steps since the first row
        (steps.row_times)."""
        return row_times(self.dates, self.step)


def read_table(path: Path, columns: Sequence[str], date_columns: Sequence[str],
               min_rows: int = 2, hint: str = "") -> Table:
    """Read `columns` and the dates from a CSV, or raise a UserError saying what was found:
    a missing or repeated column, a cell that is neither a number nor missing, a date that
    cannot be read, dates that fall or repeat, too few rows. `hint` ends the message about
    a missing column (what the caller expected)."""
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
    stamps = _dates(cells, header, dates, path.name)
    step, grid, note = infer_step(stamps, path.name,
                            lambda r: shorten(" ".join(cells[c].iloc[r] for c in dates)))
    file_rows = np.full(int(grid[-1]) + 1, -1)
    file_rows[grid] = np.arange(len(grid))
    on_grid = np.full((len(file_rows), len(positions)), np.nan)
    on_grid[grid] = values
    return Table(on_grid, grid_dates(stamps, step, grid), step, file_rows,
                 [header[i] for i in positions], positions, rows, separator, note)


def _dates(cells: pd.DataFrame, header: list[str], dates: list[int],
           filename: str) -> pd.Series:
    """Each row's date (core.series.parse_dates); one column of years alone (1958) is a
    yearly series, each row on January 1."""
    if len(dates) == 1 and cells[dates[0]].str.fullmatch(r"\d{4}").all():
        return pd.to_datetime(cells[dates[0]], format="%Y")
    return parse_dates(cells, header, dates, filename)


def _read_rows(path: Path) -> tuple[list[list[str]], str]:
    """Every row as a list of cells, unchanged, and the separator: the one of , ; tab |
    that splits the header into the most columns."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as error:
        raise UserError(f"cannot read {path} as CSV: not UTF-8 text ({error.reason} at "
                        f"byte {error.start}); save it as UTF-8") from None
    except PermissionError:
        raise UserError(f"cannot read {path}: permission denied; make it readable "
                        f"(chmod u+r {path}) or give another file") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
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
        raise UserError(f"{filename} column {shorten(name)} row {row + 2} (counting the "
                        f"header as row 1) holds {shorten(cell)}, not a number{advice}; a "
                        "missing value is "
                        f"an empty cell or NA ({int(bad.sum())} such cells in the column)")
    return numbers


def decimals(table: Table, column: int) -> int:
    """How many decimals the file writes in a column: the most among its plain numbers
    (at least 1, at most 6), so filled cells look like their neighbours."""
    position = table.positions[column]
    found = [len(m.group(1)) for row in table.rows[1:] if position < len(row)
             for m in [re.fullmatch(r"\s*[-+]?\d*\.(\d+)\s*", row[position])] if m]
    return min(max(found, default=1), 6)


def write_filled(table: Table, filled: np.ndarray, answered: np.ndarray, path: Path,
                 bands: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """Write the file again with the cells `answered` (N, F), missing cells of rows the
    file has, set to `filled` (N, F); every other cell as it was read. `bands` (lower,
    upper) (N, F) adds columns <column>_lo and <column>_hi right after each series
    column, holding them at the answered cells and empty elsewhere. Atomic: `path` is
    whole or untouched. Returns the number of cells filled."""
    assert not (answered & ~np.isnan(table.values)).any(), "only missing cells are filled"
    assert (table.file_rows[answered.any(axis=1)] >= 0).all(), "only rows of the file"
    rows = [list(row) for row in table.rows]
    width = len(rows[0])
    for j, position in enumerate(table.positions):
        places = decimals(table, j)
        for i in np.nonzero(answered[:, j])[0]:
            row = rows[table.file_rows[i] + 1]
            row += [""] * (width - len(row))
            row[position] = f"{filled[i, j]:.{places}f}"
    if bands is not None:  # right to left, so each insertion leaves the others' places
        for row in rows:
            row += [""] * (width - len(row))
        for j in sorted(range(len(table.positions)), key=lambda j: -table.positions[j]):
            places, position = decimals(table, j), table.positions[j]
            cells = [[""] * len(table.rows) for _ in bands]
            for i in np.nonzero(answered[:, j])[0]:
                for k, bound in enumerate(bands):
                    cells[k][table.file_rows[i] + 1] = f"{bound[i, j]:.{places}f}"
            for r, row in enumerate(rows):
                header = [f"{table.columns[j]}_lo", f"{table.columns[j]}_hi"]
                row[position + 1:position + 1] = header if r == 0 else [c[r] for c in cells]
    out = io.StringIO()
    csv.writer(out, delimiter=table.separator, lineterminator="\n").writerows(rows)
    atomic_write_text(path, out.getvalue())
    return int(answered.sum())
