"""series_impute's report: the verdict per pattern, model.pt, metrics.json,
per_variable.csv and the figures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from core import plots
from core.files import atomic_write_text
from core.report import comparison_table
from core.run import Run, Seeds

from . import choose
from .data import PATTERNS, Data
from .interval import LEVEL
from .model import Imputer, save_model
from .scores import band, errors
from .shrink import as_json
from .table import Table


def print_verdicts(results: dict[str, dict[str, float]], best: dict[str, str]) -> None:
    """Per pattern: the model's interval beside the best baseline's, and their paired
    ratio; "beats" only when the whole interval of the ratio is below 1."""
    for p in PATTERNS:
        key, model = f"mae@{p}", results["model"]
        low, high = model[f"{key}_ratio_ci95_low"], model[f"{key}_ratio_ci95_high"]
        verdict = "beats it" if high < 1 else "loses to it" if low > 1 else "within the noise"
        shown = {m: f"{results[m][key]:.3f} [{results[m][key + '_ci95_low']:.3f}, "
                    f"{results[m][key + '_ci95_high']:.3f}]" for m in ("model", best[p])}
        print(f"{p}: model {shown['model']} vs {best[p]} {shown[best[p]]} (95% intervals); "
              f"model / {best[p]} = {model[key + '_ratio']:.3f} [{low:.4f}, {high:.4f}] "
              f"paired over the draws: {verdict}")


def per_variable_csv(fills: dict[str, list[dict[str, np.ndarray]]], data: Data,
                     offset: dict[str, np.ndarray]) -> str:
    """per_variable.csv: each method's MAE and RMSE per pattern and variable in the data's
    own units, the mean over the test draws (and the hidden entries per draw); the
    seasonal variant says whether the variable got the offset."""
    lines = ["method,pattern,variable,mae,rmse,hidden_entries,seasonal_variant"]
    truth = data.truth("test")
    for method, draws in fills.items():
        for p in PATTERNS:
            scores = [errors(truth, f[p], m[p]) for f, m in zip(draws, data.test_masks,
                                                               strict=True)]
            mae = np.mean([s[0] for s in scores], axis=0) * data.std
            rmse = np.mean([s[1] for s in scores], axis=0) * data.std
            hidden = np.mean([m[p].sum(axis=0) for m in data.test_masks], axis=0)
            for f, name in enumerate(data.table.columns):
                note = ("+offset" if offset[p][f] else "plain") if method == "seasonal" else ""
                lines.append(f"{method},{p},{name},{mae[f]:.6g},{rmse[f]:.6g},"
                             f"{hidden[f]:.4g},{note}")
    return "\n".join(lines) + "\n"


def plot_block(data: Data, fills: dict[str, dict[str, np.ndarray]],
               band: tuple[np.ndarray, np.ndarray], run_dir: Path) -> None:
    """test_block_<variable>.png: a stretch of test rows from just before the first hidden
    block of the first draw, the truth and the fills drawn only where it was hidden; what
    fill writes ("fill") with its interval, `band` (lower, upper) standardised."""
    rows, table, hidden = data.parts["test"], data.table, data.test_masks[0]["block"]
    # in the data's units, only where hidden: {name: (T_test, F)}
    lines = {m: np.where(hidden, filled["block"] * data.std + data.mean, np.nan)
             for m, filled in fills.items()}
    lower, upper = (np.where(hidden, b * data.std + data.mean, np.nan) for b in band)
    for f, name in enumerate(table.columns):
        runs = np.nonzero(hidden[:, f])[0]
        start = max(int(runs[0]) - 20, 0) if len(runs) else 0  # from just before a gap
        shown = np.arange(start, min(start + (len(rows) if table.step.coarse else 180),
                                     len(rows)))
        plots.lines({"truth": table.values[rows[shown], f],
                     **{m: v[shown, f] for m, v in lines.items()}},
                    run_dir / f"test_block_{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png",
                    f"{name}: test rows, block pattern (lines where entries were hidden; "
                    f"fill's {round(100 * LEVEL)}% interval shaded)",
                    xlabel="date", ylabel=name, x=table.dates[rows[shown]],
                    bands={"fill": (lower[shown, f], upper[shown, f])})


def print_intervals(results: dict[str, dict[str, float]], data: Data,
                    banded: list[dict]) -> None:
    """Per pattern, the coverage and width of the interval of what fill writes, of the
    same recipe on the network and on linear interpolation (the naive interval); the
    widths in the variables' own units too."""
    name = f"{round(100 * LEVEL)}"
    print(f"\n{name}% intervals on the hidden test cells (split-conformal, calibrated on "
          "fill's check of the cells each draw leaves seen; interval.py): coverage, and mean "
          "width over the variable's training std (in its units: per variable)")
    for p in PATTERNS:
        for method in choose.BANDED:
            scores, widths = results[method], np.zeros(len(data.std))
            for draw, masks in zip(banded, data.test_masks, strict=True):
                lower, upper = band(*draw[p][method], data.low)
                widths += [(upper - lower)[masks[p][:, f], f].mean()
                           for f in range(len(widths))]
            widths *= data.std / len(banded)
            print(f"{p:<9} {method:<7} coverage {scores[f'coverage{name}@{p}']:.3f}  width "
                  f"{scores[f'width{name}@{p}']:.3f} std  ("
                  + ", ".join(f"{c} {w:.4g}" for c, w in zip(data.table.columns, widths,
                                                             strict=True)) + ")")


