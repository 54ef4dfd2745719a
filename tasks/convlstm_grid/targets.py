"""What `make bench` runs convlstm_grid with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "the next 5 frames of moving blobs on a 32x32x2 grid: PredRNN beside a ConvLSTM of "
    "its size", "mse@h5",
    # --cell predrnn: the model is PredRNN; the ConvLSTM trains in the same run on the
    # same batches for as many updates, as the method "convlstm"
    flags=["--cell", "predrnn"],
    targets=[Target("mse@h5", 0.9, "convlstm"),
             *(Target(f"mse@h{h}", 0.35, "persistence", method=method)
               for method in ("model", "convlstm") for h in range(1, 6)),
             Target("mse@h5", 0.5, "zero"),
             Target("train_seconds", 2.5, "convlstm")], seconds=360,
    figure="predictions.png")
