"""The training loop every task shares, and what it needs: seeding, device and thread
choice, and atomic checkpoints that a run can resume from.

The loop owns the mechanics (epochs, progress bar, clipping, scheduler, early stopping,
checkpoints, history.csv, Ctrl-C); the task owns its problem: it passes its batches, its
`step` (what one batch does to the model) and a function that scores the model on
validation data. One training step, as `train_epoch` runs it:

    loss, carried = step(model, batch, carried)   # the task's; carried starts as None
    optimizer.zero_grad(); loss.backward()        # each epoch, and is what the task
    clip_grad_norm_(model.parameters(), clip_norm); optimizer.step()   # hands on

`carried` is whatever the task passes from one batch to the next (sin2cos --stateful
carries the detached hidden state of a long wave); a task that carries nothing returns
None. A task calls the loop through `Run.fit`, which fills in the run's folder and flags.

`fit` reads in three parts: `restore` (a fresh start, a resumed run, or --eval-only),
`train_epoch` (one pass over the batches), and the checkpoints saved after each epoch.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core import distributed
from core.config import UserError
from core.files import atomic_write, atomic_write_text

Batch = tuple[torch.Tensor, ...]


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
# 2-core machine a second thread barely shortens a task, and when the cores are shared
# with other work two threads run several times slower than one. Larger models gain from
# every core. `make bench` times a small and a larger GRU at 1 and 2 threads.
SMALL_MODEL_PARAMETERS = 200_000


def set_threads(threads: int, model: torch.nn.Module) -> int:
    """Set torch's CPU thread count: `threads`, or for 0 one thread for small models and
    every core for larger ones. Returns the count in force."""
    if threads <= 0:
        parameters = sum(p.numel() for p in model.parameters())
        threads = 1 if parameters < SMALL_MODEL_PARAMETERS else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def shuffled_batches(tensors: Batch, batch_size: int) -> list[Batch]:
    """The rows of `tensors` (all of the same length) in mini-batches, in a fresh random
    order drawn from torch's generator (which checkpoints save, so resume redraws it)."""
    order = torch.randperm(len(tensors[0])).to(tensors[0].device)
    return [tuple(t[order[i:i + batch_size]] for t in tensors)
            for i in range(0, len(order), batch_size)]


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename it into place. It
    writes through a Python file, so a full disk is the OSError it is."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
    atomic_write(path, write)


LAST_KEYS = ("model", "optimizer", "rng", "history", "config")  # what last.pt must hold


def load_checkpoint(path: Path, device: torch.device | str = "cpu",
                    keys: Sequence[str] = ("model",)) -> dict[str, Any]:
    """Load a checkpoint written by `fit` and check that it holds `keys`, with one clear
    message if it is missing, unreadable, broken or something else."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: train first (or drop --resume/--eval-only)")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except PermissionError:
        raise UserError(f"cannot read checkpoint {path}: permission denied (see its "
                        "owner and mode)") from None
    except Exception as error:  # a truncated or foreign file: say which, not a traceback
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise UserError(f"cannot read checkpoint {path}: {reason}") from None
    missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise UserError(f"{path} is not a checkpoint of this project's training loop "
                        f"(it lacks {', '.join(missing)}); train afresh with another "
                        "--run-dir")
    return state


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
RESUMABLE_CHANGES = {"resume", "overwrite", "eval_only", "device", "threads", "run_dir",
                     "dry_run", "preflight"}


def _brief(value: Any, limit: int = 30) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_same_config(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume with settings other than the saved run's: the weights, schedule
    and data would no longer match. Raising `epochs` is allowed: it trains longer."""
    changed = sorted(k for k in saved.keys() | current.keys()
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
                     and not (k == "epochs" and current.get(k, 0) > saved.get(k, 0)))
    if changed:
        details = ", ".join(f"{k}: {_brief(saved.get(k))} -> {_brief(current.get(k))}"
                            for k in changed[:4])
        if len(changed) > 4:
            details += f" and {len(changed) - 4} more"
        raise UserError(f"{path} was saved with other settings ({details}); resume with the "
                        "same flags (only --epochs may grow), or start afresh with "
                        "--overwrite or another --run-dir")


