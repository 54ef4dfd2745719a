"""What `make bench` runs series_impute with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "the hidden entries of a 4-variable daily weather series", "mae@block",
    # the upper end of the 95% interval of model / best baseline, paired over the mask
    # draws: a target is met only when the whole interval is under it
    targets=[Target("mae@points10_ratio_ci95_high", 1.0),
             Target("mae@points50_ratio_ci95_high", 1.0),
             Target("mae@block_ratio_ci95_high", 0.85)], seconds=180,
    figure="test_block_temp_max.png")
