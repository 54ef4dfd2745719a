"""convlstm_grid's figures: test forecasts beside the truth as a mosaic, and as a GIF."""

from __future__ import annotations

from pathlib import Path

import torch

from core import plots

from .data import CHANNELS


def plot_predictions(y: torch.Tensor, forecasts: dict[str, torch.Tensor], path: Path,
                     show: int) -> None:
    """For `show` test sequences and each channel, a mosaic: rows the truth, each
    forecast, then each forecast's error; columns the horizon steps (one image per panel
    keeps the figure quick to draw)."""
    import matplotlib.pyplot as plt  # core.plots has already chosen the Agg backend

    horizon, size = y.shape[1], y.shape[-1]
    names = ["truth", *forecasts, *(f"{name} error" for name in forecasts)]
    fig, axes = plt.subplots(show, CHANNELS, squeeze=False,
                             figsize=(2 * horizon + 2, 1.1 * len(names) * show))
    for s in range(show):
        for channel in range(CHANNELS):
            truth = y[s, :, channel]                        # (horizon, H, W)
            guesses = [f[s, :, channel] for f in forecasts.values()]
            panels = [truth, *guesses, *(guess - truth for guess in guesses)]
            mosaic = torch.cat([torch.cat(list(frames), dim=1) for frames in panels])
            limit = float(truth.abs().max()) or 1.0         # mosaic: (rows H, horizon W)
            ax = axes[s, channel]
            ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([size * (k + 0.5) for k in range(horizon)],
                          [f"+{k + 1}" for k in range(horizon)], fontsize=7)
            ax.set_yticks([size * (r + 0.5) for r in range(len(names))], names, fontsize=7)
            for edge in range(1, horizon):
                ax.axvline(edge * size - 0.5, color="black", linewidth=0.5)
            for edge in range(1, len(names)):
                ax.axhline(edge * size - 0.5, color="black", linewidth=0.5)
            ax.set_title(f"test #{s}, channel {channel}", fontsize=8)
    fig.tight_layout()
    plots.save(fig, path, dpi=100)


def animate(x: torch.Tensor, y: torch.Tensor, prediction: torch.Tensor, path: Path) -> None:
    """A GIF of one test sequence, channel 0: the inputs, then truth beside the model."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    truth = torch.cat([x, y])                               # (T_in + horizon, C, H, W)
    model = torch.cat([x, prediction])
    limit = float(truth[:, 0].abs().max()) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.7))
    images = [ax.imshow(truth[0, 0], cmap="RdBu_r", vmin=-limit, vmax=limit) for ax in axes]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])

    def draw(t: int):
        stage = "input" if t < len(x) else f"+{t - len(x) + 1}"
        for ax, image, frames, name in zip(axes, images, (truth, model), ("truth", "model"),
                                           strict=True):
            image.set_data(frames[t, 0])
            ax.set_title(f"{name} {stage}", fontsize=9)
        return images

    FuncAnimation(fig, draw, frames=len(truth)).save(path, writer=PillowWriter(fps=2))
    plt.close(fig)
