"""Fill the missing cells of a CSV with the imputer train.py saved, or with the classical
fill that does better on this very file.

    python -m tasks.series_impute.fill tasks/series_impute/gaps.csv --output filled.csv
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv --run-dir runs/mine
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv --method linear
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv --interval 0.9 \
        --plot filled.png

Before it writes a cell, fill checks itself on the file (choose.py): it hides a share of
the file's own observed cells, in short gaps and in long blocks, under a few seeded
draws (more for a short file), fills them with the network and with every classical fill
(mean, median, last observation, linear, seasonal with and without its local offset),
and fills each variable and gap kind by linear interpolation unless another method beat
it there beyond the check's noise (in every draw, or by the paired 95% interval of its
MAE over linear's over the draws; either by choose.MARGIN at least); a short table says
what it used and by how much it won. So what it writes is never the network where
interpolation did as well on the same file. --method forces one method everywhere. A
file too short to check says so and gets the baseline that won clearly (else linear) on
the training run's validation rows; a file longer than CHECK_ROWS rows is checked on its
last CHECK_ROWS rows, so time and memory grow with the file only as the fill itself does
(the network reads it IMPUTE_BATCH windows at a time).

--interval LEVEL (0.9: 90%) also writes <column>_lo and <column>_hi beside each column,
the bounds of each filled cell (empty where the value was observed), by split-conformal
calibration on fill's own check of the file (interval.py): the absolute errors of what
fill writes on the cells the check hid, grouped by variable, gap kind (short, long) and
distance to the nearest observed value (1, 2-3, 4-7, 8+ rows), give each filled cell its group's
ceil((n+1)*LEVEL)-th smallest error as its half-width. The guarantee: a filled cell's
interval holds its true value with probability at least LEVEL, over the cells of its
group, when the file's real gaps are like the cells the check hid (exchangeable). It
does not hold for gaps longer than any the check hid (those cells get the widest group's
bound and one line says how many), nor where the series changes regime in its gaps.
--plot draws the filled values (and their band) over the observed ones.

Reads <run-dir>/model.pt (default: the newest trained run's; weights, the columns and
date columns it was trained on, its step, their training mean, standard deviation and
range; no pickled code). INPUT needs those columns (other columns are kept as they are)
and rows on the step the model was trained on (read on it whenever the dates fall on
it: a daily file whose incomplete rows were dropped is daily with rows left out; a
model trained on an irregular series takes any file whose rows are typically within a
factor of 2 of its nominal step apart, at any times); a cell is missing when it is
empty or NA.
Only the missing cells of the trained columns change, written with as many decimals as
the column's other cells; every other cell is written back as it was. FILLED is written
whole or not at all, and never over INPUT.

A cell it cannot answer stays empty, and a line says which and why: a row the file
leaves out (a date missing from its regular step; add the row with empty cells to have
it filled), or a column with no value anywhere in the file (nothing to anchor it). The
exit status is then 1, as for core.answers' commands; 0 when every cell was filled. On
a calendar with regular holes (business days, steps.py) the closed days are no rows at
all, and a row left out on an open day (a holiday) is a day with no value: it stays
out, said in a line, and is not counted unanswered.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.config import OneLineParser, UserError, run_main, task_of
from core.run import trained_run
from core.train import set_threads

from . import choose, interval
from .data import block_rows, season_at
from .model import load_model
from .report import plot_filled
from .scores import band
from .steps import Step, calendar, row_times
from .table import Table, read_table, write_filled

TASK = task_of(__package__)
SHOWN_DATES = 5  # dates listed in a line about cells not answered
STEP_FACTOR = 2  # an irregular model's files: typical gap within this factor of its step
METHODS = ("model", "linear", "locf", "mean", "median", "seasonal", "seasonal+offset")
CHECK_SEED = 0   # the self-check's masks: the same file is always checked alike
CHECK_ROWS = 20_000  # a longer file is checked on its last this many rows: time and memory


def same_file(a: Path, b: Path) -> bool:
    """True when a and b name one file (also through links or another spelling)."""
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


def parse_args(argv: list[str] | None):
    parser = OneLineParser(prog=f"python -m {__package__}.fill",
                           description=__doc__.split("\n\n")[0],
                           epilog=next(p for p in __doc__.split("\n\n")
                                       if p.startswith("--interval")))
    parser.add_argument("input", help="CSV with missing cells, in the trained columns")
    parser.add_argument("--output", required=True,
                        help="where to write the filled CSV (never INPUT itself)")
    parser.add_argument("--run-dir", default="",
                        help="folder holding the model.pt that train.py wrote (default: "
                             f"the newest of runs/{TASK}*)")
    parser.add_argument("--method", default="", choices=METHODS,
                        help="fill every cell with this method instead of the one that "
                             "wins the check on the file")
    parser.add_argument("--interval", type=float, default=None, metavar="LEVEL",
                        help="also write <column>_lo and <column>_hi, each filled cell's "
                             "interval at this level (0.9: 90%%), split-conformal on the "
                             "check's hidden cells (see below; default: none)")
    parser.add_argument("--plot", default="", metavar="PATH",
                        help="also draw the filled columns, with their interval, into "
                             "this PNG")
    args = parser.parse_args(argv)
    if args.interval is not None and not 0 < args.interval < 1:
        raise UserError(f"--interval {args.interval:g}: give a level between 0 and 1 "
                        "(exclusive), such as 0.9 for a 90% interval")
    return args


def check_output(source: Path, target: Path) -> None:
    if target.is_dir():
        raise UserError(f"--output {target} is a folder; give a file name, such as "
                        f"{target / 'filled.csv'}")
    if same_file(source, target):
        raise UserError(f"--output {target} is the input file; give another path (the "
                        "input is never overwritten)")


def closed_rows(table: Table) -> np.ndarray:
    """(N,) bool: the rows a calendar with regular holes has but the file leaves out (a
    weekday holiday of business days): a day with no value, left out of the answer."""
    return (table.file_rows < 0) & bool(table.step and table.step.closed)


def unanswered(table: Table) -> list[tuple[np.ndarray, str]]:
    """The missing cells fill leaves empty, (N, F) bool, each with why."""
    missing = np.isnan(table.values)
    left_out = np.zeros(missing.shape, bool)
    left_out[(table.file_rows < 0) & ~closed_rows(table)] = True
    never_seen = np.zeros(missing.shape, bool)
    never_seen[:, missing.all(axis=0)] = True
    step = table.step.label if table.step else ""
    return [(left_out, f"the file has no row for these dates (its step is {step}); add "
                       "each as a row with empty cells to have it filled"),
            (never_seen & ~left_out, "the column has no value anywhere in the file, so "
                                     "nothing anchors it")]


def describe(table: Table, cells: np.ndarray, reason: str) -> str:
    """One line: how many cells, of which columns, on which dates (the first few), why."""
    rows = np.nonzero(cells.any(axis=1))[0]
    dates = [str(d).replace("T00:00:00", "") for d in table.dates[rows[:SHOWN_DATES]]]
    more = f", ... ({len(rows)} rows)" if len(rows) > SHOWN_DATES else ""
    columns = [name for f, name in enumerate(table.columns) if cells[:, f].any()]
    return (f"not answered: {int(cells.sum())} cell(s) of {', '.join(columns)} on "
            f"{', '.join(dates)}{more}: {reason}")


def check_step(table: Table, source: Path, saved: dict, trained_on: str,
               train_command: str) -> None:
    """A UserError unless the file's rows are on the model's step; for a model trained on
    an irregular series, unless they are typically about as far apart (and not months)."""
    step = Step.from_label(saved["step"])
    if table.step is None:
        return
    if step.irregular and not table.step.months:
        ratio = table.step.seconds / step.seconds
        if 1 / STEP_FACTOR <= ratio <= STEP_FACTOR:
            return
    elif table.step.label == step.label:
        return
    raise UserError(f"{source.name} has rows {table.step.label} apart but {trained_on} "
                    f"from rows {step.label} apart; train on this kind of file first: "
                    f"{train_command} --csv {source} ...")


def fills_for(imputer, saved: dict, table: Table, z: np.ndarray, rows: slice = slice(None)):
    """-> fills: seen (B, N, F), methods -> {method: z filled (B, N, F)}, the network and
    every classical fill (or only `methods`) under each of B masks, in standardised
    units, reading z only where seen; of the table's `rows` (N of them). An irregular
    model reads the rows' times in its own nominal step."""
    step = Step.from_label(saved["step"])
    dates, z = table.dates[rows], z[rows]
    times = row_times(dates, step) if step.irregular else None
    profile = np.array(saved["season"]) if saved["season"] else None
    season = season_at(profile, dates, step) if profile is not None else None
    extra = (calendar(dates, step) if saved["calendar"] else np.zeros((len(z), 0)))
    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    low = np.where(saved["nonnegative"], -mean / std, -np.inf)
    median = np.array(saved["median"])

    def fills(seen: np.ndarray, methods: set[str] | None = None) -> dict[str, np.ndarray]:
        return choose.every_fill(imputer, z, seen, extra, season, low, saved["window"],
                                 times, median, methods)
    return fills


