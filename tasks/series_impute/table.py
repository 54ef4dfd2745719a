"""A multivariate series in a CSV, with missing cells allowed: reading it with one-line
errors, and writing it back with only the missing cells filled.

Time runs down the rows, oldest first, on one regular step (10 minutes, hours, days,
weeks, months, years: steps.py finds it from the dates), or at any times (an irregular
series: each row at its own time). A row a regular file leaves out is a row of missing
cells. A cell is missing when it is empty or says NA, N/A, NaN, null or
none (any case); any other text that is not a number is an error naming its row.

The file is kept as it is written (each record's text, not its cells: a cell is an
object of its own, several times the memory of its characters; and the records a block
to a string, Texts), so `write_filled` changes the missing cells of the series' columns
and nothing else: every other cell comes back character for character (only the quoting
and line endings are the csv module's). A row the file left out stays out.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TextIO

import numpy as np
import pandas as pd

from core.config import UserError
from core.files import atomic_write_text
from core.series import SEPARATORS, check_date_columns, find_column, parse_dates
from core.text import shorten

from .steps import Step, grid_dates, infer_step, row_times

MISSING = {"", "na", "n/a", "nan", "null", "none"}


class Texts(Sequence[str]):
    """Strings read one by one (a file's records; a date column's cells), kept
    Numbers.CHUNK of them to a string: a string object each costs about 50 bytes over its
    characters, and a long file's millions of them, held among the cells read and dropped
    beside them, left the memory in between unusable until the process ends."""

    def __init__(self) -> None:
        self.blocks: list[str] = []        # CHUNK strings each, joined
        self.ends: list[np.ndarray] = []   # each block's strings' end offsets in it
        self.last: list[str] = []          # the strings after the last full block

    def append(self, text: str) -> None:
        self.last.append(text)
        if len(self.last) == Numbers.CHUNK:
            self.blocks.append("".join(self.last))
            self.ends.append(np.cumsum([len(t) for t in self.last]))
            self.last = []

    def __len__(self) -> int:
        return len(self.blocks) * Numbers.CHUNK + len(self.last)

    def __iter__(self) -> Iterator[str]:  # in order: faster than indexing each
        for block, ends in zip(self.blocks, self.ends, strict=True):
            start = 0
            for end in ends.tolist():
                yield block[start:end]
                start = end
        yield from self.last

    def __getitem__(self, r: int) -> str:
        block, i = divmod(r, Numbers.CHUNK)
        if block == len(self.blocks):
            return self.last[i]
        ends = self.ends[block]
        return self.blocks[block][ends[i - 1] if i else 0:ends[i]]


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
    places: list[int]       # decimals the file writes in each column (decimals())
    lines: Texts            # every record's text (with its line ending), header first
    separator: str
    note: str = ""          # irregular: why the file has no regular step, for a message

    @property
    def times(self) -> np.ndarray:
        """(N,) each row's time: grid positions, or nominal steps since the first row
        (steps.row_times)."""
        return row_times(self.dates, self.step)


def read_table(path: Path, columns: Sequence[str], date_columns: Sequence[str],
               min_rows: int = 2, hint: str = "", step: Step | None = None) -> Table:
    """Read `columns` and the dates from a CSV, or raise a UserError saying what was found:
    a missing or repeated column, a cell that is neither a number nor missing, a date that
    cannot be read, dates that fall or repeat, too few rows. `hint` ends the message about
    a missing column (what the caller expected); `step`: read the rows on it when their
    dates fall on it (steps.infer_step)."""
    path = Path(path)
    check_date_columns(date_columns)
    if not path.is_file():
        raise UserError(f"no CSV at {path}")
    header: list[str] = []
    positions: list[int] = []
    dates: list[int] = []
    numbers: dict[int, Numbers] = {}
    texts: dict[int, Texts] = {}

    def wanted(first: list[str]) -> list[tuple[int, Callable[[str], None]]]:
        header.extend(name.strip() for name in first)
        positions.extend(find_column(header, c, path.name, hint) for c in columns)
        dates.extend(find_column(header, c, path.name, hint) for c in date_columns)
        numbers.update((i, Numbers()) for i in positions)
        texts.update((i, Texts()) for i in dates)
        return ([(i, numbers[i].append) for i in numbers]
                + [(i, texts[i].append) for i in texts])
    lines, separator = _read_rows(path, wanted)
    if len(lines) - 1 < min_rows:
        raise UserError(f"{path.name} has {len(lines) - 1} rows after the header; this "
                        f"needs at least {min_rows}")
    values = np.column_stack([numbers[i].read(header[i], path.name) for i in positions])
    cells = pd.DataFrame({i: list(text) for i, text in texts.items()}, dtype=str)
    stamps = _dates(cells, header, dates, path.name)
    step, grid, note = infer_step(
        stamps, path.name, lambda r: shorten(" ".join(cells[c].iloc[r] for c in dates)),
        step)
    file_rows = np.full(int(grid[-1]) + 1, -1)
    file_rows[grid] = np.arange(len(grid))
    on_grid = np.full((len(file_rows), len(positions)), np.nan)
    on_grid[grid] = values
    return Table(on_grid, grid_dates(stamps, step, grid), step, file_rows,
                 [header[i] for i in positions], positions,
                 [numbers[i].places for i in positions], lines, separator, note)


def _dates(cells: pd.DataFrame, header: list[str], dates: list[int],
           filename: str) -> pd.Series:
    """Each row's date (core.series.parse_dates); one column of whole years alone (1958,
    but also 1, 2, 3 or -6000: any era numpy's dates hold) is a yearly series, each row
    on January 1."""
    text = cells[dates[0]]
    if len(dates) == 1 and text.str.fullmatch(r"-?\d{1,6}").all():
        years = text.astype(np.int64).to_numpy() - 1970  # numpy counts years from 1970
        return pd.Series(years.astype("datetime64[Y]").astype("datetime64[s]"))
    return parse_dates(cells, header, dates, filename)


def _records(f: TextIO, separator: str) -> Iterator[tuple[str, list[str]]]:
    """Each record of a CSV file: its text (its lines, with their endings: a quoted cell
    may hold a line break) and its cells."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in f:
            consumed.append(line)
            yield line
    for cells in csv.reader(lines(), delimiter=separator):
        yield "".join(consumed), cells
        consumed.clear()


