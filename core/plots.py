"""PNG plots shared by the tasks: the training curve, lines of truth against forecasts,
and a confusion matrix. Matplotlib's Agg backend, so they work with no screen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def training_curve(epochs: list[dict[str, float]], path: Path, keys: Sequence[str] = (),
                   log_scale: bool = True) -> Path:
    """Plot train loss and the named validation metrics per epoch."""
    fig, ax = plt.subplots(figsize=(7, 4))
    x = [e["epoch"] + 1 for e in epochs]
    for key in ["train_loss", *keys]:
        ax.plot(x, [e[key] for e in epochs], label=key, marker="." if len(x) < 40 else None)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def lines(series: dict[str, np.ndarray], path: Path, title: str, xlabel: str = "step",
          ylabel: str = "", x: np.ndarray | None = None) -> Path:
    """Several named series on one axis; the first is drawn as the truth (black, thick)."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, (name, values) in enumerate(series.items()):
        xs = np.arange(len(values)) if x is None else x
        style = {"color": "black", "linewidth": 2.2} if i == 0 else {"linewidth": 1.2}
        ax.plot(xs, values, label=name, **style)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def confusion(counts: np.ndarray, labels: Sequence[str], path: Path, title: str) -> Path:
    """A confusion matrix normalised by row (each true class sums to 1)."""
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    size = 3 + 0.42 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if share[i, j] >= 0.01:
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
