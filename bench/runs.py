"""Running a task as the bench does: each variant of its spec as a user would run it,
into runs/bench/<task>/, the record for results/, and the headline figure for the
gallery."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image

from core.targets import TaskSpec

from . import results
from .results import ROOT, provenance

FIGURE_BYTES = 150_000  # a gallery picture stays under this size
FIGURE_WIDTH = 800  # pixels; wider pictures are shrunk by averaging blocks of pixels


def bench_task(task: str, spec: TaskSpec, out: Path, device: str) -> dict:
    """Run the task's variants as a user would; return the record for results/."""
    extra = []
    for flag, file in spec.optional_files.items():
        if (ROOT / file).is_file():
            extra += [flag, file]
        else:
            print(f"  {flag} left out: no {file} (bench the task that writes it first)")
    runs, folders = [], []
    for variant in spec.variants:
        # one folder per variant, named by its flags' values: runs/bench/<task>/cell-hello-ohlol
        values = [v.lstrip("-") for v, after in zip(variant, [*variant[1:], "--"][:len(variant)],
                                                    strict=True)
                  if not v.startswith("--") or after.startswith("--")]  # a lone flag: its name
        run_dir = out / "-".join(values) if variant else out
        args = [*spec.flags, *variant, *extra, "--device", device]
        command = [sys.executable, "-m", f"tasks.{task}.train", "--run-dir",
                   str(run_dir.relative_to(ROOT)), "--overwrite", *args]
        shown = "python " + " ".join(command[1:])
        print(f"$ {shown}", flush=True)
        folders.append(run_dir)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        runs.append({"command": shown, "wall_seconds": round(wall, 1),
                     "metrics": json.loads((run_dir / "metrics.json").read_text())})
    if spec.figure:
        copy_figure(task, folders[0], spec.figure)
    wall = sum(run["wall_seconds"] for run in runs)
    command = "python -m bench --only " + task + (f" --device {device}" if device != "cpu"
                                                   else "")
    return {"task": task, **provenance(command, wall, device), "runs": runs}


def copy_figure(task: str, run_dir: Path, pattern: str) -> None:
    """The run's headline PNG, downscaled by averaging blocks of pixels until it is at
    most FIGURE_WIDTH wide and under FIGURE_BYTES, to docs/figures/<task>.png."""
    found = sorted(run_dir.glob(pattern))
    if not found:
        print(f"  no figure {pattern} in {run_dir}: docs/figures/{task}.png left as it is")
        return
    image = matplotlib.image.imread(found[0])[..., :3]  # (H, W, RGB) floats; alpha dropped
    results.FIGURES.mkdir(parents=True, exist_ok=True)
    path = results.FIGURES / f"{task}.png"
    factor = max(1, math.ceil(image.shape[1] / FIGURE_WIDTH))
    while True:
        h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
        small = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3)
        matplotlib.image.imsave(path, small.mean(axis=(1, 3)).clip(0, 1))
        if path.stat().st_size < FIGURE_BYTES:
            break
        factor += 1
    print(f"  wrote docs/figures/{path.name} from {found[0].name} "
          f"({path.stat().st_size // 1000} kB)")

