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
from .model import Imputer, save_model
from .scores import errors


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


def plot_block(data: Data, fills: dict[str, dict[str, np.ndarray]], run_dir: Path) -> None:
    """test_block_<variable>.png: a stretch of test rows from just before the first hidden
    block of the first draw, the truth and the fills drawn only where it was hidden."""
    rows, table = data.parts["test"], data.table
    for f, name in enumerate(table.columns):
        hidden = data.test_masks[0]["block"][:, f]
        runs = np.nonzero(hidden)[0]
        start = max(int(runs[0]) - 20, 0) if len(runs) else 0  # from just before a gap
        shown = rows[start:start + (len(rows) if table.step.coarse else 180)]
        lines = {m: np.where(hidden, filled["block"][:, f] * data.std[f] + data.mean[f],
                             np.nan)[shown - rows[0]] for m, filled in fills.items()}
        plots.lines({"truth": table.values[shown, f], **lines},
                    run_dir / f"test_block_{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png",
                    f"{name}: test rows, block pattern (lines where entries were hidden)",
                    xlabel="date", ylabel=name, x=table.dates[shown])


def report(cfg: Any, data: Data, run: Run, seeds: Seeds, baselines: dict, fitted: Any,
           best: dict[str, str], draws: dict) -> dict:
    """The model (median over seeds) beside every baseline; model.pt of the seed best on
    validation, with what fill uses; metrics.json, per_variable.csv and the plots."""
    results = {**seeds.test(), **baselines}
    print(f"\ntest MAE, standardised units (error / training std, mean over variables), "
          f"mean and standard deviation over {cfg.mask_draws} mask draws (RMSE too in "
          f"metrics.json), median over {len(run.seeds)} seed(s); training "
          f"{seeds.seconds:.1f} s in all")
    print(comparison_table(results, [f"mae@{p}{s}" for p in PATTERNS for s in ("", "_std")]))
    print_verdicts(results, best)

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
    run.finish(results, seeds.seconds, extra={"fill_choice": fill_choice_json})
    shown = seeds.median("mae@block")
    fills = {"model": shown.outputs["filled"], **draws}
    atomic_write_text(run.dir / "per_variable.csv", per_variable_csv(fills, data, fitted.offset))
    plot_block(data, {best["block"]: draws[best["block"]][0],
                      "model": shown.outputs["filled"][0]}, run.dir)
    plots.training_curve(shown.history.epochs, run.dir / "training_curve.png",
                         keys=["val_mae"], unit="standardised MAE")
    print(f"wrote {run.dir}/metrics.json, per_variable.csv, model.pt, seed*/best.pt and "
          f"plots; fill a CSV: python -m {__package__}.fill INPUT.csv --output OUT.csv "
          f"--run-dir {run.dir}")
    return results
