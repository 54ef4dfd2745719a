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

    python -m tasks.rainfall_uni.train            # 5 seeds, ~8 s of training

Default run (5 seeds, 2 shared CPU cores, 8 s of training in all), on the 50 test months:

    method           RMSE mm   MAE mm   MASE   skill vs climatology
    model (median)     146.2     69.6   0.60    +0.008   (seeds 145.0-147.4)
    climatology        147.4     70.3   0.61     0
    AR(12)             164.6     89.0   0.77    -0.12    (170.3 without clipping at 0)
    seasonal naive     187.1     85.5   0.74    -0.27
    persistence        295.5    185.6   1.60    -1.00

The model is climatology plus a correction that early stopping keeps near zero: on
validation it does not beat climatology (167.6 vs 167.1 mm), and no variant tried beat
climatology on later months in rolling checks inside the training part. The issue's
target (RMSE <= 140 mm) is not reached; the MAE target (<= climatology's) is, narrowly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.baselines import (
    ar_forecast,
    climatology,
    fit_ar,
    fit_climatology,
    persistence,
    seasonal_naive,
)
from core.config import RunConfig, UserError, arg, parse, run, run_dir_for
from core.data import fetch
from core.layers import recurrent
from core.metrics import mae, mase, rmse, seasonal_scale
from core.plots import lines, training_curve
from core.report import comparison_table, median_over_seeds, write_metrics
from core.series import (
    MONTHS_PER_YEAR,
    StandardScaler,
    month_features,
    monthly_std,
    read_monthly_csv,
    walk_forward,
    windows,
)
from core.train import (
    History,
    fit,
    pick_device,
    require_checkpoints,
    seed_everything,
    set_threads,
    shuffled_batches,
)

DATASET = "Rainfall_data.csv"
AR_ORDER = 12
MIN_FIT_WINDOWS = 2 * MONTHS_PER_YEAR  # fewer training windows than this is no model


@dataclass
class Config(RunConfig):
    csv: str = arg("", "monthly CSV to forecast; empty fetches Rainfall_data.csv")
    target: str = arg("Precipitation", "column to forecast (a non-negative amount, e.g. mm)")
    date_columns: list[str] = arg(["Year", "Month"],
                                  "one date column, or year and month (and day) columns")
    test_months: int = arg(50, "last months held out as the test set")
    val_months: int = arg(24, "training months just before the test, for early stopping")
    lags: int = arg(12, "past months the network reads")
    cell: str = arg("gru", "recurrent cell", choices=["rnn", "lstm", "gru"])
    impl: str = arg("torch", "torch.nn layers, or core's hand-written cells",
                    choices=["torch", "core"])
    hidden_size: int = arg(16, "hidden units of the recurrent layer")
    epochs: int = arg(300, "most epochs per seed (early stopping usually ends sooner)")
    patience: int = arg(30, "stop after this many epochs without a better validation RMSE",
                        minimum=1)
    batch_size: int = arg(32, "windows per step")
    lr: float = arg(3e-3, "AdamW learning rate", minimum=0)
    weight_decay: float = arg(1e-2, "AdamW weight decay", minimum=0)
    seeds: int = arg(5, "seeds --seed, --seed+1, ...; metrics are the median over them")


def load_series(cfg: Config) -> tuple[np.ndarray, np.ndarray, str]:
    """The target (N,) and calendar months (N,), checked for this run's needs."""
    path = Path(cfg.csv) if cfg.csv else fetch(DATASET)
    need = cfg.lags + cfg.val_months + cfg.test_months + MIN_FIT_WINDOWS
    frame = read_monthly_csv(path, [cfg.target], cfg.date_columns, min_rows=need)
    y = frame.values[:, 0]
    if (y < 0).any():
        raise UserError(f"{path.name} column {frame.columns[0]!r} has negative values "
                        f"(min {y.min():g}); this task forecasts amounts such as rain, >= 0")
    return y, frame.months, path.name


