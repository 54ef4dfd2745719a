"""The evidence a run leaves: `runs/<task>/metrics.json` in one shape for every task,
and the console table that puts the model beside its baselines.

    {"task", "seeds", "device", "train_seconds", "config", "versions",
     "test": {METHOD: {METRIC: number}}}

METHOD is "model" or a baseline's name; METRIC a plain name ("rmse", "accuracy"), with
"@h2" for a horizon or step. Over several seeds the number is the median and the
per-seed values sit beside it as "<metric>_seeds".
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import torch

from core.files import atomic_write_text


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that produce the numbers."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__,
            "matplotlib": matplotlib.__version__}


def median_over_seeds(per_seed: list[dict[str, float]]) -> dict[str, Any]:
    """[{metric: value} per seed] -> {metric: median, metric_seeds: [values]}.

    With one seed the value is reported as it is, without a `_seeds` list."""
    if len(per_seed) == 1:
        return dict(per_seed[0])
    merged: dict[str, Any] = {}
    for name in per_seed[0]:
        values = [float(run[name]) for run in per_seed]
        merged[name] = statistics.median(values)
        merged[f"{name}_seeds"] = values
    return merged


def _finite_or_none(value: Any, where: str, dropped: list[str]) -> Any:
    """JSON has no NaN or infinity (standard parsers reject Python's bare NaN): write null
    and remember where."""
    if isinstance(value, float) and not math.isfinite(value):
        dropped.append(f"{where}={value}")
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v, f"{where}.{k}", dropped) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v, f"{where}[{i}]", dropped) for i, v in enumerate(value)]
    return value


def write_metrics(run_dir: Path, *, task: str, seeds: list[int], device: str,
                  train_seconds: float, config: dict[str, Any],
                  test: dict[str, dict[str, Any]], world_size: int = 1,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write metrics.json atomically and return its path. A number that is not finite
    becomes null, and the run says which. `world_size`: the processes that trained;
    `extra`: further findings of the task, written beside the rest."""
    if "model" not in test:
        raise ValueError("test metrics need a 'model' entry beside the baselines")
    dropped: list[str] = []
    payload = {"task": task, "seeds": seeds, "device": device, "world_size": world_size,
               "train_seconds": round(train_seconds, 3), "config": config,
               "versions": versions(), "test": _finite_or_none(test, "test", dropped),
               **(extra or {})}
    path = Path(run_dir) / "metrics.json"
    atomic_write_text(path, json.dumps(payload, indent=2))
    if dropped:
        print(f"note: {path} holds null for values that are not finite numbers: "
              + ", ".join(dropped))
    return path


def comparison_table(test: dict[str, dict[str, Any]], metrics: list[str]) -> str:
    """A plain-text table: one row per method, one column per metric (no `_seeds`)."""
    width = max(len(m) for m in test)
    columns = max(14, *(len(m) + 2 for m in metrics))
    lines = [" " * width + "".join(f"{m:>{columns}}" for m in metrics)]
    for method, scores in test.items():
        cells = "".join(f"{scores[m]:>{columns}.6g}" if scores.get(m) is not None
                        else f"{'-':>{columns}}" for m in metrics)
        lines.append(f"{method:<{width}}" + cells)
    return "\n".join(lines)
