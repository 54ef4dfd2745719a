"""PNG plots shared by the tasks: the training curve, lines of truth against forecasts,
and a confusion matrix. Matplotlib's Agg backend, so they work with no screen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from core.files import atomic_write  # noqa: E402


def save(fig: plt.Figure, path: Path, dpi: int = 110) -> Path:
    """Write `fig` to `path` (PNG) atomically, as every file of a run, and close it."""
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)
    return Path(path)


def training_curve(epochs: list[dict[str, float]], path: Path, keys: Sequence[str] = (),
                   log_scale: bool = True, unit: str = "") -> Path:
    """Training loss per epoch on the left; the named validation metrics (in `unit`) on
    the right, so a unitless loss and an error in mm never share an axis."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x = [e["epoch"] + 1 for e in epochs]
    marker = "." if len(x) < 40 else None
    left.plot(x, [e["train_loss"] for e in epochs], marker=marker, color="tab:gray")
    left.set_title("training loss")
    for key in keys:
        right.plot(x, [e[key] for e in epochs], label=f"validation {key}", marker=marker)
    right.set_title("validation")
    right.set_ylabel(unit)
    right.legend()
    for ax in (left, right):
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path)
    return Path(path)


# Baselines in muted colours and dashed; red is the model's alone.
BASELINE_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
                   "tab:gray", "tab:olive", "tab:cyan"]


def lines(series: dict[str, np.ndarray], path: Path, title: str, xlabel: str = "step",
          ylabel: str = "", x: np.ndarray | None = None,
          bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Several named series on one axis. The first is the truth (black, thick); one named
    "model" is drawn last, on top, in red, so no baseline hides it. `x` may hold dates;
    dates outside matplotlib's (years 1 to 9999) are drawn as years on a numeric axis.
    `bands` {name: (lower, upper)} shades an interval around that series, in its colour
    (NaN where it has none)."""
    if x is not None and np.issubdtype(np.asarray(x).dtype, np.datetime64):
        x = _drawable(np.asarray(x))
        xlabel = xlabel if np.issubdtype(x.dtype, np.datetime64) else "year"
    fig, ax = plt.subplots(figsize=(9, 4))
    others = iter(BASELINE_COLORS * len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = np.arange(len(values)) if x is None else x
        if i == 0:
            style = {"color": "black", "linewidth": 2.2, "zorder": 2}
        elif name == "model":
            style = {"color": "tab:red", "linewidth": 2.0, "zorder": 4}
        else:
            style = {"color": next(others), "linewidth": 1.0, "linestyle": "--", "zorder": 3}
        ax.plot(xs, values, label=name, **style)
        if bands and name in bands:
            lower, upper = bands[name]
            ax.fill_between(xs, lower, upper, color=style["color"], alpha=0.2, linewidth=0,
                            zorder=1, label=f"{name}: interval")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if x is not None and np.issubdtype(np.asarray(x).dtype, np.datetime64):
        fig.autofmt_xdate()
    fig.tight_layout()
    save(fig, path)
    return Path(path)


def _drawable(dates: np.ndarray) -> np.ndarray:
    """`dates` as they are where matplotlib can draw them, else as decimal years
    (-6000.5: the middle of the year 6001 BC, counted astronomically)."""
    years = dates.astype("datetime64[Y]")
    if (years >= np.datetime64("0001", "Y")).all() and (years <= np.datetime64("9999", "Y")).all():
        return dates
    start = years.astype("datetime64[s]")
    length = (years + 1).astype("datetime64[s]") - start
    return 1970 + years.astype(np.int64) + (dates.astype("datetime64[s]") - start) / length


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
    save(fig, path)
    return Path(path)