def _read_rows(path: Path, wanted: Callable[[list[str]], list[tuple[int, Callable[[str], None]]]]
               ) -> tuple[Texts, str]:
    """Every record's text (header first; blank ones dropped) and the separator: the one
    of , ; tab | that splits the header into the most columns. `wanted(header cells)`
    names the columns read, by position, each with what takes its cells row by row
    (stripped; empty where a row is short)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()  # whole, so an encoding error is one line before any parsing
    except UnicodeDecodeError as error:
        raise UserError(f"cannot read {path} as CSV: not UTF-8 text ({error.reason} at "
                        f"byte {error.start}); save it as UTF-8") from None
    except PermissionError:
        raise UserError(f"cannot read {path}: permission denied; make it readable "
                        f"(chmod u+r {path}) or give another file") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    if not text.strip():
        raise UserError(f"cannot read {path} as CSV: the file is empty")
    end = text.find("\n")
    first = text if end < 0 else text[:end]
    # max keeps the first of equals, so a one-column header reads as comma-separated
    separator = max(SEPARATORS, key=lambda s: len(next(csv.reader([first], delimiter=s), [])))
    del text  # parsed again from the file as it streams: a copy in io.StringIO would
    # take four bytes a character, the largest thing in memory on a long file
    lines = Texts()
    columns: list[tuple[int, Callable[[str], None]]] = []
    width, long = 0, []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for raw, cells in _records(f, separator):
                if not cells:
                    continue
                if not lines:
                    width = len(cells)
                    columns = wanted(cells)
                elif len(cells) > width:
                    long.append((len(lines), len(cells)))
                else:
                    for i, take in columns:
                        take(cells[i].strip() if i < len(cells) else "")
                lines.append(raw)
    except csv.Error as error:
        raise UserError(f"cannot read {path} as CSV: {error}") from None
    if not lines:
        raise UserError(f"cannot read {path} as CSV: the file is empty")
    if long:
        raise UserError(f"{path.name} row {long[0][0] + 1} has {long[0][1]} cells "
                        f"but the header has {width} (separator {separator!r}); quote "
                        "cells that contain it")
    return lines, separator


def _numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Cells as floats, NaN where missing, and where a cell is neither (bool)."""
    missing = text.str.lower().isin(MISSING)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(np.float64)
    return numbers, ~missing.to_numpy() & ~np.isfinite(numbers)


def decimals(cells: Sequence[str]) -> int:
    """How many decimals cells write: the most among their plain numbers (at least 1, at
    most 6), so filled cells look like their neighbours."""
    plain = re.compile(r"\s*[-+]?\d*\.(\d+)\s*")
    found = (len(m.group(1)) for cell in cells if (m := plain.fullmatch(cell)))
    return min(max(found, default=1), 6)


