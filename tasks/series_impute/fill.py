"""Fill the missing cells of a CSV with the imputer train.py saved.

    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv --run-dir runs/mine

Reads <run-dir>/model.pt (weights, the columns and date columns it was trained on, their
training mean, standard deviation and range; no pickled code). INPUT needs those columns
(other columns are kept as they are) and rows of consecutive days or months, as in
training; a cell is missing when it is empty or NA. Only the missing cells of the trained
columns change, written with as many decimals as the column's other cells; every other
cell is written back as it was. FILLED is written whole or not at all, and never over
INPUT.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.config import UserError, run_main

from .model import calendar, impute, load_model
from .table import read_table, write_filled

TASK = __package__.rsplit(".", 1)[-1]
DEFAULT_RUN_DIR = Path("runs") / TASK


def same_file(a: Path, b: Path) -> bool:
    """True when a and b name one file (also through links or another spelling)."""
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}.fill",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("input", help="CSV with missing cells, in the trained columns")
    parser.add_argument("--output", required=True, default=argparse.SUPPRESS,
                        help="where to write the filled CSV (never INPUT itself)")
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR),
                        help="folder holding the model.pt that train.py wrote")
    args = parser.parse_args(argv)
    source, target, run_dir = Path(args.input), Path(args.output), Path(args.run_dir)
    if same_file(source, target):
        raise UserError(f"--output {target} is the input file; give another path (the "
                        "input is never overwritten)")

    train_command = f"python -m {__package__}.train --run-dir {run_dir}"
    imputer, saved = load_model(run_dir / "model.pt", train_command)
    columns, date_columns = saved["columns"], saved["date_columns"]
    trained_on = (f"the model in {run_dir} was trained on columns {', '.join(columns)} with "
                  f"dates in {', '.join(date_columns)}")
    table = read_table(source, columns, date_columns, min_rows=1, hint=trained_on)
    if len(table.values) > 1 and table.frequency != saved["frequency"]:
        raise UserError(f"{source.name} has {table.frequency} rows but {trained_on} from "
                        f"{saved['frequency']} rows; train on this kind of file first: "
                        f"{train_command} --csv {source} ...")

    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    seen = np.isfinite(table.values)
    extra = (calendar(table.dates, saved["frequency"]) if saved["calendar"]
             else np.zeros((len(seen), 0)))
    z = np.where(seen, (table.values - mean) / std, 0.0)
    low, high = (np.array(saved["low"]) - mean) / std, (np.array(saved["high"]) - mean) / std
    filled = impute(imputer, z[None], seen[None], extra[None], low, high)[0] * std + mean
    count = write_filled(table, filled, target)
    per_column = ", ".join(f"{name} {int((~seen[:, f]).sum())}"
                           for f, name in enumerate(table.columns))
    print(f"filled {count} of {seen.size} cells ({per_column}) into {target}")
    never_seen = [name for f, name in enumerate(table.columns) if not seen[:, f].any()]
    if never_seen:
        print(f"note: {', '.join(never_seen)} has no value at all in {source.name}: its "
              "cells are guesses from the other columns alone")
    return count


if __name__ == "__main__":
    run_main(main)
