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
With so few test months every RMSE comes with a bootstrap 95% interval over them (seeded
by --seed), and so do its ratio to climatology's and the model's to the univariate
network's (vs_climatology, vs_univariate).

Each variable is standardised with training statistics (precipitation after log1p), and
the network outputs corrections to the target months' climatology that start at zero
(core/forecast.py prepares the walk-forward inputs, as for rainfall_uni). The last 24
training months are validation for early stopping; the test months are touched once.

    python -m tasks.rainfall_multi.train --cell gru --horizon 3
    python -m tasks.rainfall_multi.forecast       # the next months, from the trained model

The default run's numbers, and the command that made them, are in the README's table,
each with its interval: read a margin whose ratio interval holds 1 as no margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import distributed
from core.baselines import ar_forecast, climatology, fit_ar, fit_climatology, seasonal_naive
from core.config import RunConfig, UserError, arg, parse, run_main
from core.data import portable, sha256_of
from core.forecast import (
    BASES,
    bootstrap_months,
    csv_path,
    min_rows,
    per_horizon,
    prepare,
    rmse_interval,
    save_networks,
)
from core.layers import recurrent
from core.metrics import mae
from core.plots import lines, training_curve
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.series import MONTHS_PER_YEAR, MonthlyFrame, read_monthly_csv, walk_forward
from core.train import Batch, History, seed_everything, shuffled_batches, train_epoch

# Config's flags, read_amounts, Forecaster and train_network are rainfall_uni's too, repeated
# on purpose: each task reads top to bottom and runs alone when copied; core/forecast.py
# holds what any monthly forecaster shares (inputs, bases, intervals, model.pt, forecast).
DATASET = "Rainfall_data.csv"  # a manifest name, or a file's path from the project root
AR_ORDER = 12
# what the network corrects, and the baseline (of baseline_forecasts) its RMSE ratio is to:
# core.forecast.BASES' climatology, seasonal_naive or persistence, or a core.forecast.Base
# of the task's own; rain's yearly cycle is most of its signal
BASE = BASES["climatology"]
FLOOR = 0.0  # rain is an amount: forecasts are clipped at zero


def floored(forecast):
    """Forecasts (an array or a tensor) raised to FLOOR where below it; None: as they are."""
    return forecast if FLOOR is None else forecast.clip(min=FLOOR)


@dataclass
class Config(RunConfig):
    inputs: list[str] = arg(["Specific_Humidity", "Relative_Humidity", "Temperature",
                             "Precipitation"], "columns the network reads")
    horizon: int = arg(3, "months forecast at once from each origin; at most 12, since "
                          "the seasonal naive baseline repeats the month a year before",
                       minimum=1, maximum=MONTHS_PER_YEAR)
    csv: str = arg("", "monthly CSV to forecast; empty fetches Rainfall_data.csv")
    target: str = arg("Precipitation", "column to forecast (a non-negative amount, e.g. mm)")
    date_columns: list[str] = arg(["Year", "Month"],
                                  "one date column, or year and month (and day) columns")
    test_months: int = arg(50, "last months held out as the test set", minimum=1)
    val_months: int = arg(24, "training months just before the test, for early stopping",
                          minimum=1)
    lags: int = arg(12, "past months the network reads", minimum=1)
    cell: str = arg("gru", "recurrent cell", choices=["rnn", "lstm", "gru"])
    impl: str = arg("torch", "torch.nn layers, or core's hand-written cells",
                    choices=["torch", "core"])
    hidden_size: int = arg(16, "hidden units of the recurrent layer", minimum=1)
    epochs: int = arg(300, "most epochs per seed (early stopping usually ends sooner)",
                      minimum=1)
    patience: int = arg(30, "stop after this many epochs without a better validation RMSE",
                        minimum=1)
    batch_size: int = arg(32, "windows per step", minimum=1)
    lr: float = arg(3e-3, "AdamW learning rate", minimum=0)
    weight_decay: float = arg(1e-2, "AdamW weight decay", minimum=0)
    seeds: int = arg(5, "seeds --seed, --seed+1, ...; metrics are the median over them",
                     minimum=1, maximum=1000)


