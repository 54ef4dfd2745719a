"""The parts of a training loop that every task's own loop calls: seeding, device and
thread choice, `train_epoch` (one pass over the batches) and `Checkpoint` (best.pt,
last.pt, history.csv, resume and early stopping). The loop itself is the task's, where a
reader sees it:

    checkpoint = run.checkpoint(seed, monitor="val_loss", model=model, optimizer=optimizer)
    for epoch in checkpoint.epochs(cfg.epochs):
        loss = train_epoch(trained, optimizer, batches(), step, cfg.clip_norm)
        scheduler.step()
        checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
        if checkpoint.stopped:
            break
    history = checkpoint.load_best()

Nothing here calls the task back but `step`, the loss of one batch.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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


LAST_KEYS = ("model", "states", "rng", "history", "config")  # what last.pt must hold


def load_checkpoint(path: Path, device: torch.device | str = "cpu",
                    keys: Sequence[str] = ("model",)) -> dict[str, Any]:
    """Load a checkpoint that `Checkpoint.save` wrote (best.pt, last.pt) and check that it
    holds `keys`, with one clear message if it is missing, unreadable, broken or something
    else."""
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
    """What a Checkpoint records: one dict per epoch, and the best epoch by the monitored
    metric."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_value: float = float("nan")
    seconds: float = 0.0
    stopped: bool = False  # early stopping (or save's `stop`) ended training
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


Step = Callable[[torch.nn.Module, Batch, Any], tuple[torch.Tensor, Any]]


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[Batch], step: Step, clip_norm: float = 0.0,
                scheduler: Any = None) -> float:
    """One pass over `batches`; returns the mean training loss (of this process's rows,
    under torchrun). For each batch:

        loss, carried = step(model, batch, carried)   # the task's; carried starts as None
        optimizer.zero_grad(); loss.backward()
        clip_grad_norm_(model.parameters(), clip_norm)   # when clip_norm > 0
        optimizer.step(); scheduler.step()               # a per-batch schedule, if given

    `carried` is whatever the task hands from one batch to the next (sin2cos --stateful
    carries the detached hidden state of a long wave); a task that carries nothing returns
    None. Under torchrun `model` is the DistributedDataParallel wrapper and each process
    takes its own rows of every batch (core.distributed.shard). A loss that is not finite
    ends the run: the weights are already ruined."""
    model.train()
    total, count = 0.0, 0
    carried = None
    for batch in batches:
        part, weight = distributed.shard(batch)
        optimizer.zero_grad(set_to_none=True)
        loss, carried = step(model, part, carried)
        value = loss.item()
        if not math.isfinite(value):
            raise UserError(f"training diverged: the loss became {value}; try a lower --lr "
                            "(last.pt still holds the epoch before)")
        (loss * weight if weight != 1.0 else loss).backward()
        if clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total, count = total + value, count + 1
    return total / max(count, 1)


