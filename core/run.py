"""One run of a task: its name, its folder, its device and its seeds, and the
metrics.json it leaves. Every task goes through it, so every task keeps one contract:

- the task's name is its package's (`tasks/<name>/`), so a copied folder is its own task;
- the run folder is runs/<name>/ (or --run-dir), locked while a run uses it, and an
  earlier run in it is never destroyed unless --overwrite says so;
- each seed trains in runs/<name>/seed<N>/ (a second model of the same seed, such as a
  baseline network, in seed<N>/<model name>/), with best.pt, last.pt and history.csv;
- metrics.json holds the median over seeds, with each seed's value beside it.

    run = Run(cfg)
    seeds = run.each_seed(train_seed)          # train_seed(seed, seed_dir, resume)
    run.finish({**seeds.test(), **baselines}, seeds.seconds)
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from core import distributed
from core.config import RunConfig, UserError, task_name
from core.files import FolderLock, remove_stale_temporaries
from core.report import median_over_seeds, write_metrics
from core.train import History, pick_device, seed_everything


@dataclass
class SeedResult:
    """What one seed's training gives back: test scores for each method trained per seed
    ("model", and baselines that are networks too), its history, and anything the report
    needs (forecasts, predictions)."""

    test: dict[str, dict[str, float]]
    history: History
    outputs: Any = None


@dataclass
class Seeds:
    """The results of every seed, in seed order."""

    seeds: list[int]
    results: list[SeedResult] = field(default_factory=list)

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


# What a run writes into its folder, and so what --overwrite deletes: never anything else.
RUN_FILES = ("metrics.json", "*.png", "*.gif", "*.csv", "*.pt")


class Run:
    """The run of one task, from its checked Config."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.task = task_name(type(cfg))
        self.dir = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / self.task
        self.seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
        self.device = distributed.start(pick_device(cfg.device))
        if distributed.is_main():
            self._prepare_folder()
        else:  # under torchrun, process 0 alone speaks and writes
            sys.stdout = open(os.devnull, "w")  # for the rest of the process

    def _earlier_run(self) -> bool:
        return (self.dir / "metrics.json").exists() or any(self.dir.glob("seed*/**/last.pt"))

    def _prepare_folder(self) -> None:
        cfg = self.cfg
        if cfg.resume or cfg.eval_only:
            if not any(self.dir.glob("seed*/**/last.pt")):
                flag = "--resume" if cfg.resume else "--eval-only"
                raise UserError(f"{flag}: no checkpoint under {self.dir}; train first (is "
                                "--run-dir right?)")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot use {self.dir} as the run folder: {error.strerror}") from None
        lock = FolderLock(self.dir)
        lock.acquire()
        atexit.register(lock.release)
        remove_stale_temporaries(self.dir)
        if cfg.resume or cfg.eval_only or not self._earlier_run():
            return
        if not cfg.overwrite:
            raise UserError(f"{self.dir} holds an earlier run: --resume continues it, "
                            "--eval-only scores it again, --overwrite replaces it, or give "
                            "another --run-dir")
        for seed_dir in self.dir.glob("seed*"):
            if seed_dir.is_dir() and seed_dir.name[4:].isdigit():
                shutil.rmtree(seed_dir)
        for pattern in RUN_FILES:
            for path in self.dir.glob(pattern):
                path.unlink()

    def seed_dir(self, seed: int, model: str = "") -> Path:
        """runs/<task>/seed<N>/, or seed<N>/<model>/ for a second model of that seed."""
        return self.dir / f"seed{seed}" / model if model else self.dir / f"seed{seed}"

    def each_seed(self, train_seed: Callable[[int, Path, bool], SeedResult]) -> Seeds:
        """Seed everything, then call `train_seed(seed, seed_dir, resume)` for each seed.
        With --resume, a seed with a last.pt continues and one not begun starts afresh."""
        seeds = Seeds(self.seeds)
        for seed in self.seeds:
            seed_dir = self.seed_dir(seed)
            seed_everything(seed)
            resume = self.cfg.resume and (seed_dir / "last.pt").exists()
            result = train_seed(seed, seed_dir, resume)
            seeds.results.append(result)
            history = result.history
            scores = ", ".join(f"{k} {v:.4g}" for k, v in result.test["model"].items())
            print(f"{self.task} seed {seed}: best epoch {history.best_epoch + 1} of "
                  f"{len(history.epochs)} (validation {history.best_value:.4g}); "
                  f"test {scores}; {history.seconds:.1f} s")
        if not distributed.is_main():
            raise SystemExit(0)  # training is over; the report is process 0's
        return seeds

    def finish(self, test: dict[str, dict[str, Any]], train_seconds: float,
               config: dict[str, Any] | None = None) -> Path:
        """Write metrics.json: the task, seeds, device, training time, config and the
        test scores of the model and every baseline."""
        return write_metrics(self.dir, task=self.task, seeds=self.seeds,
                             device=str(self.device), train_seconds=train_seconds,
                             config=config if config is not None else asdict(self.cfg),
                             test=test, world_size=distributed.world_size())

    def describe(self, model: torch.nn.Module, name: str = "model") -> None:
        """One line: the model's size and where it trains."""
        count = sum(p.numel() for p in model.parameters())
        print(f"{self.task} {name}: {count:,} parameters, {self.device}, "
              f"{torch.get_num_threads()} thread(s)")


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