def pick(method: str, result: choose.Check | None, saved: dict, table: Table,
         kinds: dict[str, np.ndarray], std: np.ndarray, blocks: tuple[int, int]
         ) -> dict[str, list[str]]:
    """{gap kind: [method per variable]}: --method everywhere; else the check's winners,
    printed; else (no check: a file too short for one), the training run's fallback."""
    columns = table.columns
    if method:
        if method.startswith("seasonal") and not saved["season"]:
            raise UserError(f"--method {method}: rows {saved['step']} apart have no cycle, "
                            "so no seasonal fill; choose another method")
        print(f"--method {method}: every cell filled by it, unchecked")
        return {kind: [method] * len(columns) for kind in choose.KINDS}
    if result is None:
        fallback = saved["fallback"]
        print(f"{len(table.values)} rows: too short to check the methods on this file "
              f"({too_short(blocks)}); using the training run's choice on its validation "
              "rows: " + "; ".join(
                  f"{kind} gaps: " + ", ".join(f"{c} {m}" for c, m in zip(columns, methods,
                                                                      strict=True))
                  for kind, methods in fallback.items()))
        return fallback
    chosen = choose.choose(result.scores)
    draws = len(next(iter(result.scores["short"].values())))
    rows = result.seen.shape[1]
    where = f" (its last {rows} rows)" if rows < len(table.values) else ""
    print(f"checked on {draws} draws of this file's own observed cells{where}, hidden as "
          "short gaps (points10) and long blocks; MAE in the file's units:")
    print(choose.table(result.scores, chosen, columns, std, kinds))
    return chosen