class Checkpoint:
    """The files of one network's training in one folder, for the epoch loop a task
    writes itself:

        checkpoint = Checkpoint(folder, {"model": model, "optimizer": optimizer}, config)
        for epoch in checkpoint.epochs(count):     # from where last.pt left off
            loss = train_epoch(model, optimizer, batches, step)
            checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
            if checkpoint.stopped:                 # `patience` epochs without a better score
                break
        history = checkpoint.load_best()           # the best weights on validation

    `state` names everything a resume must restore, each with state_dict() and
    load_state_dict(): "model" (whose weights best.pt keeps), "optimizer", and any
    scheduler, second network or second optimizer. After every epoch `save` writes, each
    atomically: best.pt when the `monitor` metric is better (`mode` "min" or "max"),
    last.pt (every state, the random generators, the history and `config`) and
    history.csv. `config` holds the run's flags: with its "resume" true and a last.pt in
    the folder, the constructor restores all of it (the flags must match, but for
    --epochs growing); with "eval_only", it restores and `epochs` yields nothing. `task`
    is saved in last.pt, so another task's folder is refused by name; `label` heads the
    progress bar and the line per epoch. Under torchrun process 0 alone writes.
    """

    def __init__(self, folder: Path, state: dict[str, Any], config: dict[str, Any], *,
                 task: str = "", label: str = "train", monitor: str = "loss",
                 mode: str = "min", patience: int = 0) -> None:
        self.folder, self.state, self.config, self.task = Path(folder), state, config, task
        self.label, self.monitor, self.patience = label, monitor, patience
        self.history = History(mode=mode)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._bar: Any = None
        self._began = time.perf_counter()
        self._rng = _rng_state()  # where this network's training stands: made now, or
        # as last.pt left it once restored
        if config.get("eval_only") or (config.get("resume")
                                       and (self.folder / "last.pt").exists()):
            self._restore()

    @property
    def stopped(self) -> bool:
        """True once training should end: `patience` (> 0) epochs without a better
        validation score, or `save(..., stop=True)`."""
        return self.history.stopped

    def _restore(self) -> None:
        """Load last.pt into every state and the random generators, and the history."""
        last_path = self.folder / "last.pt"
        saved = load_checkpoint(last_path, keys=LAST_KEYS)
        if self.task and saved.get("task", self.task) != self.task:
            raise UserError(f"{last_path} is a checkpoint of the task {saved['task']}, not "
                            f"{self.task}: give --run-dir a folder of {self.task}'s runs")
        evaluate = bool(self.config.get("eval_only"))
        epochs, saved_epochs = self.config.get("epochs"), saved["config"].get("epochs")
        check_same_config(saved["config"], {**self.config, "epochs": saved_epochs
                                            if evaluate else epochs}, last_path)
        growing = not evaluate and epochs and saved_epochs and epochs > saved_epochs
        if growing and saved.get("states", {}).get("scheduler") is not None:
            raise UserError(f"{last_path}: this task's learning-rate schedule was laid out "
                            f"for --epochs {saved_epochs}, so the run cannot be extended to "
                            f"{epochs}; start afresh with --overwrite")
        saved_world = saved.get("world_size", 1)
        if not evaluate and saved_world != distributed.world_size():
            raise UserError(f"{last_path} was trained by {saved_world} process(es); resume "
                            f"it with the same number, not {distributed.world_size()}")
        try:
            for name, thing in self.state.items():
                if name == "model":
                    thing.load_state_dict(saved["model"])
                elif thing is not None:
                    thing.load_state_dict(saved["states"][name])
        except (RuntimeError, ValueError, KeyError) as error:
            reason = str(error).splitlines()[0] if str(error) else repr(error)
            raise UserError(f"{last_path} does not fit this model ({reason}); train afresh "
                            "with another --run-dir") from None
        self._rng = saved["rng"]
        _set_rng_state(self._rng)
        self.history = History(**saved["history"])
        if growing:
            self.history.stopped = False  # more epochs asked for: train on

    def restore_random_state(self) -> None:
        """Put the random generators back where this network's training stands: as its
        restored last.pt left them, or else as they were when this Checkpoint was made.
        For a task that trains several networks in one loop and saves them one after the
        other (convlstm_grid), whose resume must start from the right one's state."""
        _set_rng_state(self._rng)

    def epochs(self, count: int) -> Iterator[int]:
        """The epochs still to train, from where last.pt left off up to `count`, under a
        progress bar (a line per epoch where stderr is no terminal). None with
        --eval-only, or when a resumed run had already stopped."""
        start = len(self.history.epochs)
        end = start if self.config.get("eval_only") or self.stopped else count
        self._began = time.perf_counter() - self.history.seconds
        self._bar = tqdm(range(start, end), desc=self.label, initial=start,
                         total=max(end, start), leave=False, file=sys.stderr,
                         disable=None if distributed.is_main() else True)
        try:
            yield from self._bar
        finally:
            self._bar.close()

    def save(self, epoch: int, metrics: dict[str, float], stop: bool = False) -> None:
        """Record one epoch's metrics (with its seconds and learning rate) and write
        best.pt if the monitored metric is better, then last.pt and history.csv. `stop`
        ends training here (so does `patience`), and a resumed run will not go on."""
        history = self.history
        history.seconds = time.perf_counter() - self._began
        optimizer = self.state.get("optimizer")
        metrics = {"epoch": epoch, **metrics, "seconds": round(history.seconds, 3),
                   "lr": optimizer.param_groups[0]["lr"] if optimizer else float("nan")}
        history.epochs.append(metrics)
        value, sign = metrics[self.monitor], 1.0 if history.mode == "min" else -1.0
        better = math.isfinite(value) and (math.isnan(history.best_value)
                                           or sign * value < sign * history.best_value)
        if better:
            history.best_epoch, history.best_value = epoch, value
        history.stopped = stop or (self.patience > 0
                                   and epoch - history.best_epoch >= self.patience)
        self._report(epoch, metrics)
        if not distributed.is_main():
            return
        model = self.state["model"]
        if better:
            atomic_save({"model": model.state_dict(), "epoch": epoch, "config": self.config,
                         self.monitor: value}, self.folder / "best.pt")
        states = {name: thing.state_dict() for name, thing in self.state.items()
                  if name != "model" and thing is not None}
        atomic_save({"model": model.state_dict(), "states": states, "epoch": epoch,
                     "history": asdict(history), "rng": _rng_state(), "config": self.config,
                     "world_size": distributed.world_size(), "task": self.task},
                    self.folder / "last.pt")
        write_history_csv(history, self.folder / "history.csv")

    def _report(self, epoch: int, metrics: dict[str, float]) -> None:
        shown = {k: f"{v:.4g}" for k, v in metrics.items()
                 if k not in ("epoch", "seconds", "lr") and isinstance(v, float)}
        if self._bar is not None:
            self._bar.set_postfix(shown)
        if distributed.is_main() and not sys.stderr.isatty():  # nohup, CI: a line an epoch
            # a second network saved in another's loop has no bar: --epochs is its total
            total = self._bar.total if self._bar is not None else self.config.get("epochs")
            print(f"{self.label} epoch {epoch + 1}/{total}: "
                  + ", ".join(f"{k} {v}" for k, v in shown.items()), flush=True)

    def load_best(self) -> History:
        """Load best.pt's weights into the model and return the history."""
        if self._bar is not None:
            self._bar.close()
        if self.history.best_epoch < 0:
            raise UserError(f"no epoch of {self.label} gave a finite validation "
                            f"{self.monitor}; nothing to evaluate")
        distributed.barrier()  # process 0 has written best.pt
        self.state["model"].load_state_dict(load_checkpoint(self.folder / "best.pt")["model"])
        return self.history
