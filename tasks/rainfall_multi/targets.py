"""What `make bench` runs rainfall_multi with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "rainfall 1-3 months ahead from 4 weather variables", "rmse@h1",
    flags=["--seeds", "5"],
    targets=[Target(f"vs_{rival}_hi@h{h}", 1.0) for h in (1, 2, 3)
             for rival in ("climatology", "univariate")], seconds=60,
    figure="test_forecasts_h1.png")
