"""One-month-ahead rainfall: a small GRU corrects the monthly climatology.

Data: Rainfall_data.csv, 252 monthly rows (2000-01 to 2020-12); the target is
Precipitation in mm (fetched by name with its checksum; see core/data.py). Any monthly CSV
works: `--csv PATH --target COLUMN --date-columns Year Month`.

Split by time. Test = the last 50 months, scored walk-forward: each month's forecast reads
only the true values before it, and the training part supplies the lags of the first test
months, so every method forecasts the same 50 months. The last 24 training months are the
validation set for early stopping; the test months are touched once, at the end.

The model reads the last 12 months of log1p(precipitation), standardised, with each
month's sin/cos position in the year, and outputs a correction to the training
climatology of the target month in units of that month's spread:

    forecast = max(0, clim[m] + std[m] * GRU(last 12 months, month m))

Its output layer starts at zero, so an untrained model *is* climatology, and early
stopping ends training before the correction grows unless validation RMSE improves.

    python -m tasks.rainfall_uni.train            # 5 seeds, seconds on a laptop CPU
    python -m tasks.rainfall_uni.forecast         # next month, from the trained model

The model, data preparation and training are core/forecast.py's, shared with
rainfall_multi. The default run's numbers, and the command that made them, are in the
README's table: with about 190 training months the model is climatology plus a small
correction, and rolling checks inside the training part found no variant that beat
climatology on later months.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.baselines import (
    ar_forecast,
    climatology,
    fit_ar,
    fit_climatology,
    persistence,
    seasonal_naive,
)
from core.config import UserError, parse, run_main
from core.forecast import ForecastConfig, load_monthly, per_horizon, prepare, train_forecaster
from core.metrics import mae, mase, rmse, seasonal_scale
from core.plots import lines, training_curve
from core.report import comparison_table
from core.run import Run, SeedResult
from core.series import MONTHS_PER_YEAR, MonthlyFrame, walk_forward

DATASET = "Rainfall_data.csv"
AR_ORDER = 12


@dataclass
class Config(ForecastConfig):
    pass


def model_inputs(cfg: Config, frame: MonthlyFrame) -> tuple[np.ndarray, list[int]]:
    """What the network reads besides the month: the target alone, after log1p."""
    return frame.values[:, :1], [0]


def seasonal_errors(y_true: np.ndarray, forecast: np.ndarray, scale: float,
                    rmse_clim: float) -> dict[str, float]:
    """RMSE, MAE, MASE (seasonal-naive scale) and skill versus climatology."""
    error = rmse(y_true, forecast)
    return {"rmse": error, "mae": mae(y_true, forecast), "mase": mase(y_true, forecast, scale),
            "skill": 1 - error / rmse_clim}


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.seeds = 2, min(cfg.seeds, 2)
    run = Run(cfg)

    # ---- data: split by time; every statistic from the training part only
    frame, source = load_monthly(cfg, DATASET, [cfg.target])
    y, months, dates = frame.values[:, 0], frame.months, frame.dates
    n = len(y)
    n_train = n - cfg.test_months
    fit_end = n_train - cfg.val_months        # windows before this train the weights
    train, train_months = y[:n_train], months[:n_train]
    test = np.arange(n_train, n)
    print(f"{source}: {n} months; train {fit_end} + validation {cfg.val_months} "
          f"(early stopping) + test {cfg.test_months} (walk-forward)")

    # ---- baselines, walk-forward on the same test months
    ar = fit_ar(train, AR_ORDER)
    clim = fit_climatology(train, train_months)
    forecasts = {
        # a forecaster would not predict negative rain; clipping only helps AR's score
        "ar12": np.maximum(walk_forward(y, test, 1, lambda p: ar_forecast(ar, p, 1)), 0),
        "seasonal_naive": walk_forward(y, test, 1, lambda p: seasonal_naive(p, 1)),
        "climatology": climatology(clim, months[test]),
        "persistence": walk_forward(y, test, 1, lambda p: persistence(p, 1)),
    }
    scale = seasonal_scale(train, MONTHS_PER_YEAR)
    if scale == 0:
        raise UserError(f"{source}: the target repeats itself exactly every year in the "
                        "training part, so MASE has no scale; nothing to forecast")
    rmse_clim = rmse(y[test], forecasts["climatology"])
    baselines = {name: seasonal_errors(y[test], f, scale, rmse_clim)
                 for name, f in forecasts.items()}
    print(comparison_table(baselines, ["rmse", "mae", "mase", "skill"]))

    # ---- model: log1p(rain) and the month in, a correction to climatology out
    data = prepare(*model_inputs(cfg, frame), y, months, n_train, fit_end, cfg.lags, 1,
                   run.device)
    val_clim = rmse(y[fit_end:n_train], climatology(clim, months[fit_end:n_train]))
    print(f"validation RMSE of climatology: {val_clim:.1f}")

    def train_seed(seed: int, seed_dir: Path, resume: bool) -> SeedResult:
        forecast, history, model = train_forecaster(
            cfg, data, 1, float(train.std()), seed_dir, resume, f"{run.task} seed {seed}",
            run.device)
        if seed == cfg.seed:
            run.describe(model, f"{cfg.cell} ({cfg.impl})")
        forecast = per_horizon(forecast, cfg.test_months)[0]
        return SeedResult({"model": seasonal_errors(y[test], forecast, scale, rmse_clim)},
                          history, forecast)

    seeds = run.each_seed(train_seed)

    # ---- report: the model (median over seeds) beside every baseline
    results = {**seeds.test(), **baselines}
    print(f"\ntest, {cfg.test_months} months walk-forward, median over {len(run.seeds)} "
          f"seed(s); training {seeds.seconds:.1f} s in all")
    print(comparison_table(results, ["rmse", "mae", "mase", "skill"]))
    print(f"model / climatology RMSE = {results['model']['rmse'] / rmse_clim:.3f}")
    shown = seeds.median("rmse")
    worst = np.argsort(-np.abs(shown.outputs - y[test]))[:3]
    for i in worst:
        print(f"  largest miss: {dates[test[i]]}: true {y[test[i]]:.0f}, model "
              f"{shown.outputs[i]:.0f}, climatology {forecasts['climatology'][i]:.0f}")

    run.finish(results, seeds.seconds)
    series = {"truth": y[test], **forecasts, "model": shown.outputs}
    lines(series, run.dir / "test_forecasts.png", f"{frame.columns[0]}: test months, one "
          "step ahead", xlabel="month", ylabel=cfg.target, x=dates[test])
    residuals = {"zero": np.zeros(len(test))} | {name: f - y[test] for name, f in series.items()
                                                 if name != "truth"}
    lines(residuals, run.dir / "test_residuals.png", "forecast - truth", xlabel="month",
          ylabel=cfg.target, x=dates[test])
    training_curve(shown.history.epochs, run.dir / "training_curve.png", keys=["val_rmse"],
                   unit=cfg.target)
    print(f"wrote {run.dir}/metrics.json, seed*/best.pt and plots")
    return results


if __name__ == "__main__":
    run_main(main)
