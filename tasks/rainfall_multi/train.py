"""Rainfall 1, 2 and 3 months ahead from four weather variables, beside the same network
fed precipitation alone.

Data: Rainfall_data.csv, 252 monthly rows (2000-01 to 2020-12): Specific_Humidity,
Relative_Humidity, Temperature and Precipitation (mm), the target. Column names with
spaces or underscores both match. Any monthly CSV works: `--csv PATH --inputs A B
--target B --date-columns Year Month`.

Horizons. An origin o is the first month forecast; the network reads the `lags` months
before it (rows o-lags .. o-1, never month o itself) and outputs months o, o+1, o+2 at
once (horizons 1, 2, 3). Every horizon is scored on the same months, the last 50: the
h-month-ahead forecast of test month t comes from origin t-h+1, so it reads only months up
to t-h. The baselines forecast those same months from the same information: AR(12)
iterated h steps from month t-h, seasonal naive (month t-12), climatology (training mean
of t's calendar month); "univariate" is this network trained on precipitation alone.

The model, data preparation and training are core/forecast.py's, shared with
rainfall_uni: each variable standardised with training statistics (precipitation after
log1p), and corrections to the target months' climatology that start at zero. The last 24
training months are validation for early stopping; the test months are touched once.

    python -m tasks.rainfall_multi.train --cell gru --horizon 3
    python -m tasks.rainfall_multi.forecast       # the next months, from the trained model

The default run's numbers, and the command that made them, are in the README's table: the
margins over climatology and the univariate network are small enough to read as noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.baselines import ar_forecast, climatology, fit_ar, fit_climatology, seasonal_naive
from core.config import arg, parse, run_main
from core.forecast import ForecastConfig, load_monthly, per_horizon, prepare, train_forecaster
from core.metrics import mae, rmse
from core.plots import lines, training_curve
from core.report import comparison_table
from core.run import Run, SeedResult
from core.series import MONTHS_PER_YEAR, MonthlyFrame, walk_forward

DATASET = "Rainfall_data.csv"
AR_ORDER = 12


@dataclass
class Config(ForecastConfig):
    inputs: list[str] = arg(["Specific_Humidity", "Relative_Humidity", "Temperature",
                             "Precipitation"], "columns the network reads")
    horizon: int = arg(3, "months forecast at once from each origin; at most 12, since "
                          "the seasonal naive baseline repeats the month a year before",
                       minimum=1, maximum=MONTHS_PER_YEAR)


def model_inputs(cfg: Config, frame: MonthlyFrame) -> tuple[np.ndarray, list[int]]:
    """What the network reads besides the months: every --inputs column, the target's
    own column (if it is one of them) after log1p."""
    names = frame.columns[:-1]
    return frame.values[:, :-1], [i for i, c in enumerate(names) if c == frame.columns[-1]]


def horizon_scores(y_true: np.ndarray, by_horizon: list[np.ndarray]) -> dict[str, float]:
    """{"rmse@h1": ..., "mae@h1": ..., ...} for forecasts of the same months per horizon."""
    scores = {}
    for h, forecast in enumerate(by_horizon, start=1):
        scores[f"rmse@h{h}"] = rmse(y_true, forecast)
        scores[f"mae@h{h}"] = mae(y_true, forecast)
    return scores


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.seeds = 2, min(cfg.seeds, 2)
    run = Run(cfg)

    # ---- data: split by time; every statistic from the training part only
    frame, source = load_monthly(cfg, DATASET, [*cfg.inputs, cfg.target], cfg.horizon)
    y, months, dates = frame.values[:, -1], frame.months, frame.dates
    n, horizon = len(y), cfg.horizon
    n_train = n - cfg.test_months
    fit_end = n_train - cfg.val_months
    train, train_months = y[:n_train], months[:n_train]
    test = np.arange(n_train, n)
    print(f"{source}: {n} months; train {fit_end} + validation {cfg.val_months} "
          f"(early stopping) + test {cfg.test_months}, horizons 1..{horizon}")

    # ---- baselines per horizon, walk-forward on the same test months
    ar = fit_ar(train, AR_ORDER)
    clim = fit_climatology(train, train_months)
    steps = range(1, horizon + 1)
    forecasts = {
        # a forecaster would not predict negative rain; clipping only helps AR's score
        "ar12": [np.maximum(walk_forward(y, test, h, lambda p, h=h: ar_forecast(ar, p, h)), 0)
                 for h in steps],
        "seasonal_naive": [walk_forward(y, test, h, lambda p, h=h: seasonal_naive(p, h))
                           for h in steps],
        "climatology": [climatology(clim, months[test])] * horizon,
    }
    baselines = {name: horizon_scores(y[test], f) for name, f in forecasts.items()}
    columns = [f"rmse@h{h}" for h in steps]
    print(comparison_table(baselines, columns))

    # ---- the network on every input, and the same network on the target alone
    variants = {
        "model": prepare(*model_inputs(cfg, frame), y, months, n_train, fit_end, cfg.lags,
                         horizon, run.device),
        "univariate": prepare(y[:, None], [0], y, months, n_train, fit_end, cfg.lags,
                              horizon, run.device)}

    def train_seed(seed: int, seed_dir: Path, resume: bool) -> SeedResult:
        scores, outputs, histories = {}, {}, {}
        for name, data in variants.items():
            folder = seed_dir if name == "model" else seed_dir / name
            forecast, histories[name], model = train_forecaster(
                cfg, data, horizon, float(train.std()), folder,
                resume and (folder / "last.pt").exists(), f"{run.task} {name} seed {seed}",
                run.device)
            if seed == cfg.seed:
                run.describe(model, f"{name}: {cfg.cell} ({cfg.impl})")
            outputs[name] = per_horizon(forecast, cfg.test_months)
            scores[name] = horizon_scores(y[test], outputs[name])
        history = histories["model"]
        history.seconds += histories["univariate"].seconds  # the time both variants took
        return SeedResult(scores, history, outputs)

    seeds = run.each_seed(train_seed)

    # ---- report: the model (median over seeds) beside every baseline, per horizon
    per_seed = seeds.test()
    results = {"model": per_seed["model"], **baselines, "univariate": per_seed["univariate"]}
    print(f"\ntest, last {cfg.test_months} months at every horizon, median over "
          f"{len(run.seeds)} seed(s); training {seeds.seconds:.1f} s in all (both variants)")
    print(comparison_table(results, columns))
    for h in steps:
        print(f"horizon {h}: model / climatology RMSE = "
              f"{results['model'][f'rmse@h{h}'] / results['climatology'][f'rmse@h{h}']:.3f}, "
              f"model / univariate = "
              f"{results['model'][f'rmse@h{h}'] / results['univariate'][f'rmse@h{h}']:.3f}")

    run.finish(results, seeds.seconds)
    shown = seeds.median("rmse@h1")
    for h in steps:
        series = {"truth": y[test], "univariate": shown.outputs["univariate"][h - 1]}
        series |= {name: f[h - 1] for name, f in forecasts.items()}
        series["model"] = shown.outputs["model"][h - 1]
        lines(series, run.dir / f"test_forecasts_h{h}.png",
              f"{frame.columns[-1]}: test months, {h} month(s) ahead", xlabel="month",
              ylabel=cfg.target, x=dates[test])
    residuals = {"zero": np.zeros(len(test))} | {
        f"model h{h}": shown.outputs["model"][h - 1] - y[test] for h in steps}
    lines(residuals, run.dir / "test_residuals.png", "model forecast - truth", xlabel="month",
          ylabel=cfg.target, x=dates[test])
    training_curve(shown.history.epochs, run.dir / "training_curve.png", keys=["val_rmse"],
                   unit=cfg.target)
    print(f"wrote {run.dir}/metrics.json, seed*/best.pt and plots")
    return results


if __name__ == "__main__":
    run_main(main)