@dataclass
class History:
    """What `fit` returns: one dict per epoch, and the best epoch by the monitored metric."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_value: float = float("nan")
    seconds: float = 0.0
    stopped: bool = False  # early stopping (or `stop`) ended the run before `epochs`
    mode: str = "min"  # whether the monitored metric is best low ("min") or high ("max")


def write_history_csv(history: History, path: Path) -> None:
    """history.csv: one row per epoch (epoch, train loss, validation metrics, seconds, lr),
    readable without a terminal while a long run goes on."""
    out = io.StringIO()
    columns = list(dict.fromkeys(k for e in history.epochs for k in e))
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(history.epochs)
    atomic_write_text(path, out.getvalue())


def restore(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, config: dict[str, Any], epochs: int | None,
            task: str = "") -> History:
    """Load last.pt into the model, optimizer, scheduler and random generators and return
    the history so far. `epochs` None: only to evaluate, so the epoch count is not checked."""
    last_path = run_dir / "last.pt"
    state = load_checkpoint(last_path, keys=LAST_KEYS)
    if task and state.get("task", task) != task:
        raise UserError(f"{last_path} is a checkpoint of the task {state['task']}, not "
                        f"{task}: give --run-dir a folder of {task}'s runs")
    saved_epochs = state["config"].get("epochs")
    check_same_config(state["config"], {**config, "epochs": epochs or saved_epochs}, last_path)
    if epochs and saved_epochs and epochs > saved_epochs and scheduler is not None:
        raise UserError(f"{last_path}: this task's learning-rate schedule was laid out for "
                        f"--epochs {saved_epochs}, so the run cannot be extended to {epochs}; "
                        "start afresh with --overwrite")
    saved_world = state.get("world_size", 1)
    if epochs is not None and saved_world != distributed.world_size():
        raise UserError(f"{last_path} was trained by {saved_world} process(es); resume it "
                        f"with the same number, not {distributed.world_size()}")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"{last_path} does not fit this model ({str(error).splitlines()[0]}"
                        "); train afresh with another --run-dir") from None
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    history = History(**state["history"])
    if epochs and saved_epochs and epochs > saved_epochs:
        history.stopped = False  # more epochs asked for: train on
    return history


Step = Callable[[torch.nn.Module, Batch, Any], tuple[torch.Tensor, Any]]


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[Batch], step: Step, clip_norm: float, scheduler: Any,
                scheduler_step: str, epoch: int) -> float:
    """One pass over `batches`; returns the mean training loss (of this process's rows,
    under torchrun). A loss that is not finite ends the run: the weights are already
    ruined."""
    model.train()
    total, count = 0.0, 0
    carried = None  # what the task's step hands from one batch to the next
    for batch in batches:
        part, weight = distributed.shard(batch)
        optimizer.zero_grad(set_to_none=True)
        loss, carried = step(model, part, carried)
        value = loss.item()
        if not math.isfinite(value):
            raise UserError(f"training diverged in epoch {epoch + 1}: the loss became {value}; "
                            "try a lower --lr (last.pt still holds the epoch before)")
        (loss * weight if weight != 1.0 else loss).backward()
        if clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        if scheduler is not None and scheduler_step == "batch":
            scheduler.step()
        total, count = total + value, count + 1
    if scheduler is not None and scheduler_step == "epoch":
        scheduler.step()
    return total / max(count, 1)


def _resume_hint(epoch: int, start: int, resumed: bool, last_path: Path,
                 run_dir: Path | None) -> str:
    if epoch > start or resumed:
        command = " ".join(a for a in sys.orig_argv
                           if a not in ("--resume", "--overwrite"))
        if run_dir is not None and "--run-dir" not in sys.orig_argv:
            command += f" --run-dir {run_dir}"
        return (f"interrupted during epoch {epoch + 1}; {last_path} holds epoch {epoch}. "
                f"To continue: {command} --resume")
    return f"interrupted during epoch {epoch + 1}, before any epoch of this run was saved"


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[Batch] | Callable[[], Iterable[Batch]],
    step: Step,
    validate: Callable[[torch.nn.Module], dict[str, float]],
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
    eval_only: bool = False,
    desc: str = "train",
    task: str = "",
    resume_dir: Path | None = None,
) -> History:
    """Train for up to `epochs` epochs and keep the best model on validation.

    `batches` is a list of batches used as it is every epoch (a full-batch task passes
    `[batch]`), or a function called once per epoch for a fresh set (shuffled, or drawn
    anew). Each batch is a tuple of tensors; `step(model, batch, carried)` returns the loss
    to minimise and what to carry to the next batch (gradients clipped to `clip_norm` when
    > 0); `scheduler` steps after every epoch, or
    after every batch with `scheduler_step="batch"` (as OneCycleLR expects). Then
    `validate(model)` returns metrics, of which `monitor` picks the best epoch (`mode`
    "min" or "max").

    The best weights go to `run_dir/best.pt`, the full state (model, optimizer,
    scheduler, epoch, RNG) to `run_dir/last.pt` and the metrics to `run_dir/history.csv`
    after every epoch, all written atomically. Training ends early after `patience`
    epochs without improvement (0: never) or when `stop(metrics)` is true. With `resume`,
    training continues from `last.pt` exactly where it left off; with `eval_only` nothing
    is trained. `task` is saved in last.pt, so another task's folder is refused by name;
    `resume_dir` goes into the command that Ctrl-C prints. On return the model holds the
    best weights.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    sign = 1.0 if mode == "min" else -1.0
    history = History(mode=mode)
    if resume or eval_only:
        history = restore(run_dir, model, optimizer, scheduler, config,
                          None if eval_only else epochs, task)
    start = len(history.epochs)
    end = start if eval_only or history.stopped else epochs

    main = distributed.is_main()  # under torchrun, process 0 alone reports and writes
    trained = distributed.wrap(model)
    began = time.perf_counter() - history.seconds
    bar = tqdm(range(start, end), desc=desc, initial=start, total=max(end, start),
               leave=False, disable=None if main else True, file=sys.stderr)
    log_lines = main and not sys.stderr.isatty()  # nohup, CI: a line per epoch, not a bar
    epoch = start - 1
    try:
        for epoch in bar:
            loss = train_epoch(trained, optimizer, batches() if callable(batches) else batches,
                               step, clip_norm, scheduler, scheduler_step, epoch)
            model.eval()
            with torch.no_grad():
                metrics = {"epoch": epoch, "train_loss": loss, **validate(model)}
            history.seconds = time.perf_counter() - began
            metrics |= {"seconds": round(history.seconds, 3),
                        "lr": optimizer.param_groups[0]["lr"]}
            history.epochs.append(metrics)
            value = metrics[monitor]
            if math.isfinite(value) and (math.isnan(history.best_value)
                                         or sign * value < sign * history.best_value):
                history.best_epoch, history.best_value = epoch, value
                if main:
                    atomic_save({"model": model.state_dict(), "epoch": epoch,
                                 "config": config, monitor: value}, best_path)
            shown = {k: f"{v:.4g}" for k, v in metrics.items()
                     if k not in ("epoch", "seconds", "lr") and isinstance(v, float)}
            bar.set_postfix(shown)
            if log_lines:
                print(f"{desc} epoch {epoch + 1}/{end}: "
                      + ", ".join(f"{k} {v}" for k, v in shown.items()), flush=True)
            history.stopped = (stop is not None and stop(metrics)) or (
                patience > 0 and epoch - history.best_epoch >= patience)
            if main:
                atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict() if scheduler else None,
                             "epoch": epoch, "history": asdict(history), "rng": _rng_state(),
                             "config": config, "world_size": distributed.world_size(),
                             "task": task},
                            last_path)
                write_history_csv(history, run_dir / "history.csv")
            if history.stopped:
                break
    except KeyboardInterrupt:
        # last.pt still holds the end of the last finished epoch: a consistent state to
        # resume from; the interrupted epoch is simply run again.
        if main:
            print("\n" + _resume_hint(epoch, start, resume, last_path, resume_dir),
                  file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        bar.close()
    if history.best_epoch < 0:
        raise UserError(f"no epoch of {desc} gave a finite validation {monitor}; nothing to "
                        "evaluate")
    distributed.barrier()  # process 0 has written best.pt
    model.load_state_dict(load_checkpoint(best_path)["model"])
    return history
