"""What `make bench` runs sin2cos with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "a window of sin(t) -> cos(t) at every step", "mse_after_first",
    exclude=("linear_2lag",),  # the exact 2-lag formula: a ceiling, not a rival
    targets=[Target("mse_after_first", 1e-4)], seconds=10,
    figure="test_window_0.png")