def check_config(cfg: Config) -> None:
    for name in ("test_months", "val_months", "lags", "hidden_size", "epochs", "batch_size",
                 "seeds"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")


def seasonal_errors(y_true: np.ndarray, forecast: np.ndarray, scale: float,
                    rmse_clim: float) -> dict[str, float]:
    """RMSE, MAE, MASE (seasonal-naive scale) and skill versus climatology."""
    error = rmse(y_true, forecast)
    return {"rmse": error, "mae": mae(y_true, forecast), "mase": mase(y_true, forecast, scale),
            "skill": 1 - error / rmse_clim}


class Forecaster(nn.Module):
    """(B, T, I) past months + (B, 2) target month's sin/cos -> (B,) correction to the
    climatology, in units of the target month's spread."""

    def __init__(self, cell: str, impl: str, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = recurrent(cell, impl, input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size + 2, 1)
        # start as climatology: the correction is exactly zero until training moves it
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, target_month: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(x)                          # (B, T, H)
        last = torch.cat([output[:, -1], target_month], dim=1)  # (B, H + 2)
        return self.head(last).squeeze(1)                # (B,)


def train_forecaster(cfg: Config, input_size: int, seed: int, run_dir: Path,
                     data: dict[str, tuple[torch.Tensor, ...]], target_std: float,
                     device: torch.device) -> tuple[np.ndarray, History]:
    """Train one seed on data["fit"], early-stop on data["val"]; return the clipped test
    forecasts and the training history."""
    seed_everything(seed)
    model = Forecaster(cfg.cell, cfg.impl, input_size, cfg.hidden_size).to(device)
    threads = set_threads(cfg.threads, model)
    if seed == cfg.seed:
        count = sum(p.numel() for p in model.parameters())
        print(f"model: {cfg.cell} ({cfg.impl}), {count} parameters, {threads} thread(s), "
              f"{device}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fit_set, val_set = data["fit"], data["val"]

    def predict(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, target_month, base, std, _ = batch
        return base + std * model(x, target_month)  # mm, before clipping at zero

    def batches() -> list[tuple[torch.Tensor, ...]]:
        return shuffled_batches(fit_set, cfg.batch_size)

    def loss_fn(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        # squared error in mm over one global scale, so that, like the RMSE we report, the
        # wet months weigh most
        return (((predict(batch) - batch[-1]) / target_std) ** 2).mean()

    def validate() -> dict[str, float]:
        forecast = predict(val_set).clamp(min=0).cpu().numpy()
        return {"val_rmse": rmse(val_set[-1].cpu().numpy(), forecast)}

    seed_dir = run_dir / f"seed{seed}"
    history = fit(model, optimizer, batches, loss_fn, validate, epochs=cfg.epochs,
                  run_dir=seed_dir, config=asdict(cfg), monitor="val_rmse",
                  patience=cfg.patience, resume=cfg.resume and (seed_dir / "last.pt").exists(),
                  desc=f"seed {seed}")
    with torch.no_grad():
        forecast = predict(data["test"]).clamp(min=0).cpu().numpy()
    return forecast, history


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, description=__doc__.split("\n")[0])
    if cfg.dry_run:
        cfg.epochs, cfg.seeds = 2, min(cfg.seeds, 2)
    check_config(cfg)
    run_dir = run_dir_for(cfg, __package__)
    if cfg.resume:
        require_checkpoints(run_dir)
    device = pick_device(cfg.device)

    # ---- data: split by time; every statistic from the training part only
    y, months, source = load_series(cfg)
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

    # ---- model inputs: log1p(rain) tames the zero-inflated, skewed months; the scaler and
    # the climatology it corrects come from the training part (validation included, as for
    # the climatology baseline), never from the test months.
    log_rain = np.log1p(y)[:, None]
    inputs = np.concatenate([StandardScaler.fit(log_rain[:n_train]).transform(log_rain),
                             month_features(months)], axis=1)          # (N, 3)
    spread = monthly_std(train, train_months)
    val_clim = rmse(y[fit_end:n_train], climatology(clim, months[fit_end:n_train]))

    def tensors(origins: np.ndarray) -> tuple[torch.Tensor, ...]:
        """x (K, lags, 3), target month sin/cos (K, 2), climatology, spread, truth (K,)."""
        m = months[origins]
        parts = (windows(inputs, cfg.lags, origins), month_features(m), clim[m - 1],
                 spread[m - 1], y[origins])
        return tuple(torch.tensor(p, dtype=torch.float32, device=device) for p in parts)

    # ---- train one model per seed; each keeps its best-on-validation weights
    data = {"fit": tensors(np.arange(cfg.lags, fit_end)),
            "val": tensors(np.arange(fit_end, n_train)), "test": tensors(test)}
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    per_seed, model_forecasts, histories, seconds = [], [], [], 0.0
    for seed in seeds:
        forecast, history = train_forecaster(cfg, inputs.shape[1], seed, run_dir, data,
                                             float(train.std()), device)
        model_forecasts.append(forecast)
        per_seed.append(seasonal_errors(y[test], forecast, scale, rmse_clim))
        histories.append(history)
        seconds += history.seconds
        print(f"seed {seed}: best epoch {history.best_epoch + 1}, validation RMSE "
              f"{history.best_value:.1f} (climatology {val_clim:.1f}), "
              f"test RMSE {per_seed[-1]['rmse']:.1f}")

    # ---- report: the model (median over seeds) beside every baseline
    results = {"model": median_over_seeds(per_seed), **baselines}
    print(f"\ntest, {cfg.test_months} months walk-forward, median over {len(seeds)} seed(s); "
          f"training {seconds:.1f} s in all")
    print(comparison_table(results, ["rmse", "mae", "mase", "skill"]))
    spread_rmse = np.array([s["rmse"] for s in per_seed])
    print(f"model RMSE over seeds: mean {spread_rmse.mean():.1f}, std {spread_rmse.std():.1f}, "
          f"range {spread_rmse.min():.1f}-{spread_rmse.max():.1f}; model / climatology "
          f"RMSE = {results['model']['rmse'] / rmse_clim:.3f}")
    median_seed = int(np.argsort(spread_rmse)[len(seeds) // 2])
    model_forecast = model_forecasts[median_seed]
    worst = np.argsort(-np.abs(model_forecast - y[test]))[:3]
    for i in worst:
        print(f"  largest miss: month index {test[i]} (calendar month {months[test[i]]}): "
              f"true {y[test[i]]:.0f}, model {model_forecast[i]:.0f}, "
              f"climatology {forecasts['climatology'][i]:.0f}")

    write_metrics(run_dir, task=__package__.rsplit(".", 1)[-1], seeds=seeds, device=str(device),
                  train_seconds=seconds, config=asdict(cfg), test=results)
    shown = {"truth": y[test], "model": model_forecast, **forecasts}
    lines(shown, run_dir / "test_forecasts.png", f"{cfg.target}: test months, one step ahead",
          xlabel="month index", ylabel=cfg.target, x=test)
    residuals = {"zero": np.zeros(len(test))} | {name: f - y[test] for name, f in shown.items()
                                                 if name != "truth"}
    lines(residuals, run_dir / "test_residuals.png", "forecast - truth", xlabel="month index",
          ylabel=cfg.target, x=test)
    training_curve(histories[median_seed].epochs, run_dir / "training_curve.png",
                   keys=["val_rmse"])
    print(f"wrote {run_dir}/metrics.json and plots")
    return results


if __name__ == "__main__":
    run(main)
