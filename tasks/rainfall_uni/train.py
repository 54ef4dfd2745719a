"""One-month-ahead rainfall: a small GRU corrects the monthly climatology.

Data: Rainfall_data.csv, 252 monthly rows (2000-01 to 2020-12); the target is
Precipitation in mm (fetched by name with its checksum; see core/data.py). Any monthly CSV
works: `--csv PATH --target COLUMN --date-columns Year Month`.

Split by time. Test = the last 50 months, scored walk-forward: each month's forecast reads
only the true values before it, and the training part supplies the lags of the first test
months, so every method forecasts the same 50 months. The last 24 training months are the
validation set for early stopping; the test months are touched once, at the end. With so
few test months every RMSE comes with a bootstrap 95% interval over them (seeded by
--seed), and so does its ratio to climatology's.

The model reads the last 12 months of log1p(precipitation), standardised, with each
month's sin/cos position in the year, and outputs a correction to the training
climatology of the target month in units of that month's spread:

    forecast = max(0, clim[m] + std[m] * GRU(last 12 months, month m))

Its output layer starts at zero, so an untrained model *is* climatology, and early
stopping ends training before the correction grows unless validation RMSE improves.

    python -m tasks.rainfall_uni.train            # 5 seeds, seconds on a laptop CPU
    python -m tasks.rainfall_uni.forecast         # next month, from the trained model

The walk-forward data preparation, the intervals and model.pt are core/forecast.py's,
shared with rainfall_multi. The default run's numbers, and the command that made them,
are in the README's table: with about 190 training months the model is climatology plus
a small correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import distributed
from core.baselines import (
    ar_forecast,
    climatology,
    fit_ar,
    fit_climatology,
    persistence,
    seasonal_naive,
)
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
from core.metrics import mae, mase, seasonal_scale
from core.plots import lines, training_curve
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.series import MONTHS_PER_YEAR, MonthlyFrame, read_monthly_csv, walk_forward
from core.train import Batch, History, seed_everything, shuffled_batches, train_epoch

# Config's flags, read_amounts, Forecaster and train_network are rainfall_multi's too, repeated
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
HORIZON = 1  # one month ahead; rainfall_multi forecasts several at once


@dataclass
class Config(RunConfig):
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


def baseline_forecasts(y: np.ndarray, months: np.ndarray,
                       n_train: int) -> dict[str, np.ndarray]:
    """Each baseline's one-month-ahead forecasts of the test months (from n_train on),
    walk-forward, fitted on the training months only."""
    train, test = y[:n_train], np.arange(n_train, len(y))
    ar = fit_ar(train, AR_ORDER)
    return {
        # clipped at FLOOR as the model's forecasts are (no negative rain): only helps AR
        "ar12": floored(walk_forward(y, test, 1, lambda p: ar_forecast(ar, p, 1))),
        "seasonal_naive": walk_forward(y, test, 1, lambda p: seasonal_naive(p, 1)),
        "climatology": climatology(fit_climatology(train, months[:n_train]), months[test]),
        "persistence": walk_forward(y, test, 1, lambda p: persistence(p, 1)),
    }


def model_inputs(frame: MonthlyFrame) -> tuple[np.ndarray, list[int]]:
    """What the network reads besides the month: the target alone, after log1p."""
    return frame.values[:, -1:], [0]


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
            "hidden_size": cfg.hidden_size, "horizon": HORIZON}


def train_network(cfg: Config, run: Run, data: dict[str, Batch], target_std: float,
                  seed: int) -> tuple[np.ndarray, History, Forecaster]:
    """Train on data["fit"], early-stop on data["val"]; return the clipped test forecasts
    (origins, horizon), the history and the model (holding its best weights)."""
    model = Forecaster(**network(cfg, data)).to(run.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(model: Forecaster, batch: Batch, carried: None) -> tuple[torch.Tensor, None]:
        """One batch's loss (train_epoch then does zero_grad, backward and the optimizer's
        step); nothing is carried from one batch to the next."""
        *inputs, truth = batch  # inputs: x, target months, the base's level and scale
        # squared error in mm over one global scale: the wet months weigh most, as in RMSE
        return (((model(*inputs) - truth) / target_std) ** 2).mean(), None

    def validate(model: Forecaster) -> dict[str, float]:
        *inputs, truth = data["val"]
        known = ~torch.isnan(truth)  # late origins' targets fall in the test months
        with torch.no_grad():
            forecast = floored(model(*inputs))
        return {"val_rmse": float(((forecast - truth)[known] ** 2).mean().sqrt())}

    # best.pt, last.pt and history.csv in seed<N>/; --resume restores them
    checkpoint = run.checkpoint(seed, monitor="val_rmse", patience=cfg.patience,
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


def scores(y_true: np.ndarray, forecast: np.ndarray, base: np.ndarray, scale: float,
           draws: np.ndarray) -> dict[str, float]:
    """RMSE with its 95% interval, its ratio to the base's (climatology's) with its
    interval, MAE, MASE (seasonal-naive scale) and skill (1 - the ratio)."""
    out = rmse_interval(y_true, forecast, base, draws, against=BASE.name)
    return {**out, "mae": mae(y_true, forecast), "mase": mase(y_true, forecast, scale),
            "skill": 1 - out[f"vs_{BASE.name}"]}


def plot_test_months(folder: Path, truth: np.ndarray, forecasts: dict[str, np.ndarray],
                     dates: np.ndarray, unit: str, title: str) -> None:
    """test_forecasts.png (every method beside the truth) and test_residuals.png (each
    method's forecast - truth) over the test months."""
    lines({"truth": truth, **forecasts}, folder / "test_forecasts.png", title,
          xlabel="month", ylabel=unit, x=dates)
    residuals = {"zero": np.zeros(len(truth))} | {name: f - truth
                                                  for name, f in forecasts.items()}
    lines(residuals, folder / "test_residuals.png", "forecast - truth", xlabel="month",
          ylabel=unit, x=dates)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.seeds = 2, min(cfg.seeds, 2)
    run = Run(cfg)

    # ---- data: split by time; every statistic from the training part only
    path = csv_path(cfg.csv, DATASET)
    frame = read_amounts(path, [cfg.target], cfg.date_columns,
                         min_rows(cfg.lags, cfg.val_months, cfg.test_months, HORIZON))
    y, months, dates = frame.values[:, 0], frame.months, frame.dates
    n = len(y)
    n_train = n - cfg.test_months
    fit_end = n_train - cfg.val_months        # windows before this train the weights
    train = y[:n_train]
    test = np.arange(n_train, n)
    print(f"{path.name}: {n} months; train {fit_end} + validation {cfg.val_months} "
          f"(early stopping) + test {cfg.test_months} (walk-forward)")

    # ---- baselines, walk-forward on the same test months
    forecasts = baseline_forecasts(y, months, n_train)
    scale = seasonal_scale(train, MONTHS_PER_YEAR)
    if scale == 0:
        raise UserError(f"{path.name}: the target repeats itself exactly every year in the "
                        "training part, so MASE has no scale; nothing to forecast")
    # --preflight ends here, the CSV read and checked; a resume refuses it edited since
    run.data_checked(csv_sha256=sha256_of(path))
    # the same resampled test months for every method and seed, drawn from --seed
    draws = bootstrap_months(len(test), cfg.seed)
    baselines = {name: scores(y[test], f, forecasts[BASE.name], scale, draws)
                 for name, f in forecasts.items()}
    ratio = f"vs_{BASE.name}"
    columns = ["rmse", "rmse_lo", "rmse_hi", "mae", "mase", ratio]
    print(comparison_table(baselines, columns))

    # ---- model: log1p(rain) and the month in, a correction to climatology out
    data = prepare(*model_inputs(frame), y, months, n_train, fit_end, cfg.lags, HORIZON,
                   run.device, base=BASE)
    *_, level, _, truth = data["val"]  # the base's forecasts of the validation months
    print(f"validation RMSE of {BASE.name}: {float(((level - truth) ** 2).mean().sqrt()):.4g}")

    def train_seed(seed: int) -> SeedResult:
        forecast, history, model = train_network(cfg, run, data, float(train.std()), seed)
        forecast = per_horizon(forecast, cfg.test_months)[0]
        test_scores = scores(y[test], forecast, forecasts[BASE.name], scale, draws)
        return SeedResult(seed, {"model": test_scores}, history, (forecast, model))

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return {}  # under torchrun, process 0 alone reports

    # ---- report: the model (median over seeds) beside every baseline
    results = {**seeds.test(), **baselines}
    print(f"\ntest, {cfg.test_months} months walk-forward, median over {len(run.seeds)} "
          f"seed(s), [95% interval over the test months]; training {seeds.seconds:.1f} s")
    print(comparison_table(results, columns))
    model = results["model"]
    print(f"model / {BASE.name} RMSE = {model[ratio]:.3f} "
          f"[{model[f'{ratio}_lo']:.3f}, {model[f'{ratio}_hi']:.3f}]")
    shown, _ = seeds.median("rmse").outputs
    worst = np.argsort(-np.abs(shown - y[test]))[:3]
    for i in worst:
        print(f"  largest miss: {dates[test[i]]}: true {y[test[i]]:.4g}, model "
              f"{shown[i]:.4g}, {BASE.name} {forecasts[BASE.name][i]:.4g}")

    run.finish(results, seeds.seconds)
    save_networks(run.dir / "model.pt", [r.outputs[1] for r in seeds.results], task=run.task,
                  network=network(cfg, data), seeds=run.seeds,
                  columns=frame.columns, log_columns=model_inputs(frame)[1],
                  date_columns=cfg.date_columns,
                  lags=cfg.lags, horizon=HORIZON, val_months=cfg.val_months,
                  test_months=cfg.test_months, csv=portable(path) if cfg.csv else "",
                  base=BASE.name, dataset=DATASET)
    plot_test_months(run.dir, y[test], {**forecasts, "model": shown}, dates[test], cfg.target,
                     f"{frame.columns[0]}: test months, one step ahead")
    training_curve(seeds.median("rmse").history.epochs, run.dir / "training_curve.png",
                   keys=["val_rmse"], unit=cfg.target)
    print(f"wrote {run.dir}/metrics.json, model.pt, seed*/best.pt and plots")
    return results


if __name__ == "__main__":
    run_main(main)
