"""What `make bench` runs rainfall_uni with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "next month's rainfall (walk-forward over the last 50 months)", "rmse",
    flags=["--seeds", "5"],
    # "beats climatology" rests on the 95% interval of model / climatology over the
    # test months (paired bootstrap), not on one number
    targets=[Target("rmse", 140), Target("vs_climatology_hi", 1.0),
             Target("mae", 1.0, "climatology")], seconds=30,
    figure="test_forecasts.png")