def read_amounts(path: Path, columns: list[str], date_columns: list[str],
                 rows: int) -> MonthlyFrame:
    """The CSV's `columns` (the target last) with at least `rows` rows, and a target that
    is never negative: rain is an amount, and the forecasts are clipped at zero."""
    frame = read_monthly_csv(path, columns, date_columns, min_rows=rows)
    y = frame.values[:, -1]
    if (y < 0).any():
        raise UserError(f"{Path(path).name} column {frame.columns[-1]!r} has negative values "
                        f"(min {y.min():g}); this task forecasts amounts such as rain, >= 0")
    return frame


def baseline_forecasts(y: np.ndarray, months: np.ndarray, n_train: int,
                       horizon: int) -> dict[str, list[np.ndarray]]:
    """Each baseline's h-month-ahead forecasts of the test months (from n_train on), for
    h = 1..horizon, walk-forward, fitted on the training months only."""
    train, test = y[:n_train], np.arange(n_train, len(y))
    ar = fit_ar(train, AR_ORDER)
    steps = range(1, horizon + 1)
    return {
        # clipped at FLOOR as the model's forecasts are (no negative rain): only helps AR
        "ar12": [floored(walk_forward(y, test, h, lambda p, h=h: ar_forecast(ar, p, h)))
                 for h in steps],
        "seasonal_naive": [walk_forward(y, test, h, lambda p, h=h: seasonal_naive(p, h))
                           for h in steps],
        "climatology": [climatology(fit_climatology(train, months[:n_train]),
                                    months[test])] * horizon,
    }


def model_inputs(frame: MonthlyFrame) -> tuple[np.ndarray, list[int]]:
    """What the network reads besides the months: every --inputs column, the target's
    own column (if it is one of them) after log1p."""
    names = frame.columns[:-1]
    return frame.values[:, :-1], [i for i, c in enumerate(names) if c == frame.columns[-1]]


class Forecaster(nn.Module):
    """(B, T, I) past months + (B, 2 * horizon) target months' sin/cos -> (B, horizon)
    forecasts in the target's units: the base's level for each target month (BASE: its
    climatology) plus a correction in units of the base's scale (that month's spread),
    clipped at FLOOR by the caller."""

    def __init__(self, cell: str, impl: str, input_size: int, hidden_size: int,
                 horizon: int) -> None:
        super().__init__()
        # torch.nn's layer (nn.GRU for --cell gru), or core's drop-in with --impl core
        self.rnn = recurrent(cell, impl, input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size + 2 * horizon, horizon)
        # start as the base: the corrections are exactly zero until training moves them
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, target_months: torch.Tensor, level: torch.Tensor,
                scale: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(x)                                            # (B, T, H)
        correction = self.head(torch.cat([output[:, -1], target_months], dim=1))
        return level + scale * correction                                  # (B, horizon)


def network(cfg: Config, data: dict[str, Batch]) -> dict[str, int | str]:
    """Forecaster's arguments, which model.pt keeps to rebuild it."""
    return {"cell": cfg.cell, "impl": cfg.impl, "input_size": data["fit"][0].shape[2],
            "hidden_size": cfg.hidden_size, "horizon": cfg.horizon}


