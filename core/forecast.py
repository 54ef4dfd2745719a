"""Monthly forecasting with a recurrent network that corrects climatology: the flags, the
data preparation, the model and its training, shared by rainfall_uni (one variable, one
month ahead) and rainfall_multi (several variables, several months ahead).

The network reads the `lags` months before an origin o (never month o itself) and outputs,
for each horizon h = 1..H, a correction to the training climatology of target month
o + h - 1 in units of that calendar month's spread:

    forecast[h] = max(0, clim[m_h] + spread[m_h] * network(window, months m_1..m_H)[h])

Its output layer starts at zero, so an untrained network *is* climatology, and early
stopping on the validation months keeps the correction only where it helps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from core.baselines import fit_climatology
from core.config import OneLineParser, RunConfig, UserError, arg, program_name, task_name
from core.data import fetch
from core.layers import recurrent
from core.series import (
    MONTHS_PER_YEAR,
    MonthlyFrame,
    StandardScaler,
    month_features,
    monthly_std,
    read_monthly_csv,
    windows,
)
from core.series import targets as horizon_targets
from core.train import Batch, History, fit, load_checkpoint, set_threads, shuffled_batches

MIN_FIT_WINDOWS = 2 * MONTHS_PER_YEAR  # fewer training windows than this is no model


@dataclass
class ForecastConfig(RunConfig):
    """The flags both rainfall tasks share."""

    horizon: ClassVar[int] = 1  # months forecast at once; rainfall_multi makes it a flag

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


def load_monthly(cfg: ForecastConfig, dataset: str, columns: list[str],
                 extra_rows: int = 0) -> tuple[MonthlyFrame, str]:
    """The CSV's `columns` (the target last), checked for this run's needs: enough rows
    for the lags, validation, test and `extra_rows`, and a target that is never negative."""
    path = Path(cfg.csv) if cfg.csv else fetch(dataset)
    need = cfg.lags + cfg.val_months + cfg.test_months + extra_rows + MIN_FIT_WINDOWS
    frame = read_monthly_csv(path, columns, cfg.date_columns, min_rows=need)
    y = frame.values[:, -1]
    if (y < 0).any():
        raise UserError(f"{path.name} column {frame.columns[-1]!r} has negative values "
                        f"(min {y.min():g}); this task forecasts amounts such as rain, >= 0")
    return frame, path.name


class Forecaster(nn.Module):
    """(B, T, I) past months + (B, 2 * horizon) target months' sin/cos -> (B, horizon)
    corrections to the climatology, in units of each target month's spread."""

    def __init__(self, cell: str, impl: str, input_size: int, hidden_size: int,
                 horizon: int) -> None:
        super().__init__()
        self.rnn = recurrent(cell, impl, input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size + 2 * horizon, horizon)
        # start as climatology: the corrections are exactly zero until training moves them
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, target_months: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(x)                                   # (B, T, H)
        return self.head(torch.cat([output[:, -1], target_months], dim=1))  # (B, horizon)


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
             horizon_targets(truth, origins, horizon))
    return tuple(torch.tensor(p, dtype=torch.float32, device=device) for p in parts)


def prepare(raw: np.ndarray, log_columns: list[int], y: np.ndarray, months: np.ndarray,
            n_train: int, fit_end: int, lags: int, horizon: int,
            device: torch.device) -> dict[str, Batch]:
    """The network's inputs and targets for the fit, validation and test origins.

    Inputs: each column of `raw` (N, F) standardised with statistics of the training part
    (the columns in `log_columns` after log1p: rain is zero-inflated and skewed), plus
    each month's sin/cos. The climatology and spread come from the training part too
    (validation included, as for the climatology baseline), never from the test months.
    Fit origins have every target before `fit_end`; validation origins are the validation
    months; test origins start where horizon H reaches the first test month; "next" is the
    month after the data's last, for the forecast command.
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


def predict(model: Forecaster, batch: Batch) -> torch.Tensor:
    """Forecasts in the target's units (mm), before clipping at zero: (K, horizon)."""
    x, target_months, base, std, _ = batch
    return base + std * model(x, target_months)


