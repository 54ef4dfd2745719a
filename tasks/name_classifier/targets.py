"""What `make bench` runs name_classifier with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "surname -> one of 18 languages", "accuracy", higher_is_better=True,
    flags=["--seeds", "3"],
    targets=[Target("accuracy", 0.87, higher_is_better=True),
             Target("accuracy", 1.0, "best", higher_is_better=True),
             Target("macro_f1", 0.62, higher_is_better=True)],
    seconds=60, per_seed_seconds=True, figure="confusion.png")
