"""Walk-forward pieces for a monthly forecaster that corrects climatology: the checked
CSV of amounts, the origin tensors a network reads, scores with a bootstrap interval,
model.pt (the networks of every seed) and the forecast command that reads it.

Nothing here knows a task's flags: each task declares its Config and its network (which
reads a batch from `prepare` and is called as `model(x, target_months, clim, spread)`),
and passes plain values.

An origin o is the first month forecast; the network reads the `lags` months before it
(never month o itself) and outputs, for each horizon h = 1..H, target month o + h - 1 as
the training climatology of that calendar month plus a correction in units of its
spread:

    forecast[h] = max(0, clim[m_h] + spread[m_h] * network(window, months m_1..m_H)[h])
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core import model_file
from core.answers import Answer, add_json_flag, report
from core.baselines import fit_climatology
from core.config import OneLineParser, UserError
from core.data import fetch
from core.run import trained_run
from core.series import (
    MONTHS_PER_YEAR,
    MonthlyFrame,
    StandardScaler,
    month_features,
    monthly_std,
    read_monthly_csv,
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


def read_amounts(path: Path, columns: Sequence[str], date_columns: Sequence[str],
                 rows: int) -> MonthlyFrame:
    """The CSV's `columns` (the target last) with at least `rows` rows, and a target that
    is never negative: the forecasts are amounts (rain in mm), clipped at zero."""
    frame = read_monthly_csv(path, columns, date_columns, min_rows=rows)
    y = frame.values[:, -1]
    if (y < 0).any():
        raise UserError(f"{Path(path).name} column {frame.columns[-1]!r} has negative values "
                        f"(min {y.min():g}); this task forecasts amounts such as rain, >= 0")
    return frame


def csv_path(csv: str, dataset: str) -> Path:
    """--csv, or the task's dataset fetched with its checksum when --csv is empty."""
    return Path(csv) if csv else fetch(dataset)


def origin_tensors(inputs: np.ndarray, months: np.ndarray, clim: np.ndarray,
                   spread: np.ndarray, truth: np.ndarray, origins: np.ndarray, lags: int,
                   horizon: int, device: torch.device) -> Batch:
    """For each origin: x (K, lags, F), target months' sin/cos (K, 2*horizon), climatology
    and spread (K, horizon), truth (K, horizon; NaN where unknown)."""
    # calendar months of the targets, counted on from the month before the origin, so they
    # hold also past the end of the series (the last origins, and the forecast command's)
    target_months = (months[origins - 1][:, None] + np.arange(horizon)) % 12 + 1
    parts = (windows(inputs, lags, origins),
             month_features(target_months).reshape(len(origins), -1),
             clim[target_months - 1], spread[target_months - 1],
             targets(truth, origins, horizon))
    return tuple(torch.tensor(p, dtype=torch.float32, device=device) for p in parts)