def train_forecaster(cfg: ForecastConfig, data: dict[str, Batch], horizon: int,
                     target_std: float, seed_dir: Path, resume: bool, desc: str,
                     device: torch.device) -> tuple[np.ndarray, History, Forecaster]:
    """Train on data["fit"], early-stop on data["val"]; return the clipped test forecasts
    (origins, horizon), the history and the model (holding its best weights)."""
    input_size = data["fit"][0].shape[2]
    model = Forecaster(cfg.cell, cfg.impl, input_size, cfg.hidden_size, horizon).to(device)
    set_threads(cfg.threads, model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fit_set, val_set = data["fit"], data["val"]

    def loss_fn(model: Forecaster, batch: Batch) -> torch.Tensor:
        # squared error in mm over one global scale: the wet months weigh most, as in RMSE
        return (((predict(model, batch) - batch[-1]) / target_std) ** 2).mean()

    def validate(model: Forecaster) -> dict[str, float]:
        truth = val_set[-1]
        known = ~torch.isnan(truth)  # late origins' targets fall in the test months
        forecast = predict(model, val_set).clamp(min=0)
        return {"val_rmse": float(((forecast - truth)[known] ** 2).mean().sqrt())}

    history = fit(model, optimizer, lambda: shuffled_batches(fit_set, cfg.batch_size),
                  loss_fn, validate, epochs=cfg.epochs, run_dir=seed_dir, config=asdict(cfg),
                  monitor="val_rmse", patience=cfg.patience, resume=resume,
                  eval_only=cfg.eval_only, desc=desc)
    with torch.no_grad():
        forecast = predict(model, data["test"]).clamp(min=0).cpu().numpy()
    return forecast, history, model


def forecast_command(config_class: type[ForecastConfig], dataset: str,
                     model_inputs: Callable[[ForecastConfig, MonthlyFrame],
                                            tuple[np.ndarray, list[int]]],
                     argv: list[str] | None, doc: str) -> None:
    """A rainfall task's forecast command: the months after the data's last month, from
    the trained run's best weights (the median over its seeds), beside climatology.

    The run's settings come from its metrics.json; `--csv` may give a newer file with the
    same columns. The statistics the network reads (scaler, climatology, spread) are
    fitted, as in training, on all but the last --test-months rows of the file read."""
    parser = OneLineParser(prog=program_name(config_class), description=doc.split("\n\n")[0])
    parser.add_argument("--run-dir", default="", help="the trained run; empty means "
                        "runs/<task>")
    parser.add_argument("--csv", default="", help="monthly CSV to forecast from; empty: the "
                        "file the run trained on")
    args = parser.parse_args(argv)
    task = task_name(config_class)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / task
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise UserError(f"no trained model in {run_dir}: train one with "
                        f"{program_name(config_class)}")
    try:
        saved = json.loads(metrics_path.read_text())["config"]
        cfg = config_class(**saved)
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{metrics_path} is not a finished run of {task}: {error}") from None
    cfg.csv = args.csv or cfg.csv
    frame, source = load_monthly(cfg, dataset, model_columns(cfg), cfg.horizon)
    y, months = frame.values[:, -1], frame.months
    n_train = len(y) - cfg.test_months
    raw, log_columns = model_inputs(cfg, frame)
    data = prepare(raw, log_columns, y, months, n_train, n_train - cfg.val_months, cfg.lags,
                   cfg.horizon, torch.device("cpu"))
    forecasts = []
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        model = Forecaster(cfg.cell, cfg.impl, raw.shape[1] + 2, cfg.hidden_size, cfg.horizon)
        model.load_state_dict(load_checkpoint(run_dir / f"seed{seed}" / "best.pt")["model"])
        model.eval()
        with torch.no_grad():
            forecasts.append(predict(model, data["next"]).clamp(min=0)[0].numpy())
    median = np.median(forecasts, axis=0)
    climatology = data["next"][2][0].numpy()
    last = frame.dates[-1]
    print(f"{source}: last month {last}; {frame.columns[-1]} forecast by {task} (median of "
          f"{len(forecasts)} seed(s)) beside the training climatology")
    for h in range(cfg.horizon):
        print(f"{last + h + 1}  model {median[h]:8.1f}   climatology {climatology[h]:8.1f}")


def model_columns(cfg: ForecastConfig) -> list[str]:
    """The CSV columns a rainfall task reads: its inputs, then the target."""
    return [*getattr(cfg, "inputs", []), cfg.target]