class Numbers:
    """A column's cells read as numbers CHUNK at a time, as they stream in, so a long
    file's cells are never all held as text (each an object, several times the memory of
    its characters); the decimals it writes and its first cell that is no number are
    kept for `read`."""

    CHUNK = 65_536

    def __init__(self) -> None:
        self.text: list[str] = []
        self.parts: list[np.ndarray] = []
        self.places = 1
        self.bad = 0
        self.first_bad: tuple[int, str] | None = None  # (row among the data, cell)
        self.rows = 0

    def append(self, cell: str) -> None:
        self.text.append(cell)
        if len(self.text) == self.CHUNK:
            self._convert()

    def _convert(self) -> None:
        numbers, bad = _numbers(pd.Series(self.text, dtype=str))
        if bad.any() and self.first_bad is None:
            row = int(np.nonzero(bad)[0][0])
            self.first_bad = (self.rows + row, self.text[row])
        self.bad += int(bad.sum())
        self.places = max(self.places, decimals(self.text))
        self.parts.append(numbers)
        self.rows += len(self.text)
        self.text = []

    def read(self, name: str, filename: str) -> np.ndarray:
        """The column as floats, NaN where missing; a UserError naming the first cell
        that is neither a number nor missing."""
        self._convert()
        if self.first_bad is not None:
            row, cell = self.first_bad
            advice = (" (write decimals with a point, e.g. 1.5)"
                      if re.fullmatch(r"[-+]?\d+,\d+", cell) else "")
            raise UserError(f"{filename} column {shorten(name)} row {row + 2} (counting the "
                            f"header as row 1) holds {shorten(cell)}, not a number{advice}; "
                            f"a missing value is an empty cell or NA ({self.bad} such cells "
                            "in the column)")
        return np.concatenate(self.parts)


def write_filled(table: Table, filled: np.ndarray, answered: np.ndarray, path: Path,
                 bands: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """Write the file again with the cells `answered` (N, F), missing cells of rows the
    file has, set to `filled` (N, F); every other cell as it was read. `bands` (lower,
    upper) (N, F) adds columns <column>_lo and <column>_hi right after each series
    column, holding them at the answered cells and empty elsewhere. Atomic: `path` is
    whole or untouched. Returns the number of cells filled."""
    assert not (answered & ~np.isnan(table.values)).any(), "only missing cells are filled"
    assert (table.file_rows[answered.any(axis=1)] >= 0).all(), "only rows of the file"
    def cells(line: str) -> list[str]:
        return next(csv.reader([line], delimiter=table.separator), [])
    width = len(cells(table.lines[0]))
    changed: dict[int, list[str]] = {}  # file row: its cells with the fills
    for j, position in enumerate(table.positions):
        for i in np.nonzero(answered[:, j])[0]:
            r = table.file_rows[i] + 1
            if r not in changed:
                row = cells(table.lines[r])
                changed[r] = row + [""] * (width - len(row))
            changed[r][position] = f"{filled[i, j]:.{table.places[j]}f}"
    bounds: dict[int, dict[int, list[str]]] = {}  # file row: {column j: [lo, hi]}
    for j in range(len(table.positions)) if bands is not None else ():
        for i in np.nonzero(answered[:, j])[0]:
            bounds.setdefault(table.file_rows[i] + 1, {})[j] = [
                f"{bound[i, j]:.{table.places[j]}f}" for bound in bands]

    def with_bands(r: int, row: list[str]) -> list[str]:
        if bands is None:
            return row
        row = row + [""] * (width - len(row))
        # right to left, so each insertion leaves the other columns' places
        for j in sorted(range(len(table.positions)), key=lambda j: -table.positions[j]):
            added = ([f"{table.columns[j]}_lo", f"{table.columns[j]}_hi"] if r == 0
                     else bounds.get(r, {}).get(j, ["", ""]))
            row[table.positions[j] + 1:table.positions[j] + 1] = added
        return row

    def text() -> Iterator[str]:
        # a block of lines at a time, each written as it is made: never the whole text
        # in memory, nor a string object per line
        lines: list[str] = []
        writer = csv.writer(SimpleNamespace(write=lines.append), delimiter=table.separator,
                            lineterminator="\n")
        for r, line in enumerate(table.lines):
            writer.writerow(with_bands(r, changed.get(r) or cells(line)))
            if len(lines) == Numbers.CHUNK:
                yield "".join(lines)
                lines.clear()
        yield "".join(lines)
    atomic_write_text(path, text())
    return int(answered.sum())
