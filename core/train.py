"""The training loop every task shares, and what it needs: seeding, device and thread
choice, and atomic checkpoints that a run can resume from.

The loop owns the mechanics (epochs, progress bar, clipping, scheduler, early stopping,
checkpoints, Ctrl-C); the task owns its problem: it passes a function that yields
batches, a function that turns a batch into a loss, and a function that scores the model
on validation data.
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.config import UserError


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every GPU) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """`auto` means the best available of cuda, mps, cpu; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA GPU; use --device auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps asked for, but this torch has no Apple MPS; "
                        "use --device auto")
    return torch.device(name)


# Below this many parameters a recurrent step is a handful of tiny matmuls: on an idle
# 2-core machine a second thread barely shortens a task (sin2cos: 9.9 s either way), and
# when the cores are shared with other work two threads run several times slower than
# one. Larger models gain from every core (name_classifier: 79 s on 1 thread, 58 s on 2).
# `make bench` times a small and a larger GRU at 1 and 2 threads.
SMALL_MODEL_PARAMETERS = 200_000


def set_threads(threads: int, model: torch.nn.Module) -> int:
    """Set torch's CPU thread count: `threads`, or for 0 one thread for small models and
    every core for larger ones. Returns the count in force."""
    if threads <= 0:
        parameters = sum(p.numel() for p in model.parameters())
        threads = 1 if parameters < SMALL_MODEL_PARAMETERS else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def shuffled_batches(tensors: tuple[torch.Tensor, ...],
                     batch_size: int) -> list[tuple[torch.Tensor, ...]]:
    """The rows of `tensors` (all of the same length) in mini-batches, in a fresh random
    order drawn from torch's generator (which checkpoints save, so resume redraws it)."""
    order = torch.randperm(len(tensors[0]), device=tensors[0].device)
    return [tuple(t[order[i:i + batch_size]] for t in tensors)
            for i in range(0, len(order), batch_size)]


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename it into place, so an
    interrupted write never leaves a half-written checkpoint under `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `fit`, with a clear message if it is missing or broken."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: train first (or drop --resume)")
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # a truncated or foreign file: say which, not a traceback
        raise UserError(f"cannot read checkpoint {path}: {error}") from error


def require_checkpoints(run_dir: Path) -> None:
    """For --resume of a run kept in per-seed folders: refuse when nothing under `run_dir`
    was saved (most likely a mistyped --run-dir), instead of silently starting afresh."""
    if not any(Path(run_dir).rglob("last.pt")):
        raise UserError(f"no checkpoint under {run_dir}: train first (or drop --resume)")


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# Flags that may change between a run and its --resume: they do not change the result.
RESUMABLE_CHANGES = {"resume", "device", "threads", "run_dir", "dry_run"}


def check_same_config(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume with settings other than the saved run's: the weights, schedule
    and data would no longer match."""
    changed = sorted(k for k in saved.keys() | current.keys()
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise UserError(f"{path} was saved with other settings ({details}); resume with the "
                        "same flags, or start afresh in another --run-dir")


@dataclass
class History:
    """What `fit` returns: one dict per epoch, and the best epoch by the monitored metric."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_value: float = float("nan")
    seconds: float = 0.0


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[], Iterable[Any]],
    loss_fn: Callable[[Any], torch.Tensor],
    validate: Callable[[], dict[str, float]],
    *,
    epochs: int,
    run_dir: Path,
    config: dict[str, Any],
    monitor: str = "loss",
    mode: str = "min",
    patience: int = 0,
    clip_norm: float = 0.0,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    stop: Callable[[dict[str, float]], bool] | None = None,
    resume: bool = False,
    desc: str = "train",
) -> History:
    """Train for up to `epochs` epochs and keep the best model on validation.

    Each epoch: for every batch from `batches()`, `loss_fn(batch)` is minimised (gradients
    clipped to `clip_norm` when > 0); `scheduler` steps after every epoch, or after every
    batch with `scheduler_step="batch"` (as OneCycleLR expects). Then `validate()`
    returns metrics, of which `monitor` picks the best epoch (`mode` "min" or "max").
    The best weights go to `run_dir/best.pt`, the full state (model, optimizer,
    scheduler, epoch, RNG) to `run_dir/last.pt` after every epoch, both written
    atomically. Training ends early after `patience` epochs without improvement
    (0: never) or when `stop(metrics)` is true. With `resume`, training continues from
    `last.pt` exactly where it left off; the config must be the one it was saved with.
    On return the model holds the best weights.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    sign = 1.0 if mode == "min" else -1.0
    history, start = History(), 0
    if not resume:
        best_path.unlink(missing_ok=True)  # never reload the best model of an earlier run
    if resume:
        state = load_checkpoint(last_path)
        check_same_config(state["config"], config, last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History(**state["history"])
        start = state["epoch"] + 1
        _set_rng_state(state["rng"])
        if state.get("stopped"):
            start = epochs

    def save_last(epoch: int, stopped: bool) -> None:
        atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "epoch": epoch, "history": vars(history), "rng": _rng_state(),
                     "config": config, "stopped": stopped}, last_path)

    began = time.perf_counter() - history.seconds
    bar = tqdm(range(start, epochs), desc=desc, initial=start, total=epochs, leave=False,
               disable=None, file=sys.stderr)
    epoch = start - 1
    try:
        for epoch in bar:
            model.train()
            total, count = 0.0, 0
            for batch in batches():
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(batch)
                loss.backward()
                if clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                total, count = total + loss.item(), count + 1
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            model.eval()
            with torch.no_grad():
                metrics = {"epoch": epoch, "train_loss": total / max(count, 1), **validate()}
            history.epochs.append(metrics)
            value = metrics[monitor]
            if not math.isnan(value) and (math.isnan(history.best_value)
                                          or sign * value < sign * history.best_value):
                history.best_epoch, history.best_value = epoch, value
                atomic_save({"model": model.state_dict(), "epoch": epoch, "config": config,
                             monitor: value}, best_path)
            history.seconds = time.perf_counter() - began
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()
                             if k != "epoch" and isinstance(v, float)})
            stopped = (stop is not None and stop(metrics)) or (
                patience > 0 and epoch - history.best_epoch >= patience)
            save_last(epoch, stopped)
            if stopped:
                break
    except KeyboardInterrupt:
        # last.pt still holds the end of the last finished epoch: a consistent state to
        # resume from; the interrupted epoch is simply run again.
        if epoch > start or resume:
            command = " ".join(a for a in sys.orig_argv if a != "--resume")
            print(f"\ninterrupted during epoch {epoch + 1}; {last_path} holds epoch {epoch}. "
                  f"To continue: {command} --resume", file=sys.stderr)
        else:
            print(f"\ninterrupted during epoch {epoch + 1}, before any epoch of this run "
                  "was saved", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        bar.close()
    if history.best_epoch >= 0:
        model.load_state_dict(load_checkpoint(best_path)["model"])
    return history
