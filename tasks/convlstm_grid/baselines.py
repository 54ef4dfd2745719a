"""convlstm_grid's baselines, forecasts that need no training, and the one metric every
method is scored with: the MSE at each step of the horizon."""

from __future__ import annotations

import torch

from core.metrics import mse


def baseline_forecasts(x: torch.Tensor, horizon: int, mean_field: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
    """Inputs (N, T, C, H, W) -> each baseline's forecast (N, horizon, C, H, W)."""
    last, step = x[:, -1:], x[:, -1:] - x[:, -2:-1]
    ahead = torch.arange(1, horizon + 1, dtype=x.dtype).view(1, horizon, 1, 1, 1)
    return {"persistence": last.expand(-1, horizon, -1, -1, -1),
            "zero": torch.zeros_like(last).expand(-1, horizon, -1, -1, -1),
            "mean": mean_field.expand(len(x), horizon, -1, -1, -1),
            "linear_extrapolation": last + ahead * step}


def scores(y: torch.Tensor, prediction: torch.Tensor) -> dict[str, float]:
    """MSE at each horizon step ("mse@h1" ...) and over all of them ("mse")."""
    y, prediction = y.numpy(), prediction.numpy()
    per_step = {f"mse@h{k + 1}": mse(y[:, k], prediction[:, k]) for k in range(y.shape[1])}
    return {**per_step, "mse": mse(y, prediction)}
