"""Walk-forward pieces for a monthly forecaster that corrects a base forecast: the origin
tensors a network reads, scores with a bootstrap interval, model.pt (the networks of every
seed) and the forecast command that reads it.

Nothing here knows a task's flags or its domain: each task declares its Config, its
network (which reads a batch from `prepare` and is called as
`model(x, target_months, level, scale)`), how its CSV is read and checked, and the base it
corrects, and passes plain values.

An origin o is the first month forecast; the network reads the `lags` months before it
(never month o itself) and outputs, for each horizon h = 1..H, target month o + h - 1 as
the base's forecast of that month (its level) plus a correction in units of its scale:

    forecast[h] = level[h] + scale[h] * network(window, months m_1..m_H)[h]

The base is a named choice the task passes (BASES), or a `Base` of the task's own:

    climatology      level: the training mean of the target's calendar month;
                     scale: that calendar month's training standard deviation
    seasonal_naive   level: the same calendar month a year before the target (the last
                     one known at the origin); scale: the training std of y[t] - y[t-12]
    persistence      level: the last value before the origin;
                     scale: the training std of y[t] - y[t-1]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core import model_file
from core.answers import Answer, add_json_flag, report
from core.baselines import fit_climatology
from core.config import OneLineParser, UserError
from core.data import from_root, locate
from core.run import trained_run
from core.series import (
    MONTHS_PER_YEAR,
    MonthlyFrame,
    StandardScaler,
    month_features,
    monthly_std,
    targets,
    windows,
)
from core.train import Batch

MIN_FIT_WINDOWS = 2 * MONTHS_PER_YEAR  # fewer training windows than this is no model
BOOTSTRAP_DRAWS = 2000  # resamples of the test months behind each interval


def min_rows(lags: int, val_months: int, test_months: int, horizon: int) -> int:
    """The rows a run needs: the lags, some windows to fit, validation, test, and the
    horizon's months past the last fit window."""
    return lags + MIN_FIT_WINDOWS + val_months + test_months + horizon


def csv_path(csv: str, dataset: str) -> Path:
    """--csv, or else the task's dataset (core.data.locate: a file in the project, or a
    manifest entry fetched with its checksum) when --csv is empty."""
    return Path(csv) if csv else locate(dataset)


# ---- the base a network corrects

# (y, months, origins, horizon, n_train) -> level, scale, each (len(origins), horizon)
Levels = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int],
                  tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Base:
    """What a network's forecast starts from. `levels(y, months, origins, horizon,
    n_train)` reads y only before each origin and fits its statistics on y[:n_train]
    alone; it returns the base's forecasts of the target months (its level) and the unit
    of the network's correction (its scale)."""

    name: str  # the baseline it equals: the model's RMSE ratio to it is "vs_<name>"
    label: str  # how the forecast command names it beside the model
    history: int  # months before an origin that `levels` reads
    levels: Levels


