"""One run of a task: its name, its folder, its device and its seeds, and the
metrics.json it leaves. Every task goes through it, so every task keeps one contract:

- the task's name is its package's (`tasks/<name>/`), so a copied folder is its own task;
- a run never needs a flag and never loses one: without --run-dir it writes to
  runs/<name>/, or, when that holds a run, to the next free runs/<name>-2/, -3, ...
  (numbered in order, so `ls runs` lists them oldest first; said when chosen); --resume
  and --eval-only then take the newest run with checkpoints. --run-dir names a folder
  exactly, and an earlier run there is replaced only with --overwrite;
- a folder is locked while a run uses it, so two runs never mix;
- each seed trains in <run>/seed<N>/ (a second model of the same seed, such as a
  baseline network, in seed<N>/<model name>/), with best.pt, last.pt and history.csv;
- metrics.json holds the median over seeds, with each seed's value beside it.

    run = Run(cfg)
    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))        # its own loop, saving through run.checkpoint
    run.finish({**seeds.test(), **baselines}, seeds.seconds)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from core import distributed
from core.config import RunConfig, UserError, on_interrupt, task_name
from core.files import (
    MANIFEST,
    FolderLock,
    keep_manifest,
    listed_by_this_process,
    remove_stale_temporaries,
)
from core.report import median_over_seeds, write_metrics
from core.train import Checkpoint, History, pick_device, set_threads


@dataclass
class SeedResult:
    """What one seed's training gives back: its seed, test scores for each method trained
    per seed ("model", and baselines that are networks too), its history, and anything
    the report needs (forecasts, predictions)."""

    seed: int
    test: dict[str, dict[str, float]]
    history: History
    outputs: Any = None


@dataclass
class Seeds:
    """The results of every seed, in seed order: `add` each as it is trained."""

    task: str
    results: list[SeedResult] = field(default_factory=list)

    def add(self, result: SeedResult) -> None:
        """Keep one seed's result and print its line: best epoch, validation, test."""
        self.results.append(result)
        history = result.history
        scores = ", ".join(f"{k} {v:.4g}" for k, v in result.test["model"].items())
        print(f"{self.task} seed {result.seed}: best epoch {history.best_epoch + 1} of "
              f"{len(history.epochs)} (validation {history.best_value:.4g}); "
              f"test {scores}; {history.seconds:.1f} s")

    def test(self) -> dict[str, dict[str, Any]]:
        """{method: {metric: median over seeds, metric_seeds: [per seed]}}."""
        methods = self.results[0].test
        return {m: median_over_seeds([r.test[m] for r in self.results]) for m in methods}

    @property
    def seconds(self) -> float:
        return sum(r.history.seconds for r in self.results)

    def median(self, metric: str, method: str = "model") -> SeedResult:
        """The seed whose `metric` is the median (the lower middle for an even count): the
        one to plot as typical."""
        order = sorted(range(len(self.results)),
                       key=lambda i: self.results[i].test[method][metric])
        return self.results[order[(len(order) - 1) // 2]]

    def best_on_validation(self) -> SeedResult:
        """The seed whose best validation value is best (its history's monitored metric):
        the model a command should answer with. Chosen on validation, never on test."""
        sign = 1.0 if self.results[0].history.mode == "min" else -1.0
        return min(self.results, key=lambda r: sign * r.history.best_value)


CHECKPOINT_FILES = ("best.pt", "last.pt", "history.csv")
SET_ASIDE = ".replaced"  # an earlier run moved aside by --overwrite until the new one has trained


def _holds_run(folder: Path) -> bool:
    return ((folder / "metrics.json").exists() or (folder / MANIFEST).exists()
            or any(folder.glob("seed*/**/last.pt")))


def _newest_checkpoint(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.glob("seed*/**/last.pt")), default=-1.0)


def _run_files(folder: Path) -> list[Path]:
    """The files of the run in `folder`: those its manifest lists, or, for a run without
    one (killed before it wrote it), the names every run writes."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        listed = dict.fromkeys(line for line in manifest.read_text().splitlines() if line)
        return [folder / name for name in listed if (folder / name).is_file()] + [manifest]
    fixed = [folder / "metrics.json", folder / "model.pt"]
    fixed += [p for name in CHECKPOINT_FILES for p in folder.glob(f"seed*/**/{name}")]
    return [p for p in fixed if p.is_file()]


class Run:
    """The run of one task, from its checked Config."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.task = task_name(type(cfg))
        self.seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
        self.device = distributed.start(pick_device(cfg.device))
        self._described: set[str] = set()
        self._set_aside = False
        self._finished = False
        # Process 0 chooses and locks the folder; under torchrun the others learn it.
        choice = None
        if distributed.is_main():
            try:
                choice = str(self._choose_folder())
            except UserError as error:
                choice = error
        choice = distributed.share(choice)
        if isinstance(choice, UserError):
            raise choice
        self.dir = Path(choice)
        if cfg.preflight:
            print(f"{self.task}: flags and run folder checked; it will write to {self.dir}")
            raise SystemExit(0)
        if distributed.is_main():
            remove_stale_temporaries(self.dir)
            keep_manifest(self.dir)
            atexit.register(self._put_back_if_nothing_saved)
            on_interrupt(self._interrupted)
        else:  # under torchrun, process 0 alone speaks and writes
            sys.stdout = open(os.devnull, "w")  # for the rest of the process

    # ---- the folder

    def _lock(self, folder: Path) -> bool:
        """Make `folder` and take its lock (held until the process ends); False if another
        run holds it. --preflight only looks: it makes and keeps nothing."""
        if self.cfg.preflight and not folder.exists():
            return True
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot use {folder} as the run folder: {error.strerror}") from None
        lock = FolderLock(folder)
        if not lock.try_acquire():
            return False
        if self.cfg.preflight:
            lock.release()
        return True

    def _choose_folder(self) -> Path:
        cfg = self.cfg
        if cfg.run_dir:
            return self._named_folder(Path(cfg.run_dir))
        if cfg.overwrite:
            raise UserError("--overwrite needs --run-dir: without it a run never replaces "
                            "anything, it writes to a new folder")
        if cfg.resume or cfg.eval_only:
            flag = "--resume" if cfg.resume else "--eval-only"
            folders = [f for f in run_folders(self.task) if _newest_checkpoint(f) >= 0]
            if not folders:
                raise UserError(f"{flag}: no run of {self.task} with checkpoints under "
                                f"runs/; train first, or give --run-dir")
            folder = max(folders, key=_newest_checkpoint)
            print(f"{flag}: {folder} (the newest run with checkpoints; --run-dir picks "
                  "another)")
            return self._named_folder(folder)
        default = Path("runs") / self.task
        numbered = {1 if f == default else int(f.name.rsplit("-", 1)[1]): f
                    for f in run_folders(self.task)}
        first = max((n for n, f in numbered.items() if _holds_run(f)), default=0) + 1
        candidates = [default if n == 1 else Path("runs") / f"{self.task}-{n}"
                      for n in range(first, first + 50)]
        for folder in candidates:
            if folder.exists() and _holds_run(folder) or not self._lock(folder):
                continue  # another run made or took it this instant
            later = f" (earlier runs stay in {default} and on)" if folder != default else ""
            if not cfg.preflight:
                print(f"{self.task}: writing to {folder}{later}")
            return folder
        raise UserError(f"no free run folder after {candidates[-1]}; give --run-dir")

    def _named_folder(self, folder: Path) -> Path:
        """--run-dir (or the newest run for --resume): refuse what would mix or lose runs."""
        cfg = self.cfg
        if cfg.resume or cfg.eval_only:
            if not any(folder.glob("seed*/**/last.pt")):
                flag = "--resume" if cfg.resume else "--eval-only"
                raise UserError(f"{flag}: no checkpoint under {folder}; train first (is "
                                "--run-dir right?)")
            self._check_task(folder)
        if not self._lock(folder):
            FolderLock(folder).acquire()  # raises, naming the run that holds it
        if cfg.resume or cfg.eval_only or not _holds_run(folder):
            return folder
        if not cfg.overwrite:
            raise UserError(f"{folder} holds an earlier run: --resume continues it, "
                            "--eval-only scores it again, --overwrite replaces it, or give "
                            "another --run-dir (without --run-dir a new folder is chosen)")
        self._check_task(folder)
        self._set_aside = True  # moved aside once the new run starts to train
        return folder

    def _check_task(self, folder: Path) -> None:
        """A folder of another task's runs is refused by name, not by a config diff."""
        metrics = folder / "metrics.json"
        try:
            other = json.loads(metrics.read_text()).get("task") if metrics.is_file() else None
        except (OSError, ValueError, AttributeError):
            other = None
        if other and other != self.task:
            raise UserError(f"{folder} holds a run of the task {other}, not {self.task}; "
                            "give another --run-dir")

    def _move_earlier_run_aside(self) -> None:
        """--overwrite: move the earlier run's own files (and nothing else the folder holds)
        to .replaced/, now that the new run's flags, files and data have been checked.
        They are deleted when the new run finishes, and put back if it fails first."""
        if not self._set_aside or not distributed.is_main():
            return
        self._set_aside = False
        aside = self.dir / SET_ASIDE
        shutil.rmtree(aside, ignore_errors=True)
        for path in _run_files(self.dir):
            target = aside / path.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        keep_manifest(self.dir)  # what is listed from here on is the new run's
        print(f"--overwrite: the earlier run in {self.dir} is set aside in {aside} until this "
              "one finishes")

    def _put_back_if_nothing_saved(self) -> None:
        """At exit: an earlier run set aside by --overwrite comes back if this run ended
        (an error, Ctrl-C) before it saved anything to resume from; once it has a last.pt
        the earlier run stays set aside until this one finishes (--resume continues it)."""
        aside = self.dir / SET_ASIDE
        own = listed_by_this_process(self.dir)
        if self._finished or not aside.is_dir() or any(
                Path(name).name == "last.pt" for name in own):
            return
        for name in [*own, MANIFEST]:
            (self.dir / name).unlink(missing_ok=True)
        for path in sorted(p for p in aside.rglob("*") if p.is_file()):
            target = self.dir / path.relative_to(aside)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(aside, ignore_errors=True)
        print(f"the earlier run in {self.dir} is back in place: this one ended before it "
              "saved anything", file=sys.stderr)

    def seed_dir(self, seed: int, model: str = "") -> Path:
        """<run>/seed<N>/, or seed<N>/<model>/ for a second model of that seed."""
        return self.dir / f"seed{seed}" / model if model else self.dir / f"seed{seed}"

    # ---- training

    def describe(self, model: torch.nn.Module, name: str = "model") -> None:
        """One line: the model's size and where it trains (`name` may say what it is,
        e.g. "gru (torch)")."""
        count = sum(p.numel() for p in model.parameters())
        print(f"{self.task} {name}: {count:,} parameters, {self.device}, "
              f"{torch.get_num_threads()} thread(s)")

    def checkpoint(self, seed: int, name: str = "", monitor: str = "loss", mode: str = "min",
                   patience: int = 0, **state: Any) -> Checkpoint:
        """The Checkpoint of one seed's network (a second network of the seed: `name`) in
        seed<N>/ (seed<N>/<name>/), resuming or only evaluating as the flags say. `state`
        is what last.pt keeps: model=, optimizer=, and any scheduler or second network.
        Sets the thread count for the model's size and prints its size once per name."""
        self._move_earlier_run_aside()
        model = state["model"]
        set_threads(self.cfg.threads, model)
        if name not in self._described:
            self._described.add(name)
            self.describe(model, name or "model")
        label = f"{self.task} seed {seed}" + (f" {name}" if name else "")
        return Checkpoint(self.seed_dir(seed, name), state, asdict(self.cfg), task=self.task,
                          label=label, monitor=monitor, mode=mode, patience=patience)

    def _interrupted(self) -> str:
        """What Ctrl-C adds once this run has saved an epoch: the command that resumes."""
        if not any(Path(name).name == "last.pt" for name in listed_by_this_process(self.dir)):
            return ""
        command = " ".join(a for a in sys.orig_argv if a not in ("--resume", "--overwrite"))
        if not self.cfg.run_dir:
            command += f" --run-dir {self.dir}"
        return f"{self.dir} holds the last finished epoch. To continue: {command} --resume"

    def finish(self, test: dict[str, dict[str, Any]], train_seconds: float,
               config: dict[str, Any] | None = None) -> Path:
        """Write metrics.json: the task, seeds, device, training time, config and the
        test scores of the model and every baseline."""
        self._move_earlier_run_aside()
        path = write_metrics(self.dir, task=self.task, seeds=self.seeds,
                             device=str(self.device), train_seconds=train_seconds,
                             config=config if config is not None else asdict(self.cfg),
                             test=test, world_size=distributed.world_size())
        self._finished = True
        on_interrupt(None)  # nothing left to resume
        shutil.rmtree(self.dir / SET_ASIDE, ignore_errors=True)  # the new run replaces it
        return path


def run_folders(task: str, root: Path = Path("runs")) -> list[Path]:
    """The task's run folders under runs/: runs/<task> and runs/<task>-2, -3, ... (what
    runs without --run-dir write), oldest first by number."""
    found = [(1, root / task)] if (root / task).is_dir() else []
    for path in root.glob(f"{task}-*"):
        number = path.name[len(task) + 1:]
        if number.isdigit() and path.is_dir():
            found.append((int(number), path))
    return [path for _, path in sorted(found)]


def trained_run(task: str, run_dir: str, needs: str = "model.pt") -> Path:
    """The folder a command reads its trained model from: --run-dir when given, else the
    newest of the task's run folders that holds `needs` (said on stderr, so a script's
    stdout stays the answers). A UserError names the command that trains one."""
    if run_dir:
        path = Path(run_dir)
        if not (path / needs).is_file():
            raise UserError(f"no trained model at {path / needs}: train one with "
                            f"`make {task}` (python -m tasks.{task}.train --run-dir {path})")
        return path
    finished = [path for path in run_folders(task) if (path / needs).is_file()]
    if not finished:
        raise UserError(f"no trained model under runs/{task}*: train one with `make {task}` "
                        "first, or give --run-dir")
    newest = max(finished, key=lambda path: (path / needs).stat().st_mtime)
    print(f"using {newest / needs} (the newest trained run; --run-dir picks another)",
          file=sys.stderr)
    return newest