def prepare(raw: np.ndarray, log_columns: list[int], y: np.ndarray, months: np.ndarray,
            n_train: int, fit_end: int, lags: int, horizon: int,
            device: torch.device) -> dict[str, Batch]:
    """The network's inputs and targets for the fit, validation and test origins.

    Inputs: each column of `raw` (N, F) standardised with statistics of the training part
    (the columns in `log_columns` after log1p: rain is zero-inflated and skewed), plus
    each month's sin/cos, so F + 2 features. The climatology and spread come from the
    training part too (validation included, as for the climatology baseline), never from
    the test months. Fit origins have every target before `fit_end`; validation origins
    are the validation months; test origins start where horizon H reaches the first test
    month; "next" is the month after the data's last, for the forecast command.
    """
    raw = raw.copy()
    raw[:, log_columns] = np.log1p(raw[:, log_columns])
    scaled = StandardScaler.fit(raw[:n_train]).transform(raw)
    inputs = np.concatenate([scaled, month_features(months)], axis=1)
    clim = fit_climatology(y[:n_train], months[:n_train])
    spread = monthly_std(y[:n_train], months[:n_train])
    known = np.concatenate([y[:n_train], np.full(len(y) - n_train, np.nan)])

    def tensors(origins: np.ndarray, truth: np.ndarray) -> Batch:
        return origin_tensors(inputs, months, clim, spread, truth, origins, lags, horizon,
                              device)

    return {"fit": tensors(np.arange(lags, fit_end - horizon + 1), known),
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
                  draws: np.ndarray, against: str = "climatology") -> dict[str, float]:
    """RMSE with its bootstrap 95% interval over the test months, and the ratio RMSE /
    reference's RMSE with its interval, named after `against`:

        rmse, rmse_lo, rmse_hi, vs_climatology, vs_climatology_lo, vs_climatology_hi

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
    is seed 0's) and `described`, the fields of SAVED, checksummed (core.model_file)."""
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
                     model_inputs: Callable[[MonthlyFrame],
                                            tuple[np.ndarray, list[int]]]) -> int:
    """A forecast command: the months after the data's last month from the newest trained
    run's model.pt (or --run-dir's), the median over its seeds, beside climatology; one
    line per month, and a month the model cannot answer says why. Returns the exit
    status: 1 if a month was not answered.

    `build(**network)` makes one seed's network; `model_inputs(frame)` gives
    what it reads, as in training. The statistics the network reads (scaler,
    climatology, spread) are fitted, as in training, on all but the last test months of
    the file read, which may be a newer file (--csv) with the same columns."""
    parser = OneLineParser(prog=prog, description=doc.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run-dir", default="", help="the trained run; empty: the newest "
                        f"of runs/{task}, runs/{task}-2, ... that holds a model.pt")
    parser.add_argument("--csv", default="", help="monthly CSV to forecast from; empty: the "
                        "file the run trained on")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    run_dir = trained_run(task, args.run_dir, needs="model.pt")
    make = f"python -m tasks.{task}.train --run-dir {run_dir} --overwrite"
    networks, saved = load_networks(run_dir / "model.pt", task, build, make)

    path = csv_path(args.csv or saved["csv"], saved["dataset"])
    lags, horizon, test_months = saved["lags"], saved["horizon"], saved["test_months"]
    frame = read_amounts(path, saved["columns"], saved["date_columns"],
                         min_rows(lags, saved["val_months"], test_months, horizon))
    y, n_train = frame.values[:, -1], len(frame.values) - test_months
    raw, log_columns = model_inputs(frame)
    with np.errstate(over="ignore", invalid="ignore"):  # refused month by month below
        data = prepare(raw, log_columns, y, frame.months, n_train,
                       n_train - saved["val_months"], lags, horizon, torch.device("cpu"))
    x, target_months, clim, spread, _ = data["next"]
    try:
        with torch.no_grad():  # (seeds, horizon)
            forecasts = torch.stack([net(x, target_months, clim, spread).clamp(min=0)[0]
                                     for net in networks]).numpy()
    except Exception as error:  # intact, but not what this version of the code runs
        raise model_file.rebuild_error(run_dir / "model.pt", error, make) from None

    last = frame.dates[-1]
    if not args.json:
        print(f"{path.name}: last month {last}; {frame.columns[-1]} forecast by {task} "
              f"(median of {len(networks)} seed(s)) beside the training climatology")
    answers = [month_answer(str(last + h + 1), forecasts[:, h], float(clim[0, h]))
               for h in range(horizon)]
    return report(answers, as_json=args.json)


def month_answer(month: str, seeds: np.ndarray, climatology: float) -> Answer:
    """One forecast month: the median over seeds beside climatology, or why not."""
    if not math.isfinite(climatology):
        return Answer(month, refused="the training climatology of this calendar month is "
                      "not a finite number (values too large for float64 in the CSV?)")
    if not np.isfinite(seeds).all():
        bad = int((~np.isfinite(seeds)).sum())
        return Answer(month, refused=f"{bad} of {len(seeds)} seed(s) gave no finite number "
                      "(inputs far outside what the model was trained on?)")
    median = float(np.median(seeds))
    return Answer(month, f"{month}  model {median:8.1f}   climatology {climatology:8.1f}",
                  {"model": median, "climatology": climatology,
                   "seeds": [float(s) for s in seeds]})
