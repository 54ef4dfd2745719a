"""Two trained runs of series_impute on the same series, compared paired draw by draw: the
MAE of run A's imputer over run B's, on the same test masks, with its 95% interval (as
train.py pairs the model with the best baseline). Made for --cell: GRUI's decay against
the same network with the gaps as plain inputs and no decay.

    python -m tasks.series_impute.train --dataset co2_irregular --cell grui --run-dir runs/a
    python -m tasks.series_impute.train --dataset co2_irregular --cell gru --run-dir runs/b
    python -m tasks.series_impute.versus runs/a runs/b

Each run's model.pt (its best seed on validation) imputes the test rows again under every
mask draw; the series and its masks are rebuilt from the runs' metrics.json, which must
agree on them (dataset or CSV, columns, window, calendar, mask seed and draws).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.config import OneLineParser, UserError, run_main

from .data import PATTERNS, Data, load, prepare
from .model import Imputer, impute, load_model
from .scores import draw_scores, paired_ratios

# what decides the series and its masks: the two runs must agree on each
SAME = ("dataset", "csv", "columns", "date_columns", "window", "calendar", "mask_seed",
        "mask_draws")


def run_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise UserError(f"no metrics.json in {run_dir}: give the folder of a finished run")
    return json.loads(path.read_text())["config"]


def test_fills(imputer: Imputer, data: Data, window: int) -> list[dict[str, np.ndarray]]:
    """The imputer's fills of the test rows, {pattern: (T, F)} per mask draw."""
    rows = data.parts["test"]
    seen = np.stack([data.observed[rows] & ~m[p] for m in data.test_masks for p in PATTERNS])
    copies = lambda a: np.stack([a[rows]] * len(seen))  # noqa: E731
    filled = impute(imputer, copies(data.z), seen, copies(data.extra), copies(data.season),
                    data.low, window, copies(data.times))
    return [dict(zip(PATTERNS, filled[3 * i:3 * i + 3], strict=True))
            for i in range(len(data.test_masks))]


def compare(first: Path, second: Path) -> dict[str, float]:
    """{"mae@p_ratio", _ci95_low, _ci95_high}: run `first`'s MAE over `second`'s, paired."""
    configs = [run_config(first), run_config(second)]
    differ = [k for k in SAME if configs[0].get(k) != configs[1].get(k)]
    if differ:
        raise UserError(f"{first} and {second} differ in {', '.join(differ)}: they are not "
                        "scored on the same series and masks")
    cfg = configs[0]
    data = prepare(*load(cfg["dataset"], cfg["csv"], cfg["columns"], cfg["date_columns"]),
                   cfg["window"], cfg["calendar"], cfg["mask_seed"], cfg["mask_draws"])
    fills = []
    for run_dir, config in zip((first, second), configs, strict=True):
        imputer, _ = load_model(Path(run_dir) / "model.pt",
                                f"python -m {__package__}.train --run-dir {run_dir}")
        fills.append(test_fills(imputer, data, config["window"]))
        scores = draw_scores(data.truth("test"), fills[-1], data.test_masks)
        print(f"{run_dir} (--cell {config.get('cell', 'brits')}): " + ", ".join(
            f"mae@{p} {scores[f'mae@{p}']:.4f}" for p in PATTERNS))
    return paired_ratios(fills[0], dict.fromkeys(PATTERNS, "second"), {"second": fills[1]},
                         data.truth("test"), data.test_masks)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = OneLineParser(prog=f"python -m {__package__}.versus",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="run folder A (its model.pt and metrics.json)")
    parser.add_argument("second", help="run folder B, on the same series and masks")
    args = parser.parse_args(argv)
    ratios = compare(Path(args.first), Path(args.second))
    for p in PATTERNS:
        key = f"mae@{p}_ratio"
        print(f"{p}: A / B = {ratios[key]:.3f} [{ratios[key + '_ci95_low']:.3f}, "
              f"{ratios[key + '_ci95_high']:.3f}] paired over the mask draws")
    return ratios


if __name__ == "__main__":
    run_main(main)
