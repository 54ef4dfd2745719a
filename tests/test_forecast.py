"""core.forecast without a task: each named base forecasts what its name says from the
past alone, and the forecast command answers beside a base other than climatology, on a
series with negative values (refusing those is a task's choice, not core's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.baselines import fit_climatology
from core.config import UserError
from core.data import ROOT, locate, portable
from core.forecast import BASES, forecast_command, prepare, save_networks
from core.series import MonthlyFrame, read_monthly_csv

LAGS, HORIZON, VAL, TEST = 12, 2, 6, 6


def monthly_series(months: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A seasonal series below zero (a temperature anomaly, say) and its months 1..12."""
    t = np.arange(months)
    return -50 + 10 * np.sin(2 * np.pi * t / 12) + 0.1 * t, t % 12 + 1


def test_each_base_is_what_it_names() -> None:
    y, months = monthly_series()
    origins, n_train = np.array([24, 31]), 40
    level, scale = BASES["persistence"].levels(y, months, origins, HORIZON, n_train)
    np.testing.assert_array_equal(level, np.repeat(y[origins - 1][:, None], HORIZON, axis=1))
    assert np.all(scale == np.diff(y[:n_train]).std())
    level, _ = BASES["seasonal_naive"].levels(y, months, origins, HORIZON, n_train)
    np.testing.assert_array_equal(level, [[y[o + h - 12] for h in range(HORIZON)]
                                          for o in origins])
    level, _ = BASES["climatology"].levels(y, months, origins, HORIZON, n_train)
    clim = fit_climatology(y[:n_train], months[:n_train])
    np.testing.assert_array_equal(level, [[clim[months[o + h] - 1] for h in range(HORIZON)]
                                          for o in origins])


def test_seasonal_naive_fits_only_windows_with_a_year_behind_them() -> None:
    y, months = monthly_series()
    data = prepare(y[:, None], [], y, months, len(y) - TEST, len(y) - TEST - VAL, 3,
                   HORIZON, torch.device("cpu"), base=BASES["seasonal_naive"])
    x, _, level, _, _ = data["fit"]
    assert len(x) == len(y) - TEST - VAL - HORIZON + 1 - 12  # origins 12.., not 3..
    assert level[0, 0] == torch.tensor(y[0], dtype=torch.float32)


class Unchanged(nn.Module):
    """The base itself: a correction that stays zero."""

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.correction = nn.Parameter(torch.zeros(horizon))

    def forward(self, x: torch.Tensor, target_months: torch.Tensor, level: torch.Tensor,
                scale: torch.Tensor) -> torch.Tensor:
        return level + scale * self.correction


def read(path: Path, columns: list[str], date_columns: list[str], rows: int) -> MonthlyFrame:
    return read_monthly_csv(path, columns, date_columns, min_rows=rows)


def toy_run(folder: Path, base: str) -> Path:
    """A run folder whose model.pt holds one `Unchanged` network correcting `base`, trained
    (so to say) on a CSV of `monthly_series` beside it."""
    y, months = monthly_series()
    csv = folder / "anomaly.csv"
    csv.write_text("Year,Month,Anomaly\n" + "".join(
        f"{2000 + i // 12},{m},{v:.3f}\n" for i, (m, v) in enumerate(zip(months, y, strict=True))))
    run = folder / "run"
    run.mkdir()
    save_networks(run / "model.pt", [Unchanged(HORIZON)], task="toy",
                  network={"horizon": HORIZON}, seeds=[0], columns=["Anomaly"],
                  log_columns=[], date_columns=["Year", "Month"], lags=LAGS, horizon=HORIZON,
                  val_months=VAL, test_months=TEST, csv=portable(csv), dataset="", base=base)
    return run


def forecast(run: Path, base: str) -> int:
    return forecast_command(["--run-dir", str(run)], "toy", "A toy.", "toy", Unchanged,
                            lambda frame: (frame.values, []), read, BASES[base], floor=None)


@pytest.mark.parametrize("base", ["persistence", "seasonal_naive"])
def test_the_forecast_command_answers_beside_another_base(base: str, tmp_path: Path,
                                                          capsys) -> None:
    y, _ = monthly_series()
    assert forecast(toy_run(tmp_path, base), base) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.endswith(f"beside {BASES[base].label}")
    expected = [y[-1]] * HORIZON if base == "persistence" else y[-12:-12 + HORIZON]
    for line, value in zip(lines, expected, strict=True):
        _, _, model, name, level = line.split()
        assert name == base and float(model) == float(level) == pytest.approx(value, abs=0.1)
        assert float(model) < 0  # no floor: core does not clip nor refuse negatives


def test_a_model_of_another_base_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="corrects persistence, and toy now corrects "
                                        "seasonal_naive: train it again"):
        forecast(toy_run(tmp_path, "persistence"), "seasonal_naive")


def test_a_dataset_can_be_a_file_in_the_project() -> None:
    path = locate("tasks/rainfall_uni/train.py")
    assert path == ROOT / "tasks" / "rainfall_uni" / "train.py"
    assert portable(path) == "tasks/rainfall_uni/train.py"
    assert portable(Path("/") / "elsewhere" / "x.csv") == "/elsewhere/x.csv"
    with pytest.raises(UserError, match="no file at .*tasks/my_task/missing.csv"):
        locate("tasks/my_task/missing.csv")  # a path: not looked up in the manifest


def test_a_log_column_below_minus_one_is_refused_not_a_nan_loss() -> None:
    y = np.sin(np.arange(60) / 3)  # an anomaly, scaled below to reach -1.5
    raw = (1.5 * y)[:, None]
    months = np.arange(60) % 12 + 1
    with pytest.raises(UserError, match="input column 0 holds values <= -1.*model_inputs"):
        prepare(raw, [0], y, months, 48, 40, 6, 1, torch.device("cpu"),
                base=BASES["persistence"])
    assert prepare(raw, [], y, months, 48, 40, 6, 1, torch.device("cpu"),
                   base=BASES["persistence"])["fit"][0].isfinite().all()
