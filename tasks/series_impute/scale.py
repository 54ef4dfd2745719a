"""How series_impute's cost grows with the file: seconds and peak memory of `train
--dry-run` and of `fill` against rows, on seeded 4-column files every 10 minutes (a
daily wave, a slow walk, noise, 1% of the cells empty), each command in a process of its
own, one after the other.

    python -m tasks.series_impute.scale                          # 10^4, 10^5, 10^6 rows
    python -m tasks.series_impute.scale --rows 10000 100000 --out runs/scale

fill uses the model of a dry run on the smallest file (same columns, same step). Prints
one line per command and size, and writes scale.json and scale.png (log-log) to --out.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core import plots
from core.config import OneLineParser, run_main
from core.files import atomic_write_text

COLUMNS = ["a", "b", "c", "d"]
SEED = 6


def scale_csv(path: Path, rows: int) -> Path:
    """date,a,b,c,d every 10 minutes from 2000-01-01, seeded."""
    rng = np.random.default_rng(SEED)
    t = np.arange(rows)[:, None]
    values = (np.sin(2 * math.pi * t / 144 + np.arange(4))
              + 0.01 * np.cumsum(rng.normal(size=(rows, 4)), axis=0)
              + 0.1 * rng.normal(size=(rows, 4)))
    values[rng.random(values.shape) < 0.01] = np.nan
    frame = pd.DataFrame(values.round(3), columns=COLUMNS)
    frame.insert(0, "date", pd.date_range("2000-01-01", periods=rows, freq="10min")
                 .strftime("%Y-%m-%d %H:%M"))
    atomic_write_text(path, frame.to_csv(index=False))
    return path


def measure(argv: list[str]) -> tuple[float, float]:
    """Seconds and peak resident memory (MB) of `python -m argv...` in a process of its
    own (os.wait4 reports that child's peak alone); its output is discarded. A command
    that fails stops the measurement with its status."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # fill's 1: some cells unanswered, still measured
        raise SystemExit(f"error: {' '.join(argv)} exited {code}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in kB on Linux


def main(argv: list[str] | None = None) -> dict:
    parser = OneLineParser(prog=f"python -m {__package__}.scale",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", type=int, default=[10**4, 10**5, 10**6],
                        help="file lengths to measure, smallest first")
    parser.add_argument("--out", default="runs/series_impute_scale",
                        help="folder for the files, the runs, scale.json and scale.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {rows: scale_csv(out / f"rows{rows}.csv", rows) for rows in sorted(args.rows)}
    model = out / "model_run"
    results: dict[str, dict[int, tuple[float, float]]] = {"train --dry-run": {}, "fill": {}}
    for rows, path in files.items():
        train = [f"{__package__}.train", "--csv", str(path), "--columns", *COLUMNS,
                 "--date-columns", "date", "--dry-run", "--overwrite", "--run-dir",
                 str(model if rows == min(files) else out / f"run{rows}")]
        results["train --dry-run"][rows] = measure(train)
        results["fill"][rows] = measure([f"{__package__}.fill", str(path), "--output",
                                         str(out / f"filled{rows}.csv"), "--run-dir",
                                         str(model)])
        for command, by_rows in results.items():
            seconds, memory = by_rows[rows]
            print(f"{command:<16} {rows:>9} rows: {seconds:7.1f} s, peak {memory:7.0f} MB")
    atomic_write_text(out / "scale.json", json.dumps(
        {c: {str(r): {"seconds": s, "peak_mb": m} for r, (s, m) in by_rows.items()}
         for c, by_rows in results.items()}, indent=1) + "\n")
    figure, axes = plots.plt.subplots(1, 2, figsize=(10, 4))
    for command, by_rows in results.items():
        rows = list(by_rows)
        for ax, i in zip(axes, (0, 1), strict=True):
            ax.plot(rows, [by_rows[r][i] for r in rows], marker="o", label=command)
    for ax, unit in zip(axes, ("seconds", "peak memory, MB"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="rows (4 columns)", ylabel=unit)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    plots.save(figure, out / "scale.png")
    print(f"wrote {out}/scale.json and scale.png")
    return results


if __name__ == "__main__":
    run_main(main)
