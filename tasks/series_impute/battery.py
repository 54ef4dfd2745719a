"""A battery of real series for series_impute, beside the Seattle weather it was built on:
each is trained and scored as a new user would run it (`train --dataset NAME` reads the
CSV a user would give --csv, with the defaults; datasets.py makes five of them), and the
table gives, per series and pattern, the model's MAE over the best baseline's with its
95% interval, paired over the mask draws (mae@P_ratio in metrics.json), and the same for
what fill would write ("fill": linear, or the method that beat it beyond the noise of
fill's own check of the rows the network never trained on, per variable and gap kind;
choose.py), with the coverage and width of its 90% interval (interval.py).

    seattle    daily weather, 4 columns (the default dataset)
    co2        weekly CO2 at Mauna Loa 1958-2001, 59 real gaps (statsmodels.datasets.co2):
               a trend the training rows never reach
    rainfall   monthly weather, 4 columns (--dataset rainfall)
    sunspots   yearly sunspot numbers 1700-2008 (statsmodels.datasets.sunspots): no season
    synthetic  daily, 3 columns: trend, a yearly season, noise, and a level shift in the
               test part (seeded)
    seattle_irregular, co2_irregular
               the Seattle weather and the weekly CO2 made irregular (irregular.py,
               seeded): about 40% of the rows gone, a few long outages, each reading at
               its own time off any grid; each with --cell auto (grui)
    elec_equip monthly electrical equipment orders 2005-2014, 120 rows (statsmodels):
               a short seasonal file, cut as data.sizes says
    business   3 prices on business days, with holidays and empty cells (seeded)

    python -m tasks.series_impute.battery                     # every series, the defaults
    python -m tasks.series_impute.battery --only co2 sunspots -- --epochs 5
    python -m tasks.series_impute.battery -- --dry-run        # a quick look

Flags after `--` go to every training run. `make bench` runs the same series (the
task's targets.py) and docs/tasks.md shows their table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.config import OneLineParser, run_main

from .data import PATTERNS
from .targets import SERIES  # the --dataset names, which the bench runs too


def battery_runs(only: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(name, train arguments) per series."""
    return [(name, ["--dataset", name]) for name in SERIES if not only or name in only]


def ratios(metrics: dict) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{method ("model", "fill"): {pattern: (ratio, low, high)}} from a metrics.json."""
    out = {}
    for method in ("model", "fill"):
        scores = metrics["test"].get(method, {})
        out[method] = {p: tuple(scores.get(f"mae@{p}_ratio{s}", float("nan"))
                                for s in ("", "_ci95_low", "_ci95_high")) for p in PATTERNS}
    return out


def best_baselines(metrics: dict) -> dict[str, str]:
    methods = {m: s for m, s in metrics["test"].items() if m not in ("model", "fill")}
    return {p: min(methods, key=lambda m: methods[m][f"mae@{p}"]) for p in PATTERNS}


def table(results: dict[str, dict]) -> str:
    """One line per series and pattern: the best baseline, model / it and fill / it, each
    with its paired 95% interval."""
    lines = [f"{'series':<10} {'pattern':<9} {'best baseline':<14} "
             f"{'model / best [95%]':<26} {'fill / best [95%]':<26}"]
    for name, metrics in results.items():
        best, found = best_baselines(metrics), ratios(metrics)
        for p in PATTERNS:
            cells = [f"{r:.3f} [{lo:.3f}, {hi:.3f}]" for r, lo, hi in
                     (found["model"][p], found["fill"][p])]
            lines.append(f"{name:<10} {p:<9} {best[p]:<14} {cells[0]:<26} {cells[1]:<26}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = OneLineParser(prog=f"python -m {__package__}.battery",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SERIES), default=None,
                        help="run only these series")
    parser.add_argument("--root", default="runs/series_impute_battery",
                        help="folder for the series' run folders")
    args = parser.parse_args(own)
    from .train import main as train  # the training story, run once per series

    root = Path(args.root)
    results = {}
    for name, train_argv in battery_runs(args.only):
        print(f"\n==== {name}: train {' '.join(train_argv + extra)}")
        run_dir = root / name
        train([*train_argv, "--run-dir", str(run_dir), "--overwrite", *extra])
        results[name] = json.loads((run_dir / "metrics.json").read_text())
    print("\nper series and pattern, MAE over the best baseline's, paired over the mask "
          "draws (under 1: better):")
    print(table(results))
    return results


if __name__ == "__main__":
    run_main(main)
