"""Fill the missing cells of a CSV with the imputer train.py saved, or with the classical
fill that does better on this very file.

    python -m tasks.series_impute.fill tasks/series_impute/gaps.csv --output filled.csv
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv --run-dir runs/mine
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv --method linear

Before it writes a cell, fill checks itself on the file (choose.py): it hides a share of
the file's own observed cells, in short gaps and in long blocks, fills them with the
network and with every classical fill (mean, median, last observation, linear, seasonal
with and without its local offset), and fills each variable and gap kind by linear
interpolation unless another method beat it there in every draw and by a clear margin
(choose.MARGIN); a short table says what it used and by how much it won. So what it
writes is never the network where interpolation did as well on the same file. --method
forces one method everywhere. A file too short to check says so and gets the baseline
that won clearly (else linear) on the training run's validation rows; a file longer
than CHECK_ROWS rows is checked on its last CHECK_ROWS rows, so time and memory grow
with the file only as the fill itself does (the network reads it IMPUTE_BATCH windows
at a time).

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

from pathlib import Path

import numpy as np

from core.config import OneLineParser, UserError, run_main, task_of
from core.run import trained_run
from core.train import set_threads

from . import choose
from .data import block_rows, season_at
from .model import load_model
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
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="CSV with missing cells, in the trained columns")
    parser.add_argument("--output", required=True,
                        help="where to write the filled CSV (never INPUT itself)")
    parser.add_argument("--run-dir", default="",
                        help="folder holding the model.pt that train.py wrote (default: "
                             f"the newest of runs/{TASK}*)")
    parser.add_argument("--method", default="", choices=METHODS,
                        help="fill every cell with this method instead of the one that "
                             "wins the check on the file")
    return parser.parse_args(argv)


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
    """-> fills: seen (B, N, F) -> {method: z filled (B, N, F)}, the network and every
    classical fill under each of B masks, in standardised units, reading z only where
    seen; of the table's `rows` (N of them). An irregular model reads the rows' times in
    its own nominal step."""
    step = Step.from_label(saved["step"])
    dates, z = table.dates[rows], z[rows]
    times = row_times(dates, step) if step.irregular else None
    profile = np.array(saved["season"]) if saved["season"] else None
    season = season_at(profile, dates, step) if profile is not None else None
    extra = (calendar(dates, step) if saved["calendar"] else np.zeros((len(z), 0)))
    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    low = np.where(saved["nonnegative"], -mean / std, -np.inf)
    median = np.array(saved["median"])

    def fills(seen: np.ndarray) -> dict[str, np.ndarray]:
        return choose.every_fill(imputer, z, seen, extra, season, low, saved["window"],
                                 times, median)
    return fills


def pick(method: str, fills, saved: dict, table: Table, z: np.ndarray, seen: np.ndarray,
         kinds: dict[str, np.ndarray], std: np.ndarray) -> dict[str, list[str]]:
    """{gap kind: [method per variable]}: --method everywhere; else the check's winners,
    printed; else, for a file too short to check, the training run's best baseline."""
    columns = table.columns
    if method:
        if method.startswith("seasonal") and not saved["season"]:
            raise UserError(f"--method {method}: rows {saved['step']} apart have no cycle, "
                            "so no seasonal fill; choose another method")
        print(f"--method {method}: every cell filled by it, unchecked")
        return {kind: [method] * len(columns) for kind in choose.KINDS}
    blocks = block_rows(Step.from_label(saved["step"]), len(table.values))
    if table.step is None or not choose.checkable(seen, blocks):
        fallback = saved["fallback"]
        print(f"{len(table.values)} rows: too short to check the methods on "
              f"this file (needs {choose.BLOCKS_NEEDED * blocks[1]} rows and "
              f"{choose.SMALLEST_SEEN} seen cells per column); using the training run's "
              f"choice on its validation rows: " + "; ".join(
                  f"{kind} gaps: " + ", ".join(f"{c} {m}" for c, m in zip(columns, methods,
                                                                      strict=True))
                  for kind, methods in fallback.items()))
        return fallback
    scores = choose.check(fills, z, seen, blocks, CHECK_SEED)
    chosen = choose.choose(scores)
    where = f" (its last {len(z)} rows)" if len(z) < len(table.values) else ""
    print(f"checked on {choose.DRAWS} draws of this file's own observed cells{where}, "
          "hidden as short gaps (points10) and long blocks; MAE in the file's units:")
    print(choose.table(scores, chosen, columns, std, kinds))
    return chosen


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
    if table.note:
        print(table.note)

    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    seen = np.isfinite(table.values)
    z = np.where(seen, (table.values - mean) / std, 0.0)
    fills = fills_for(imputer, saved, table, z)
    kinds = choose.gap_kinds(seen, block_rows(Step.from_label(step), len(seen)))
    checked = slice(max(len(z) - CHECK_ROWS, 0), None)
    chosen = pick(args.method, fills_for(imputer, saved, table, z, checked), saved, table,
                  z[checked], seen[checked], kinds, std)
    # every method's fill lives only for this line: on a long file, memory to write it
    filled = choose.combine({method: by_mask[0] for method, by_mask in fills(seen[None]).items()},
                            chosen, kinds) * std + mean
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
    count = write_filled(table, filled, answered, target)
    per_column = ", ".join(f"{name} {int(answered[:, f].sum())} of {int((~seen[:, f]).sum())}"
                           for f, name in enumerate(table.columns))
    print(f"filled {count} of {int((~seen).sum())} missing cells ({per_column}) into {target}")
    for cells, reason in refused:
        if cells.any():
            print(describe(table, cells, reason))
    return 0 if count == (~seen).sum() else 1


if __name__ == "__main__":
    run_main(main)