def report(cfg: Any, data: Data, run: Run, seeds: Seeds, baselines: dict, fitted: Any,
           best: dict[str, str], draws: dict) -> dict:
    """The model (median over seeds) beside every baseline; model.pt of the seed best on
    validation, with what fill uses; metrics.json, per_variable.csv and the plots."""
    results = {**seeds.test(), **baselines}
    # the naive interval (linear interpolation's) does not depend on the seed
    results["linear"] = {**results["linear"], **seeds.results[0].outputs["naive"]}
    print(f"\ntest MAE, standardised units (error / training std, mean over variables), "
          f"mean and standard deviation over {cfg.mask_draws} mask draws (RMSE too in "
          f"metrics.json), median over {len(run.seeds)} seed(s); training "
          f"{seeds.seconds:.1f} s in all")
    print(comparison_table(results, [f"mae@{p}{s}" for p in PATTERNS for s in ("", "_std")]))
    print_verdicts(results, best)
    shown = seeds.median("mae@block")
    print_intervals(results, data, shown.outputs["banded"])

    chosen = seeds.best_on_validation()  # the seed fill.py uses, with its check's choice
    print("\nwhat fill uses on the validation and test rows, by its own check (MAE in "
          "the data's units):")
    print(choose.table(chosen.outputs["check"], chosen.outputs["chosen"],
                       data.table.columns, data.std))
    imputer = Imputer(data.z.shape[1], cfg.hidden_size, data.extra.shape[1], cfg.impl,
                      cfg.cell)
    imputer.load_state_dict(chosen.outputs["state"])
    save_model(run.dir / "model.pt", imputer, columns=data.table.columns,
               date_columns=data.date_columns, step=data.table.step.label,
               calendar=cfg.calendar, mean=data.mean.tolist(), std=data.std.tolist(),
               median=fitted.median.tolist(), nonnegative=data.nonnegative.tolist(),
               season=[] if data.profile is None else data.profile.tolist(),
               window=cfg.window, fallback=chosen.outputs["fallback"])
    fill_choice_json = choose.as_json(chosen.outputs["check"], chosen.outputs["chosen"],
                                      data.table.columns)
    kept = as_json(data.table.columns, imputer.shrink.numpy(), imputer.toward.numpy())
    run.finish(results, seeds.seconds, extra={"fill_choice": fill_choice_json,
                                              "correction_kept": kept})
    fills = {"model": shown.outputs["filled"], **draws}
    atomic_write_text(run.dir / "per_variable.csv", per_variable_csv(fills, data, fitted.offset))
    fill, half = shown.outputs["banded"][0]["block"]["fill"]
    plot_block(data, {best["block"]: draws[best["block"]][0],
                      "fill": {"block": fill}, "model": shown.outputs["filled"][0]},
               band(fill, half, data.low), run.dir)
    plots.training_curve(shown.history.epochs, run.dir / "training_curve.png",
                         keys=["val_mae"], unit="standardised MAE")
    print(f"wrote {run.dir}/metrics.json, per_variable.csv, model.pt, seed*/best.pt and "
          f"plots; fill a CSV: python -m {__package__}.fill INPUT.csv --output OUT.csv "
          f"--run-dir {run.dir}")
    return results


def plot_filled(table: Table, filled: np.ndarray, answered: np.ndarray,
                bands: tuple[np.ndarray, np.ndarray] | None, path: Path) -> None:
    """fill --plot: one panel per column, the observed values (black), the filled ones
    (red) and their interval (shaded), so a user sees at a glance which stretches are
    guesses and how wide."""
    columns = table.columns
    fig, axes = plots.plt.subplots(len(columns), 1, figsize=(10, 2.6 * len(columns)),
                                   sharex=True, squeeze=False)
    for f, (ax, name) in enumerate(zip(axes[:, 0], columns, strict=True)):
        ax.plot(table.dates, table.values[:, f], color="black", linewidth=1.0,
                label="observed")
        guessed = np.where(answered[:, f], filled[:, f], np.nan)
        ax.plot(table.dates, guessed, color="tab:red", linewidth=1.2, marker=".",
                markersize=3, label="filled")
        if bands is not None:  # shaded over runs of filled cells, a bar at each one
            lower, upper = (np.where(answered[:, f], b[:, f], np.nan) for b in bands)
            ax.fill_between(table.dates, lower, upper, color="tab:red", alpha=0.2,
                            linewidth=0, label="interval")
            at = answered[:, f]
            ax.vlines(table.dates[at], lower[at], upper[at], color="tab:red", alpha=0.5,
                      linewidth=1.0)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    plots.save(fig, path)