def too_short(blocks: tuple[int, int]) -> str:
    """What a file needs for fill to check itself on it."""
    return (f"needs {choose.BLOCKS_NEEDED * blocks[1]} rows and {choose.SMALLEST_SEEN} seen "
            "cells per column")


def bounds(level: float, result: choose.Check | None, table: Table, checked: np.ndarray,
           seen: np.ndarray, filled: np.ndarray, chosen: dict[str, list[str]],
           answered: np.ndarray, saved: dict, blocks: tuple[int, int]
           ) -> tuple[np.ndarray, np.ndarray]:
    """--interval: each filled cell's (lower, upper) bounds in the data's units (N, F),
    calibrated on the check's hidden cells of the `checked` rows (standardised values;
    interval.py); one line for the cells farther from an observed value than any the
    check hid."""
    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    if not answered.any():
        print(f"--interval {level:g}: no missing cell to fill, so no bounds to write (the "
              "_lo and _hi columns are empty)")
        return filled, filled
    if result is None:
        raise UserError(f"--interval {level:g}: {int(seen.sum())} observed cell(s) in "
                        f"{len(table.values)} row(s) are too few to calibrate an interval on "
                        f"the file's own cells (needs {interval.FEWEST}, and {blocks[0]} "
                        "rows); fill it without --interval")
    calibration = interval.calibrate(*choose.check_errors(result, checked, chosen, blocks),
                                     checked.shape[1], level)
    half, beyond = interval.half_width(calibration, seen,
                                       choose.gap_kinds(seen, blocks)["long"])
    low = np.where(saved["nonnegative"], -mean / std, -np.inf)
    lower, upper = band((filled - mean) / std, half, low)
    far = beyond & answered
    if far.any():
        print(f"--interval: {int(far.sum())} filled cell(s) lie farther from an observed "
              f"value than any the check hid (up to {int(calibration.reach.max())} rows): "
              "they get the widest group's bounds, which may be too narrow there")
    print(f"--interval {level:g}: bounds from {len(result.masks)} masks of the check, "
          "written as " + ", ".join(f"{c}_lo, {c}_hi" for c in table.columns))
    return lower * std + mean, upper * std + mean


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source, target = Path(args.input), Path(args.output)
    check_output(source, target)
    run_dir = trained_run(TASK, args.run_dir)
    train_command = f"python -m {__package__}.train --run-dir {run_dir}"
    imputer, saved = load_model(run_dir / "model.pt", train_command)
    set_threads(0, imputer)  # one thread for this small network, as train.py runs it
    columns, date_columns, step = saved["columns"], saved["date_columns"], saved["step"]
    trained_on = (f"the model in {run_dir} was trained on columns {', '.join(columns)} with "
                  f"dates in {', '.join(date_columns)}")
    table = read_table(source, columns, date_columns, min_rows=1, hint=trained_on,
                       step=Step.from_label(step))
    check_step(table, source, saved, trained_on, train_command)
    clashes = [f"{c}{end}" for c in table.columns for end in ("_lo", "_hi")
               if f"{c}{end}" in (name.strip() for name in
                                  next(csv.reader([table.lines[0]], delimiter=table.separator)))]
    if args.interval is not None and clashes:
        raise UserError(f"--interval: {source.name} already has a column {clashes[0]}; "
                        "rename it, or fill without --interval")
    if table.note:
        print(table.note)

    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    seen = np.isfinite(table.values)
    z = np.where(seen, (table.values - mean) / std, 0.0)
    fills = fills_for(imputer, saved, table, z)
    blocks = block_rows(Step.from_label(step), len(seen))
    kinds = choose.gap_kinds(seen, blocks)
    last = slice(max(len(z) - CHECK_ROWS, 0), None)  # what the check reads of a long file
    checked = table.step is not None and choose.checkable(seen[last], blocks)
    # --interval calibrates on the check even where the file is too short to choose a
    # method by it (its bounds are then wide), if it can hide the shortest block
    calibrating = (args.interval is not None and table.step is not None
                   and len(z) >= blocks[0] and seen[last].sum() >= interval.FEWEST)
    result = (choose.check(fills_for(imputer, saved, table, z, last), z[last], seen[last],
                           blocks, CHECK_SEED)
              if (checked and not args.method) or calibrating else None)
    chosen = pick(args.method, result if checked else None, saved, table, kinds, std,
                  blocks)
    if args.interval is None:
        result = None  # every method's fills of the check: no longer needed, and large
    # only the chosen methods' fills (combine starts from linear's), and each lives only
    # for this line: on a long file, the time and memory to write it
    used = {"linear", *(m for methods in chosen.values() for m in methods)}
    filled = choose.combine({method: by_mask[0] for method, by_mask
                             in fills(seen[None], used).items()}, chosen, kinds) * std + mean
    observed = seen
    closed = closed_rows(table)
    if closed.any():
        print(f"{int(closed.sum())} row(s) of its calendar ({table.step.label}) the file "
              "has no row for stay out, as days with no value (holidays): "
              + ", ".join(str(d)[:10] for d in table.dates[closed][:SHOWN_DATES])
              + (", ..." if closed.sum() > SHOWN_DATES else ""))
        seen = seen | closed[:, None]  # no cell of theirs is a gap to answer
    refused, settled = [], seen.copy()  # settled: seen, or refused for an earlier reason
    for cells, why in [*unanswered(table), (~np.isfinite(filled), "the model gave no "
                                            "finite value")]:
        refused.append((cells & ~settled, why))
        settled |= cells
    answered = ~settled
    bands = None
    if args.interval is not None:
        bands = bounds(args.interval, result, table, z[last], observed, filled, chosen,
                       answered, saved, blocks)
    count = write_filled(table, filled, answered, target, bands)
    per_column = ", ".join(f"{name} {int(answered[:, f].sum())} of {int((~seen[:, f]).sum())}"
                           for f, name in enumerate(table.columns))
    print(f"filled {count} of {int((~seen).sum())} missing cells ({per_column}) into {target}")
    for cells, reason in refused:
        if cells.any():
            print(describe(table, cells, reason))
    if args.plot:
        plot_filled(table, filled, answered, bands, Path(args.plot))
        print(f"drew the filled columns into {args.plot}")
    return 0 if count == (~seen).sum() else 1


if __name__ == "__main__":
    run_main(main)