def train_network(cfg: Config, run: Run, data: dict[str, Batch], target_std: float,
                  seed: int, name: str = "") -> tuple[np.ndarray, History, Forecaster]:
    """Train on data["fit"], early-stop on data["val"]; return the clipped test forecasts
    (origins, horizon), the history and the model (holding its best weights). `name`: a
    second network of the seed, trained in seed<N>/<name>/."""
    model = Forecaster(**network(cfg, data)).to(run.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(model: Forecaster, batch: Batch, carried: None) -> tuple[torch.Tensor, None]:
        """One batch's loss (train_epoch then does zero_grad, backward and the optimizer's
        step); nothing is carried from one batch to the next."""
        *inputs, truth = batch  # inputs: x, target months, the base's level and scale
        # squared error in mm over one global scale, every horizon alike
        return (((model(*inputs) - truth) / target_std) ** 2).mean(), None

    def validate(model: Forecaster) -> dict[str, float]:
        *inputs, truth = data["val"]
        known = ~torch.isnan(truth)  # late origins' targets fall in the test months
        with torch.no_grad():
            forecast = floored(model(*inputs))
        return {"val_rmse": float(((forecast - truth)[known] ** 2).mean().sqrt())}

    # best.pt, last.pt and history.csv in seed<N>/ (or seed<N>/<name>/); --resume restores them
    checkpoint = run.checkpoint(seed, name, monitor="val_rmse", patience=cfg.patience,
                                model=model, optimizer=optimizer)
    trained = distributed.wrap(model)  # under torchrun, DDP averages the gradients
    for epoch in checkpoint.epochs(cfg.epochs):
        batches = shuffled_batches(data["fit"], cfg.batch_size)  # a new order each epoch
        loss = train_epoch(trained, optimizer, batches, step)
        checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
        if checkpoint.stopped:
            break
    history = checkpoint.load_best()
    # the best-on-validation weights forecast the test months, once
    with torch.no_grad():
        forecast = floored(model(*data["test"][:4])).cpu().numpy()
    return forecast, history, model


def horizon_scores(y_true: np.ndarray, by_horizon: list[np.ndarray], base: np.ndarray,
                   draws: np.ndarray) -> dict[str, float]:
    """For forecasts of the same months per horizon h: "rmse@h1", its 95% interval
    "rmse_lo@h1" and "rmse_hi@h1", the ratio to the base (climatology) "vs_climatology@h1"
    with its interval, and "mae@h1"; then the same for h2, ..."""
    scores = {}
    for h, forecast in enumerate(by_horizon, start=1):
        out = rmse_interval(y_true, forecast, base, draws, against=BASE.name)
        scores |= {f"{name}@h{h}": value for name, value in out.items()}
        scores[f"mae@h{h}"] = mae(y_true, forecast)
    return scores


def plot_test_months(folder: Path, truth: np.ndarray, forecasts: dict[str, list[np.ndarray]],
                     dates: np.ndarray, unit: str, column: str) -> None:
    """test_forecasts_h<h>.png for each horizon h (every method beside the truth; one named
    "model" is drawn on top) and test_residuals.png (the model's forecast - truth at every
    horizon)."""
    horizons = range(1, len(forecasts["model"]) + 1)
    for h in horizons:
        lines({"truth": truth} | {name: f[h - 1] for name, f in forecasts.items()},
              folder / f"test_forecasts_h{h}.png", f"{column}: test months, {h} month(s) ahead",
              xlabel="month", ylabel=unit, x=dates)
    residuals = {"zero": np.zeros(len(truth))} | {
        f"model h{h}": forecasts["model"][h - 1] - truth for h in horizons}
    lines(residuals, folder / "test_residuals.png", "model forecast - truth", xlabel="month",
          ylabel=unit, x=dates)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.seeds = 2, min(cfg.seeds, 2)
    run = Run(cfg)

    # ---- data: split by time; every statistic from the training part only
    path = csv_path(cfg.csv, DATASET)
    frame = read_amounts(path, [*cfg.inputs, cfg.target], cfg.date_columns,
                         min_rows(cfg.lags, cfg.val_months, cfg.test_months, cfg.horizon))
    y, months, dates = frame.values[:, -1], frame.months, frame.dates
    n, horizon = len(y), cfg.horizon
    n_train = n - cfg.test_months
    fit_end = n_train - cfg.val_months
    train, test = y[:n_train], np.arange(n_train, n)
    steps = range(1, horizon + 1)
    print(f"{path.name}: {n} months; train {fit_end} + validation {cfg.val_months} "
          f"(early stopping) + test {cfg.test_months}, horizons 1..{horizon}")
    # --preflight ends here, the CSV read and checked; a resume refuses it edited since
    run.data_checked(csv_sha256=sha256_of(path))

    # ---- baselines per horizon, walk-forward on the same test months
    forecasts = baseline_forecasts(y, months, n_train, horizon)
    base_test = forecasts[BASE.name][0]  # the model's base, scored as a baseline
    # the same resampled test months for every method, horizon and seed, drawn from --seed
    draws = bootstrap_months(len(test), cfg.seed)
    baselines = {name: horizon_scores(y[test], f, base_test, draws)
                 for name, f in forecasts.items()}
    columns = [f"{m}@h{h}" for h in steps for m in ("rmse", "rmse_lo", "rmse_hi")]
    print(comparison_table(baselines, columns))

    # ---- the network on every input, and the same network on the target alone
    variants = {
        "model": prepare(*model_inputs(frame), y, months, n_train, fit_end, cfg.lags,
                         horizon, run.device, base=BASE),
        "univariate": prepare(y[:, None], [0], y, months, n_train, fit_end, cfg.lags,
                              horizon, run.device, base=BASE)}

    def train_seed(seed: int) -> SeedResult:
        scores, outputs, histories = {}, {}, {}
        for name, data in variants.items():
            forecast, histories[name], outputs[f"{name} network"] = train_network(
                cfg, run, data, float(train.std()), seed, "" if name == "model" else name)
            outputs[name] = per_horizon(forecast, cfg.test_months)
            scores[name] = horizon_scores(y[test], outputs[name], base_test, draws)
        for h in steps:  # model against univariate, seed for seed, on the same draws
            paired = rmse_interval(y[test], outputs["model"][h - 1],
                                   outputs["univariate"][h - 1], draws, against="univariate")
            scores["model"] |= {f"{k}@h{h}": v for k, v in paired.items()
                                if k.startswith("vs_")}
        history = histories["model"]
        history.seconds += histories["univariate"].seconds  # the time both variants took
        return SeedResult(seed, scores, history, outputs)

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return {}  # under torchrun, process 0 alone reports

    # ---- report: the model (median over seeds) beside every baseline, per horizon
    per_seed = seeds.test()
    results = {"model": per_seed["model"], **baselines, "univariate": per_seed["univariate"]}
    print(f"\ntest, last {cfg.test_months} months at every horizon, median over "
          f"{len(run.seeds)} seed(s), [95% interval over the test months]; training "
          f"{seeds.seconds:.1f} s in all (both variants)")
    print(comparison_table(results, columns))
    ratio = f"vs_{BASE.name}"
    for h in steps:
        model, uni = results["model"], results["univariate"]
        print(f"horizon {h}: model / {BASE.name} RMSE = {model[f'{ratio}@h{h}']:.3f} "
              f"[{model[f'{ratio}_lo@h{h}']:.3f}, "
              f"{model[f'{ratio}_hi@h{h}']:.3f}], model / univariate = "
              f"{model[f'vs_univariate@h{h}']:.3f} [{model[f'vs_univariate_lo@h{h}']:.3f}, "
              f"{model[f'vs_univariate_hi@h{h}']:.3f}]; univariate / {BASE.name} = "
              f"{uni[f'{ratio}@h{h}']:.3f}")

    run.finish(results, seeds.seconds)
    save_networks(run.dir / "model.pt", [r.outputs["model network"] for r in seeds.results],
                  task=run.task, network=network(cfg, variants["model"]), seeds=run.seeds,
                  columns=frame.columns, log_columns=model_inputs(frame)[1],
                  date_columns=cfg.date_columns, lags=cfg.lags, horizon=horizon,
                  val_months=cfg.val_months, test_months=cfg.test_months,
                  csv=portable(path) if cfg.csv else "", base=BASE.name, dataset=DATASET)
    shown = seeds.median("rmse@h1")
    plot_test_months(run.dir, y[test], {"univariate": shown.outputs["univariate"], **forecasts,
                                        "model": shown.outputs["model"]},
                     dates[test], cfg.target, frame.columns[-1])
    training_curve(shown.history.epochs, run.dir / "training_curve.png", keys=["val_rmse"],
                   unit=cfg.target)
    print(f"wrote {run.dir}/metrics.json, model.pt, seed*/best.pt and plots")
    return results


if __name__ == "__main__":
    run_main(main)
