"""series_impute's data: reading the chosen series, splitting it by time, scaling it by
its training rows, its season, and the masks that hide observed entries on purpose.

Split by time: the last 20% of rows is test, the 10% before it validation, the rest
training; each part is imputed on its own (no method reads another part's rows), and every
statistic comes from the training rows. Three patterns of hidden entries, each scored
separately, with the same masks for every method:

    points10, points50  each entry hidden with probability 0.1 / 0.5
    block               runs of 7-30 rows (3-6 for monthly or coarser rows), each in one
                        variable, until about 20% of each variable's entries are hidden

A long file is scored on its last rows: the test part holds at most MOST_TEST_ROWS rows
(DRY_TEST_ROWS in a --dry-run) and validation half as many, so that evaluation costs the
same at any length; training draws its windows from all the rows before them.

A short file (under SHORT_ROWS rows, from MIN_ROWS up) is cut to fit it rather than
refused (`sizes`, printed in one line): validation 20%, blocks of 3-6 rows, and a
training window of a third of the rows (at most 64), so a 72-row monthly file trains
on windows of 24 rows. --window still sets the window.

An irregular series (rows at their own times, steps.py) is split, masked and blocked by
rows alike: a block hides 7-30 consecutive readings (3-6 where the median gap is a month
or more), however much time they span.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import require
from core.data import DATA_DIR, fetch

from .datasets import business_csv, co2_csv, elec_equip_csv, sunspots_csv, synthetic_csv
from .irregular import co2_irregular_csv, seattle_irregular_csv
from .steps import Step, calendar, cycle_position
from .table import Table, read_table

# name: (file, columns, date columns); fetched with its checksum, or made (datasets.py)
DATASETS = {
    "seattle": ("seattle-weather.csv", ["precipitation", "temp_max", "temp_min", "wind"],
                ["date"]),
    "rainfall": ("Rainfall_data.csv", ["Specific_Humidity", "Relative_Humidity",
                                       "Temperature", "Precipitation"], ["Year", "Month"]),
    "co2": ("co2.csv", ["co2"], ["date"]),
    "sunspots": ("sunspots.csv", ["sunactivity"], ["year"]),
    "synthetic": ("synthetic.csv", ["a", "b", "c"], ["date"]),
    "seattle_irregular": ("seattle_irregular.csv", ["precipitation", "temp_max", "temp_min",
                                                    "wind"], ["date"]),
    "co2_irregular": ("co2_irregular.csv", ["co2"], ["date"]),
    "elec_equip": ("elec_equip.csv", ["orders"], ["date"]),
    "business": ("business.csv", ["a", "b", "c"], ["date"]),
}
MADE = {"co2.csv": co2_csv, "sunspots.csv": sunspots_csv, "synthetic.csv": synthetic_csv,
        "seattle_irregular.csv": seattle_irregular_csv, "co2_irregular.csv": co2_irregular_csv,
        "elec_equip.csv": elec_equip_csv, "business.csv": business_csv}
PATTERNS = ("points10", "points50", "block")
POINT_SHARE = {"points10": 0.1, "points50": 0.5}
BLOCK_ROWS = {"fine": (7, 30), "coarse": (3, 6)}  # shortest and longest hidden run
BLOCK_SHARE = 0.2
TEST_SHARE, VAL_SHARE = 0.2, 0.1
WINDOW = 64          # rows per training window, where the file has room
MIN_ROWS = 40        # fewer: too few rows to split in three and still hide blocks
SHORT_ROWS = 300     # fewer: a short file (sizes), whose 10% could not hold 30-row blocks
SHORT_VAL_SHARE = 0.2
MOST_TEST_ROWS = 10_000  # the test part's most rows (validation: half): scores from 10,000
DRY_TEST_ROWS = 400      # rows are precise enough, and cost stays the same at any length
SEASONAL_WIDTH = 15 / 366  # share of the cycle averaged on each side (+-15 days a year)


def load(dataset: str, csv: str, columns: list[str],
         date_columns: list[str]) -> tuple[Table, str, list[str]]:
    """The table of the named dataset or of the CSV `csv`, its file name and its date
    columns (the dataset's own where none are given)."""
    if csv:
        path = Path(csv)
    else:
        name, default_columns, default_dates = DATASETS[dataset]
        path = MADE[name](DATA_DIR) if name in MADE else fetch(name)
        columns, date_columns = columns or default_columns, date_columns or default_dates
    return read_table(path, columns, date_columns), path.name, list(date_columns)


@dataclass(frozen=True)
class Sizes:
    """How a series of `rows` rows is cut: its validation share, the test part's most
    rows (validation: half as many), its hidden blocks (shortest, longest, in rows) and
    the training window; `short` when they follow a file under SHORT_ROWS rows rather
    than the defaults."""

    rows: int
    val_share: float
    most_test: int
    blocks: tuple[int, int]
    window: int
    short: bool

    @property
    def note(self) -> str:
        """The line that says how a short file is cut, or that a long one is scored on
        its last rows ("" for any other)."""
        n_train, n_val = split_rows(self.rows, self.val_share, self.most_test)
        if n_val == round(self.val_share * self.rows) and not self.short:
            return ""
        if not self.short:
            return (f"long file ({self.rows} rows): validation and test are its last "
                    f"{self.rows - n_train} rows ({n_val} and {self.rows - n_train - n_val}"
                    f"; at most {self.most_test} test rows), training the {n_train} before")
        return (f"short file ({self.rows} rows): window {self.window}, validation "
                f"{self.val_share:.0%}, blocks {self.blocks[0]}-{self.blocks[1]} rows")


def block_rows(step: Step, rows: int) -> tuple[int, int]:
    """The shortest and longest hidden block, in rows, for a series of `rows` rows on
    `step`: a few rows for monthly or coarser rows and in a short file, else 7-30."""
    return BLOCK_ROWS["coarse" if step.coarse or rows < SHORT_ROWS else "fine"]


def sizes(rows: int, step: Step, window: int = 0, most_test: int = MOST_TEST_ROWS) -> Sizes:
    """The cut of a series of `rows` rows: the defaults, or for a short file a larger
    validation part (so it holds blocks and picks the epoch on more than a handful of
    rows), short blocks and a window of a third of the rows; `window` (not 0) is the
    user's; `most_test`: the test part's most rows (DRY_TEST_ROWS for --dry-run)."""
    short = rows < SHORT_ROWS
    auto = min(WINDOW, rows // 3) if short else WINDOW
    return Sizes(rows, SHORT_VAL_SHARE if short else VAL_SHARE, most_test,
                 block_rows(step, rows), window or auto, short)


def split_rows(n: int, val_share: float = VAL_SHARE,
               most_test: int = MOST_TEST_ROWS) -> tuple[int, int]:
    """Row counts of training and validation; the test is the rest: the last 20%, at
    most `most_test` rows (and validation at most half as many)."""
    n_test = min(round(TEST_SHARE * n), most_test)
    n_val = min(round(val_share * n), most_test // 2)
    return n - n_test - n_val, n_val


def check_sizes(table: Table, source: str, cut: Sizes, with_calendar: bool) -> tuple[int, int]:
    """Training and validation row counts, once the series is long enough for the window
    and the blocks, and every column has a training value; else a UserError."""
    n = len(table.values)
    n_train, n_val = split_rows(n, cut.val_share, cut.most_test)
    longest = cut.blocks[1]
    require(n_train >= cut.window, f"{source} has {n} rows, so {n_train} training rows; "
            f"--window {cut.window} needs at least that many: lower --window (or leave it "
            "out: it then follows the file)")
    require(cut.window > longest, f"--window {cut.window} must exceed the longest hidden "
            f"block, {longest} rows")
    require(n_val > longest, f"{source} has {n} rows, so {n_val} validation rows; the "
            f"block pattern needs more than {longest}")
    require(not with_calendar or table.step.cycle is not None,
            f"--calendar: {source}'s rows are {table.step.label} apart, so they have no "
            "place in a day or a year to feed; drop --calendar")
    empty = [name for name, seen in zip(table.columns,
                                        np.isfinite(table.values[:n_train]).any(axis=0),
                                        strict=True) if not seen]
    require(not empty, f"{source}: column(s) {', '.join(empty)} have no value in the "
            f"training rows (the first {n_train}); nothing to learn them from")
    return n_train, n_val


def seasonal_profile(train: np.ndarray, positions: np.ndarray, period: int) -> np.ndarray:
    """train (N, F) standardised (NaN where missing), positions (N,) in the cycle ->
    (period, F): each place's training mean, over +-SEASONAL_WIDTH of the cycle."""
    width = round(SEASONAL_WIDTH * period)
    profile = np.zeros((period, train.shape[1]))
    for p in range(period):
        distance = np.abs(positions - p)
        near = np.minimum(distance, period - distance) <= width
        if near.any() and np.isfinite(train[near]).any(axis=0).all():
            profile[p] = np.nanmean(train[near], axis=0)
    return profile


def season_at(profile: np.ndarray | None, dates: np.ndarray, step: Step | None) -> np.ndarray:
    """The profile at each row (N, F); zeros where the rows have no cycle (or no profile)."""
    if profile is None or step is None or step.cycle is None:
        width = 0 if profile is None else profile.shape[1]
        return np.zeros((len(dates), width))
    return profile[cycle_position(dates, step)[0]]


@dataclass
class Data:
    """The series standardised with training statistics, its parts and their masks. Every
    array is (N, F) or (F,) over the whole grid unless said."""

    table: Table
    source: str              # the file's name
    date_columns: list[str]
    sizes: Sizes             # the validation share, the blocks and the window
    n_train: int
    z: np.ndarray            # standardised, NaN where missing in the file
    observed: np.ndarray     # bool, seen in the file
    mean: np.ndarray         # (F,) in the data's units
    std: np.ndarray
    nonnegative: np.ndarray  # (F,) bool: never below zero in the training rows
    profile: np.ndarray | None   # (period, F) the training season; None: no cycle
    season: np.ndarray       # (N, F) the profile at each row (zeros where none)
    extra: np.ndarray        # (N, E) calendar features, E = 0 or 2
    parts: dict[str, np.ndarray]              # "val", "test": their rows
    val_masks: dict[str, np.ndarray]          # pattern: hidden (T_val, F)
    test_masks: list[dict[str, np.ndarray]]   # one {pattern: hidden (T_test, F)} per draw

    def truth(self, split: str) -> np.ndarray:
        return self.z[self.parts[split]]

    @property
    def times(self) -> np.ndarray:
        """(N,) each row's time: its grid position, or for an irregular series its own
        time in nominal steps since the first row (steps.row_times)."""
        return self.table.times

    @property
    def low(self) -> np.ndarray:
        """(F,) the least value an imputation may take, standardised: zero for a variable
        never below it in training, else none."""
        return np.where(self.nonnegative, -self.mean / self.std, -np.inf)


def prepare(table: Table, source: str, date_columns: list[str], window: int,
            with_calendar: bool, mask_seed: int, mask_draws: int,
            most_test: int = MOST_TEST_ROWS) -> Data:
    """Check and split the series; scale it by the training rows; its season; the masks.
    `window` 0: the window follows the file's length; `most_test`: the test part's most
    rows (sizes)."""
    require(len(table.values) >= MIN_ROWS, f"{source} has {len(table.values)} rows: too "
            f"few to learn to fill gaps from; this needs at least {MIN_ROWS} (training, "
            "validation and test parts, each with room for a hidden block); give more rows")
    cut = sizes(len(table.values), table.step, window, most_test)
    n_train, n_val = check_sizes(table, source, cut, with_calendar)
    values, n = table.values, len(table.values)
    train = values[:n_train]
    mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column would divide by zero
    z = (values - mean) / std
    observed = np.isfinite(values)
    profile = None
    if table.step.cycle is not None:
        positions, period = cycle_position(table.dates, table.step)
        profile = seasonal_profile(z[:n_train], positions[:n_train], period)
    parts = {"val": np.arange(n_train, n_train + n_val), "test": np.arange(n_train + n_val, n)}
    test_seen = observed[parts["test"]]
    data = Data(
        table, source, date_columns, cut, n_train, z, observed, mean, std,
        np.nanmin(train, axis=0) >= 0, profile,
        season_at(profile, table.dates, table.step) if profile is not None
        else np.zeros(values.shape),
        calendar(table.dates, table.step) if with_calendar else np.zeros((n, 0)), parts,
        fixed_masks(observed[parts["val"]], "val", cut.blocks, mask_seed),
        [fixed_masks(test_seen, "test", cut.blocks, mask_seed + d)
         for d in range(mask_draws)])
    left_out = int((table.file_rows < 0).sum())
    for note in (table.note, cut.note):
        if note:
            print(note)
    print(f"{source}: {n} rows {table.step.label} apart ({left_out} left out of the file) "
          f"of {', '.join(table.columns)}; train {n_train}, validation {n_val}, test "
          f"{len(parts['test'])}; {int((~observed).sum())} cells missing; test scored "
          f"under {mask_draws} mask draws")
    return data


# ---- missing patterns: which observed entries are hidden on purpose

def hide_points(observed: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Each observed entry hidden with probability `share`; in a short part where that
    hides none of a variable, one of its entries, so every variable is scored."""
    hidden = observed & (rng.random(observed.shape) < share)
    for v in np.nonzero(observed.any(axis=0) & ~hidden.any(axis=0))[0]:
        hidden[rng.choice(np.nonzero(observed[:, v])[0]), v] = True
    return hidden


def hide_blocks(observed: np.ndarray, shortest: int, longest: int,
                rng: np.random.Generator) -> np.ndarray:
    """Runs of `shortest`..`longest` rows, each in one variable, until about BLOCK_SHARE
    of every variable's observed entries are hidden (so each variable is scored). Runs
    never touch (a free row between two in one variable): each is one gap of its drawn
    length."""
    rows, variables = observed.shape
    longest = min(longest, rows)
    hidden = np.zeros(observed.shape, dtype=bool)
    for v in range(variables):
        goal = BLOCK_SHARE * observed[:, v].sum()
        for _ in range(100 * rows):  # bounded: a short series may have no room left
            if (hidden[:, v] & observed[:, v]).sum() >= goal:
                break
            length = int(rng.integers(shortest, longest + 1))
            start = int(rng.integers(0, rows - length + 1))
            if not hidden[max(start - 1, 0):start + length + 1, v].any():
                hidden[start:start + length, v] = True
    return hidden & observed


def hide(observed: np.ndarray, pattern: str, blocks: tuple[int, int],
         rng: np.random.Generator) -> np.ndarray:
    """observed (T, F) bool -> hidden (T, F) bool, a subset of it, drawn by `pattern`;
    `blocks`: the shortest and longest block (block_rows)."""
    if pattern == "block":
        return hide_blocks(observed, *blocks, rng)
    return hide_points(observed, POINT_SHARE[pattern], rng)


def fixed_masks(observed: np.ndarray, split: str, blocks: tuple[int, int],
                mask_seed: int) -> dict[str, np.ndarray]:
    """The validation masks (those that pick the epoch, or shrink.py's draws), or one draw
    of the test masks: one stream per (seed, split, pattern), so each is reproducible on
    its own."""
    return {p: hide(observed, p, blocks,
                    np.random.default_rng([mask_seed, ("val", "test").index(split),
                                           PATTERNS.index(p)]))
            for p in PATTERNS}