def target_months(months: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(K, horizon) calendar months (1..12) of the targets o, o+1, ..., counted on from the
    month before the origin, so they hold also past the end of the series (the last
    origins, and the forecast command's)."""
    return (months[origins - 1][:, None] + np.arange(horizon)) % MONTHS_PER_YEAR + 1


def nonzero_std(values: np.ndarray) -> float:
    """The standard deviation of `values`, or 1 when they never vary, so it can scale."""
    std = float(np.std(values))
    return std if std > 0 else 1.0


def climatology_levels(y: np.ndarray, months: np.ndarray, origins: np.ndarray, horizon: int,
                       n_train: int) -> tuple[np.ndarray, np.ndarray]:
    index = target_months(months, origins, horizon) - 1  # 0 is January
    return (fit_climatology(y[:n_train], months[:n_train])[index],
            monthly_std(y[:n_train], months[:n_train])[index])


def seasonal_naive_levels(y: np.ndarray, months: np.ndarray, origins: np.ndarray,
                          horizon: int, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    # target o + h - 1 repeats month o + h - 1 - 12, or a year earlier still past h = 12
    back = origins[:, None] - MONTHS_PER_YEAR + np.arange(horizon) % MONTHS_PER_YEAR
    scale = nonzero_std(y[MONTHS_PER_YEAR:n_train] - y[:n_train - MONTHS_PER_YEAR])
    return y[back], np.full(back.shape, scale)


def persistence_levels(y: np.ndarray, months: np.ndarray, origins: np.ndarray, horizon: int,
                       n_train: int) -> tuple[np.ndarray, np.ndarray]:
    level = np.repeat(y[origins - 1][:, None], horizon, axis=1)
    return level, np.full(level.shape, nonzero_std(np.diff(y[:n_train])))


BASES = {base.name: base for base in (
    Base("climatology", "the training climatology", 0, climatology_levels),
    Base("seasonal_naive", "the same month a year before", MONTHS_PER_YEAR,
         seasonal_naive_levels),
    Base("persistence", "the last month's value", 1, persistence_levels),
)}


def origin_tensors(inputs: np.ndarray, months: np.ndarray, y: np.ndarray, n_train: int,
                   truth: np.ndarray, origins: np.ndarray, lags: int, horizon: int,
                   base: Base, device: torch.device) -> Batch:
    """For each origin: x (K, lags, F), target months' sin/cos (K, 2*horizon), the base's
    level and scale (K, horizon), truth (K, horizon; NaN where unknown)."""
    level, scale = base.levels(y, months, origins, horizon, n_train)
    parts = (windows(inputs, lags, origins),
             month_features(target_months(months, origins, horizon)).reshape(len(origins), -1),
             level, scale, targets(truth, origins, horizon))
    return tuple(torch.tensor(p, dtype=torch.float32, device=device) for p in parts)


def prepare(raw: np.ndarray, log_columns: list[int], y: np.ndarray, months: np.ndarray,
            n_train: int, fit_end: int, lags: int, horizon: int, device: torch.device,
            *, base: Base) -> dict[str, Batch]:
    """The network's inputs and targets for the fit, validation and test origins, each a
    batch (x, target_months, level, scale, truth).

    x[k] holds the `lags` rows before origin o = origins[k], oldest first, each row the
    columns of `raw` (N, F) standardised with statistics of the training part (the
    columns in `log_columns` after log1p, for skewed amounts), then that row's month:

        x[k]  (lags, F + 2)          column 0 .. F-1            F, F+1
        step 0     = month o - lags  raw[o - lags], scaled      sin, cos of its month
        ...
        step -1    = month o - 1     raw[o - 1], scaled         sin, cos of its month

    so with lags = 12, x[:, -12] is the month a year before the first target.
    target_months (K, 2H) is each target month's sin, cos; level and scale (K, H) are
    `base`'s (fitted on the training part, validation included, as the baselines are,
    never on the test months). Fit origins have every target before `fit_end`;
    validation origins are the validation months; test origins start where horizon H
    reaches the first test month; "next" is the month after the data's last, for the
    forecast command.
    """
    raw = raw.copy()
    for column in log_columns:  # log1p of -1 or less is -inf or NaN: the loss would be NaN
        if (raw[:, column] <= -1).any():
            raise UserError(f"input column {column} holds values <= -1 (min "
                            f"{np.nanmin(raw[:, column]):g}), which log1p cannot read: take "
                            "it out of the log columns the task's model_inputs returns")
    raw[:, log_columns] = np.log1p(raw[:, log_columns])
    scaled = StandardScaler.fit(raw[:n_train]).transform(raw)
    inputs = np.concatenate([scaled, month_features(months)], axis=1)
    known = np.concatenate([y[:n_train], np.full(len(y) - n_train, np.nan)])

    def tensors(origins: np.ndarray, truth: np.ndarray) -> Batch:
        return origin_tensors(inputs, months, y, n_train, truth, origins, lags, horizon,
                              base, device)

    first = max(lags, base.history)
    return {"fit": tensors(np.arange(first, fit_end - horizon + 1), known),
            "val": tensors(np.arange(fit_end, n_train), known),
            "test": tensors(np.arange(n_train - horizon + 1, len(y)), y),
            "next": tensors(np.array([len(y)]), y)}


def per_horizon(forecast: np.ndarray, test_months: int) -> list[np.ndarray]:
    """Test forecasts (origins, H) from `prepare`'s test origins -> for each h = 1..H the
    h-month-ahead forecasts of the test months: month t's comes from origin t - h + 1."""
    horizon = forecast.shape[1]
    return [forecast[horizon - h:horizon - h + test_months, h - 1]
            for h in range(1, horizon + 1)]


# ---- scores that say how sure they are

def bootstrap_months(count: int, seed: int, draws: int = BOOTSTRAP_DRAWS) -> np.ndarray:
    """(draws, count) positions of test months drawn with replacement from `seed`'s own
    generator (the training's random state is untouched). Every method is scored on the
    same draws, so the ratio of two methods' RMSE is a paired comparison."""
    return np.random.default_rng(seed).integers(0, count, size=(draws, count))


def rmse_interval(y_true: np.ndarray, forecast: np.ndarray, reference: np.ndarray,
                  draws: np.ndarray, against: str) -> dict[str, float]:
    """RMSE with its bootstrap 95% interval over the test months, and the ratio RMSE /
    reference's RMSE with its interval, named after `against` (here "base"):

        rmse, rmse_lo, rmse_hi, vs_base, vs_base_lo, vs_base_hi

    An interval is the 2.5th and 97.5th percentile over the resamples in `draws`
    (`bootstrap_months`). A ratio interval that holds 1 does not tell the two apart."""
    error = (np.asarray(forecast) - y_true) ** 2
    base = (np.asarray(reference) - y_true) ** 2
    rmse, rmse_ref = math.sqrt(error.mean()), math.sqrt(base.mean())
    resampled = np.sqrt(error[draws].mean(axis=1))
    resampled_ref = np.sqrt(base[draws].mean(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):  # a perfect reference: no ratio
        ratios = resampled / resampled_ref
    lo, hi = np.percentile(resampled, [2.5, 97.5])
    ratio_lo, ratio_hi = (np.percentile(ratios, [2.5, 97.5]) if np.isfinite(ratios).all()
                          else (math.nan, math.nan))
    ratio = f"vs_{against}"
    return {"rmse": rmse, "rmse_lo": float(lo), "rmse_hi": float(hi),
            ratio: rmse / rmse_ref if rmse_ref > 0 else math.nan,
            f"{ratio}_lo": float(ratio_lo), f"{ratio}_hi": float(ratio_hi)}


# ---- model.pt: the networks of every seed, and what the forecast command reads

SAVED = ("task", "network", "seeds", "columns", "log_columns", "date_columns", "lags",
         "horizon", "val_months", "test_months", "csv", "dataset")


def save_networks(path: Path, networks: list[nn.Module], **described: Any) -> None:
    """model.pt: the weights of one network per seed (as one nn.ModuleList, so "0.rnn..."
    is seed 0's) and `described`, the fields of SAVED and the name of the base the
    networks correct ("base"), checksummed (core.model_file)."""
    missing = set(SAVED) - set(described)
    assert not missing, f"model.pt needs {sorted(missing)}"
    model_file.save(path, nn.ModuleList(networks), **described)


def load_networks(path: Path, task: str, build: Callable[..., nn.Module],
                  make: str) -> tuple[nn.ModuleList, dict[str, Any]]:
    """The networks `save_networks` wrote (eval mode) and the description; a missing,
    damaged or foreign file, or another task's, is one UserError naming `make`."""
    saved = model_file.load(path, SAVED, f"a {task} model", make)
    if saved["task"] != task:
        raise UserError(f"{path} is a model of {saved['task']}, not of {task}: give the "
                        f"--run-dir of a {task} run (`python -m tasks.{task}.train` makes "
                        "one)")
    try:
        networks = nn.ModuleList([build(**saved["network"]) for _ in saved["seeds"]])
        networks.load_state_dict(saved["model"])
    except Exception as error:  # intact, but not what this version of the code builds
        raise model_file.rebuild_error(Path(path), error, make) from None
    return networks.eval(), saved


def forecast_command(argv: list[str] | None, prog: str, doc: str, task: str,
                     build: Callable[..., nn.Module],
                     model_inputs: Callable[[MonthlyFrame], tuple[np.ndarray, list[int]]],
                     read: Callable[[Path, Sequence[str], Sequence[str], int], MonthlyFrame],
                     base: Base, floor: float | None) -> int:
    """A forecast command: the months after the data's last month from the newest trained
    run's model.pt (or --run-dir's), the median over its seeds, beside `base`'s forecast;
    one line per month, and a month the model cannot answer says why. Returns the exit
    status: 1 if a month was not answered.

    `build(**network)` makes one seed's network; `model_inputs(frame)` gives what it
    reads, and `read(path, columns, date_columns, rows)` reads and checks the CSV, as in
    training; forecasts below `floor` (None: no floor) are raised to it, as in training.
    The statistics the network reads (scaler, the base's) are fitted, as in training, on
    all but the last test months of the file read, which may be a newer file (--csv)
    with the same columns."""
    parser = OneLineParser(prog=prog, description=doc.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run-dir", default="", help="the trained run; empty: the newest "
                        f"run of {task} under runs/ that holds a model.pt")
    parser.add_argument("--csv", default="", help="monthly CSV to forecast from; empty: the "
                        "file the run trained on")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    run_dir = trained_run(task, args.run_dir, needs="model.pt")
    make = f"python -m tasks.{task}.train --run-dir {run_dir} --overwrite"
    networks, saved = load_networks(run_dir / "model.pt", task, build, make)
    if saved.get("base", base.name) != base.name:  # saved since bases were named
        raise UserError(f"{run_dir / 'model.pt'} corrects {saved['base']}, and {task} now "
                        f"corrects {base.name}: train it again with `{make}`")

    # a path saved in model.pt is from the project's root, so a moved clone still finds it
    if args.csv:
        path = Path(args.csv)
    else:
        path = from_root(saved["csv"]) if saved["csv"] else locate(saved["dataset"])
    lags, horizon, test_months = saved["lags"], saved["horizon"], saved["test_months"]
    frame = read(path, saved["columns"], saved["date_columns"],
                 min_rows(lags, saved["val_months"], test_months, horizon))
    y, n_train = frame.values[:, -1], len(frame.values) - test_months
    raw, log_columns = model_inputs(frame)
    with np.errstate(over="ignore", invalid="ignore"):  # refused month by month below
        data = prepare(raw, log_columns, y, frame.months, n_train,
                       n_train - saved["val_months"], lags, horizon, torch.device("cpu"),
                       base=base)
    x, months, level, scale, _ = data["next"]
    try:
        with torch.no_grad():  # (seeds, horizon)
            forecasts = torch.stack([net(x, months, level, scale)[0]
                                     for net in networks])
    except Exception as error:  # intact, but not what this version of the code runs
        raise model_file.rebuild_error(run_dir / "model.pt", error, make) from None
    forecasts = (forecasts if floor is None else forecasts.clamp(min=floor)).numpy()

    last = frame.dates[-1]
    if not args.json:
        print(f"{path.name}: last month {last}; {frame.columns[-1]} forecast by {task} "
              f"(median of {len(networks)} seed(s)) beside {base.label}")
    answers = [month_answer(str(last + h + 1), forecasts[:, h], float(level[0, h]), base)
               for h in range(horizon)]
    return report(answers, as_json=args.json)


def month_answer(month: str, seeds: np.ndarray, level: float, base: Base) -> Answer:
    """One forecast month: the median over seeds beside the base's forecast, or why not."""
    if not math.isfinite(level):
        return Answer(month, refused=f"{base.label} is not a finite number for this month "
                      "(values too large for float64 in the CSV?)")
    if not np.isfinite(seeds).all():
        bad = int((~np.isfinite(seeds)).sum())
        return Answer(month, refused=f"{bad} of {len(seeds)} seed(s) gave no finite number "
                      "(inputs far outside what the model was trained on?)")
    median = float(np.median(seeds))
    return Answer(month, f"{month}  model {median:8.4g}   {base.name} {level:8.4g}",
                  {"model": median, base.name: level, "seeds": [float(s) for s in seeds]})
