"""One run of a task: its name, its folder, its device and its seeds, and the
metrics.json it leaves. Every task goes through it, so every task keeps one contract:

- the task's name is its package's (`tasks/<name>/`), so a copied folder is its own task;
- a run never needs a flag and never loses one: without --run-dir it writes to
  runs/<name>/, or, when that holds a run, to the next free runs/<name>-2/, -3, ...
  (numbered in order, so `ls runs` lists them oldest first; said when chosen); --resume
  and --eval-only then take the newest run with checkpoints. --run-dir names a folder
  exactly, and an earlier run there is replaced only with --overwrite;
- a folder is locked while a run uses it, so two runs never mix; a run is recognised by
  the task its files name (run.json, metrics.json), not by its folder's name, and
  --overwrite keeps the earlier run whole in <dir>-replaced until the new one finishes;
- each seed trains in <run>/seed<N>/ (a second model of the same seed, such as a
  baseline network, in seed<N>/<model name>/), with best.pt, last.pt and history.csv;
- metrics.json holds the median over seeds, with each seed's value beside it.

    run = Run(cfg)
    seeds = Seeds(run.task)
    run.data_checked()                     # after reading the data: --preflight ends here
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))        # its own loop, saving through run.checkpoint
    run.finish({**seeds.test(), **baselines}, seeds.seconds)
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from core import distributed
from core.config import RunConfig, UserError, on_interrupt, task_name
from core.files import (
    MANIFEST,
    TMP_SUFFIX,
    FolderLock,
    atomic_write_text,
    inside,
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


SPREAD_KEYS = ("_std", "_ci95", "_lo", "_hi")  # intervals: metrics.json has them


@dataclass
class Seeds:
    """The results of every seed, in seed order: `add` each as it is trained."""

    task: str
    results: list[SeedResult] = field(default_factory=list)

    def add(self, result: SeedResult) -> None:
        """Keep one seed's result and print its line: best epoch, validation, test."""
        self.results.append(result)
        history = result.history
        scores = ", ".join(f"{k} {v:.4g}" for k, v in result.test["model"].items()
                           if not any(part in k for part in SPREAD_KEYS))
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
TASK_FILE = "run.json"  # {"task": name}: written as a run takes its folder, so the folder's
# files, not its name, say whose run it is (a copied task may be named like a run folder)
REPLACED = "-replaced"  # --overwrite: <dir>-replaced holds the earlier run until the new
# one finishes (--resume included); a normal run folder, found by the commands, deleted by
# nothing else


def _read_task(folder: Path) -> str | None:
    """The task a run folder's own files name (run.json, else metrics.json), or None."""
    for name in (TASK_FILE, "metrics.json"):
        path = inside(folder, name)
        if path is None:
            continue
        try:
            task = json.loads(path.read_text(encoding="utf-8")).get("task")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(task, str):
            return task
    return None


def _holds_run(folder: Path) -> bool:
    return folder.is_dir() and (
        (folder / "metrics.json").exists() or (folder / MANIFEST).exists()
        or any(folder.glob("seed*/**/last.pt")))


def _newest_checkpoint(folder: Path) -> float:
    """When the run last trained: its newest last.pt, which --eval-only (rewriting
    metrics.json and model.pt) leaves alone."""
    return max((p.stat().st_mtime for p in folder.glob("seed*/**/last.pt")), default=-1.0)


def _run_files(folder: Path) -> list[str]:
    """The files of the run in `folder`, relative to it: those its manifest lists (each
    resolved inside the folder, links never followed), or, for a run without one (killed
    before it wrote it), the names every run writes; run.json and the manifest last."""
    manifest = inside(folder, MANIFEST)
    if manifest is not None:
        names = manifest.read_text(encoding="utf-8", errors="replace").splitlines()
    else:
        names = ["metrics.json", "model.pt"] + [
            str(p.relative_to(folder)) for name in CHECKPOINT_FILES
            for p in folder.glob(f"seed*/**/{name}")]
    files = [str(inside(folder, n).relative_to(folder)) for n in dict.fromkeys(names)
             if n and n not in (MANIFEST, TASK_FILE) and inside(folder, n) is not None]
    return files + [n for n in (TASK_FILE, MANIFEST) if inside(folder, n) is not None]


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # a filesystem without hard links: a copy does as well, more slowly
        shutil.copy2(source, target, follow_symlinks=False)


def _remove(folder: Path, names: Iterable[str]) -> None:
    """Delete `names` from `folder`, then the folders that leaves empty (never others)."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    parents = {p for name in names for p in Path(name).parents if p != Path(".")}
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        try:
            (folder / parent).rmdir()
        except OSError:
            pass  # not empty: it holds something else


def _free_name(path: Path) -> Path:
    return next(path.with_name(name) for name in _candidate_names(path.name)
                if not os.path.lexists(path.with_name(name)))


def _candidate_names(name: str) -> list[str]:
    return [name] + [f"{name}-{n}" for n in range(2, 1000)]


def _replaced_names(folder: Path) -> list[str]:
    """The names --overwrite gives the runs it sets aside from `folder`, that exist."""
    return [name for name in _candidate_names(f"{folder.name}{REPLACED}")
            if os.path.lexists(folder.parent / name)]


DELETING = ".deleting."  # a run being deleted is renamed .deleting.<name>.<pid>.tmp first


def _delete_run(folder: Path) -> None:
    """Delete the run in `folder`: its own files, then the folder if that leaves it
    empty (something else put there stays, under the folder's name). Kill-safe: the
    folder is first renamed to a hidden temporary that no command takes for a run, and
    its manifest and run.json go last, so a kill midway leaves no half run in sight, and
    the next run beside it (`_finish_deletions`) ends the job."""
    hidden = folder.parent / f"{DELETING}{folder.name}.{os.getpid()}{TMP_SUFFIX}"
    try:
        os.rename(folder, hidden)
    except FileNotFoundError:  # someone deleted it already
        return
    _remove(hidden, _run_files(hidden))
    try:
        hidden.rmdir()
    except OSError:  # not empty: it holds what someone else put there
        os.rename(hidden, folder)


def _finish_deletions(folder: Path) -> None:
    """End the deletions of `folder`'s replaced runs that a kill cut short."""
    whole = Path(os.path.abspath(folder))
    names = _candidate_names(f"{whole.name}{REPLACED}")
    for hidden in whole.parent.glob(f"{DELETING}{glob.escape(whole.name)}*{TMP_SUFFIX}"):
        name = hidden.name[len(DELETING):].rsplit(".", 2)[0]  # <name>.<pid>.tmp
        if name in names and hidden.is_dir() and not hidden.is_symlink():
            _remove(hidden, _run_files(hidden))
            with contextlib.suppress(OSError):
                hidden.rmdir()


class Run:
    """The run of one task, from its checked Config."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.task = task_name(type(cfg))
        self.seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
        self.device = distributed.start(pick_device(cfg.device))
        self._described: set[str] = set()
        self._data: dict[str, Any] = {}
        self._set_aside = False
        self._replaced: Path | None = None  # <dir>-replaced: the run --overwrite replaces
        self._finished = False
        self._begun = False
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
        if not distributed.is_main():  # under torchrun, process 0 alone speaks and writes
            sys.stdout = open(os.devnull, "w")  # for the rest of the process
        elif not cfg.preflight:  # --preflight writes nothing; data_checked() ends it
            atexit.register(self._put_back_if_nothing_saved)
            on_interrupt(self._interrupted)

    def data_checked(self, **data: Any) -> None:
        """The task calls this once it has read and checked its data, before it trains:
        --preflight ends here (so it checks the data's files, columns and size too, not
        only the flags and the folder), and --overwrite sets the earlier run aside now.
        `data` (a checksum of the examples, say) joins the flags a resume must match, so
        data edited in place since is refused rather than silently trained on."""
        self._data = data
        if self.cfg.preflight:
            print(f"{self.task}: flags, data and run folder checked; it will write to "
                  f"{self.dir}")
            raise SystemExit(0)
        self._begin()

    def _begin(self) -> None:
        """The run starts to write, once its data is checked (so a bad file leaves the
        folder as it was): stale temporaries go, --overwrite sets the earlier run aside,
        and the folder's files say whose run it holds. From data_checked(), or the first
        checkpoint or finish of a task that never called it."""
        if self.cfg.preflight:
            self.data_checked()  # a task that never called it still trains nothing
        if self._begun or not distributed.is_main():
            return
        self._begun = True
        remove_stale_temporaries(self.dir)
        _finish_deletions(self.dir)
        if not self._set_aside:  # --overwrite sets the run here aside, and what it names
            self._replaced = self._replaced_by_this_run()
        if self._replaced is not None and not self.cfg.eval_only:
            print(f"{self.dir} replaced the run now in {self._replaced}, which is deleted when "
                  "this one finishes")
        self._move_earlier_run_aside()
        keep_manifest(self.dir)  # what is listed from here on is the new run's
        self._write_task_file()

    # ---- the folder

    def _write_task_file(self) -> None:
        """run.json: the task, and the folder of the run this one replaces (--overwrite)
        until it finishes, so that a --resume that finishes it deletes that folder too."""
        record = {"task": self.task}
        if self._replaced is not None:
            record["replaces"] = self._replaced.name
        atomic_write_text(self.dir / TASK_FILE, json.dumps(record) + "\n")

    def _replaced_by_this_run(self) -> Path | None:
        """The <dir>-replaced folder that the run already in this folder names in its
        run.json, if it is still there and holds a run of this task; nothing else (a
        run.json anyone may have edited never names a folder to delete elsewhere)."""
        path = inside(self.dir, TASK_FILE)
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("replaces")
        except (AttributeError, OSError, ValueError):  # no run.json (path None), or not ours
            return None
        if name not in _replaced_names(Path(os.path.abspath(self.dir))):
            return None
        aside = self.dir.parent / name
        if aside.is_symlink() or not aside.is_dir() or _read_task(aside) != self.task:
            return None
        return aside

    def _lock(self, folder: Path) -> bool:
        """Make `folder` and take its lock (held until the process ends); False if another
        run holds it. --preflight only looks: it makes and keeps nothing, but checks that
        the run could make the folder."""
        if self.cfg.preflight and not os.path.lexists(folder):
            there = next(p for p in [*folder.parents, Path(".")] if p.exists())
            if not there.is_dir() or not os.access(there, os.W_OK | os.X_OK):
                raise UserError(f"cannot use {folder} as the run folder: {there} is not a "
                                "folder this user may write in; choose another --run-dir")
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
        numbered = [(1, default)] + [
            (int(p.name[len(self.task) + 1:]), p)
            for p in Path("runs").glob(f"{glob.escape(self.task)}-*")
            if p.name[len(self.task) + 1:].isdigit()]
        first = max((n for n, f in numbered if _holds_run(f)), default=0) + 1
        candidates = [default if n == 1 else Path("runs") / f"{self.task}-{n}"
                      for n in range(first, first + 50)]
        for folder in candidates:
            if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()
                                            or _holds_run(folder)):
                continue  # a stray file, a link, or a run (of any task) at this name
            if not self._lock(folder):
                continue  # another run took it this instant
            later = f" (earlier runs stay in {default} and on)" if folder != default else ""
            if not cfg.preflight:
                print(f"{self.task}: writing to {folder}{later}")
            return folder
        raise UserError(f"no free run folder after {candidates[-1]}; give --run-dir")

    def _named_folder(self, folder: Path) -> Path:
        """--run-dir (or the newest run for --resume): refuse what would mix or lose runs."""
        cfg = self.cfg
        checkpointed = any(folder.glob("seed*/**/last.pt"))
        if (cfg.resume or cfg.eval_only) and not checkpointed:
            flag = "--resume" if cfg.resume else "--eval-only"
            if _holds_run(folder):
                raise UserError(f"{flag}: {folder} holds a run that saved no checkpoint"
                                f"{self._earlier_run(folder)}; --overwrite starts afresh there")
            raise UserError(f"{flag}: no checkpoint under {folder}"
                            f"{self._earlier_run(folder)}; train first (is --run-dir right?)")
        if cfg.resume or cfg.eval_only:
            self._check_task(folder)
        if not self._lock(folder):
            FolderLock(folder).acquire()  # raises, naming the run that holds it
        if cfg.resume or cfg.eval_only or not _holds_run(folder):
            return folder
        if not cfg.overwrite and not checkpointed:
            raise UserError(f"{folder} holds a run that saved no checkpoint"
                            f"{self._earlier_run(folder)}; --overwrite starts afresh there, or "
                            "give another --run-dir")
        if not cfg.overwrite:
            raise UserError(f"{folder} holds an earlier run: --resume continues it, "
                            "--eval-only scores it again, --overwrite replaces it, or give "
                            "another --run-dir (without --run-dir a new folder is chosen)")
        self._check_task(folder)
        self._set_aside = True  # moved aside once the new run has checked its data
        return folder

    def _earlier_run(self, folder: Path) -> str:
        """Where the run that `folder`'s run replaced is, for a message: the newest
        <folder>-replaced of this task with checkpoints; empty when there is none."""
        whole = Path(os.path.abspath(folder))
        earlier = [whole.parent / name for name in _replaced_names(whole)
                   if _read_task(whole.parent / name) == self.task
                   and _newest_checkpoint(whole.parent / name) >= 0]
        if not earlier:
            return ""
        aside = folder.parent / max(earlier, key=_newest_checkpoint).name
        return f" (the run it replaced is in {aside}: --run-dir {aside})"

    def _check_task(self, folder: Path) -> None:
        """A folder of another task's runs is refused by name, not by a config diff."""
        other = _read_task(folder)
        if other and other != self.task:
            raise UserError(f"{folder} holds a run of the task {other}, not {self.task}; "
                            "give another --run-dir")

    def _move_earlier_run_aside(self) -> None:
        """--overwrite: move the earlier run's own files (and nothing else the folder holds)
        to <dir>-replaced, now that the new run's flags, files and data have been checked.
        Kill-safe in three steps: hard links in a temporary beside the folder (the earlier
        run still whole in place), one rename that makes them a run folder, then the
        originals removed. <dir>-replaced is deleted when the new run finishes (after a
        --resume too: run.json names it); if it ends before saving a checkpoint the
        earlier run comes back."""
        if not self._set_aside:
            return
        folder = Path(os.path.abspath(self.dir))
        names = _run_files(folder)
        for stale in folder.parent.glob(f".{glob.escape(folder.name)}{REPLACED}.*{TMP_SUFFIX}"):
            shutil.rmtree(stale, ignore_errors=True)  # a killed copy; its run stayed in place
        tmp = folder.parent / f".{folder.name}{REPLACED}.{os.getpid()}{TMP_SUFFIX}"
        aside = _free_name(folder.parent / f"{folder.name}{REPLACED}")
        try:
            tmp.mkdir()
            for name in names:
                _link_or_copy(folder / name, tmp / name)
            os.rename(tmp, aside)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"--overwrite cannot keep the earlier run beside {self.dir} while "
                            f"this one trains ({error.strerror}); move it away yourself, or "
                            "choose another --run-dir") from None
        print(f"--overwrite: the earlier run in {self.dir} is in {aside} until this one "
              "finishes (it stays there if this one ends early)")
        _remove(folder, names)
        self._replaced = aside
        keep_manifest(self.dir)  # what is listed from here on is the new run's

    def _put_back_if_nothing_saved(self) -> None:
        """At exit: an earlier run set aside by --overwrite comes back if this run ended
        (an error, Ctrl-C) before it saved anything to resume from; once it has a last.pt
        the earlier run stays in <dir>-replaced until this one finishes (--resume
        continues it). Links first, deletions after: a kill leaves a whole earlier run."""
        own = listed_by_this_process(self.dir)
        if self._finished or not self._set_aside or self._replaced is None or any(
                Path(name).name == "last.pt" for name in own) or not self._replaced.is_dir():
            return
        aside = self._replaced
        _remove(self.dir, [*own, TASK_FILE, MANIFEST])
        for name in _run_files(aside):
            _link_or_copy(aside / name, self.dir / name)
        _delete_run(aside)
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
        self._begin()
        model = state["model"]
        set_threads(self.cfg.threads, model)
        if name not in self._described:
            self._described.add(name)
            self.describe(model, name or "model")
        label = f"{self.task} seed {seed}" + (f" {name}" if name else "")
        return Checkpoint(self.seed_dir(seed, name), state, {**asdict(self.cfg), **self._data},
                          task=self.task, label=label, monitor=monitor, mode=mode,
                          patience=patience)

    def _interrupted(self) -> str:
        """What Ctrl-C adds once this run has saved an epoch: the command that resumes."""
        if not any(Path(name).name == "last.pt" for name in listed_by_this_process(self.dir)):
            return ""
        command = " ".join(a for a in sys.orig_argv if a not in ("--resume", "--overwrite"))
        if not self.cfg.run_dir:
            command += f" --run-dir {self.dir}"
        return f"{self.dir} holds the last finished epoch. To continue: {command} --resume"

    def finish(self, test: dict[str, dict[str, Any]], train_seconds: float,
               config: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> Path:
        """Write metrics.json: the task, seeds, device, training time, config (the flags,
        unless given) and the test scores of the model and every baseline, with `extra`
        beside them."""
        self._begin()
        path = write_metrics(self.dir, task=self.task, seeds=self.seeds,
                             device=str(self.device), train_seconds=train_seconds,
                             config=config if config is not None else asdict(self.cfg),
                             test=test, world_size=distributed.world_size(), extra=extra)
        self._finished = True
        on_interrupt(None)  # nothing left to resume
        if self._replaced is not None and not self.cfg.eval_only:  # a finished training
            _delete_run(self._replaced)  # run replaces the earlier one: its own files go
            print(f"deleted {self._replaced}, the run this one replaced")
            self._replaced = None
            self._write_task_file()
        return path


def run_folders(task: str, root: Path = Path("runs")) -> list[Path]:
    """The folders directly under runs/ that hold a run of `task`, by what their files say
    (run.json or metrics.json), not by their names: runs/<task>, runs/<task>-2, ... and
    <dir>-replaced; oldest first by their last checkpoint."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if not p.name.startswith(".") and p.is_dir() and _read_task(p) == task]
    return sorted(found, key=lambda p: (_newest_checkpoint(p), p.name))


def trained_run(task: str, run_dir: str, needs: str = "model.pt") -> Path:
    """The folder a command reads its trained model from: --run-dir when given, else the
    run of the task that trained last (by its checkpoints, not by when --eval-only last
    wrote it) among those that hold `needs` (said on stderr, so a script's stdout stays
    the answers). A UserError names the command that trains one."""
    if run_dir:
        path = Path(run_dir)
        if not (path / needs).is_file():
            raise UserError(f"no trained model at {path / needs}: train one with "
                            f"`make {task}` (python -m tasks.{task}.train --run-dir {path})")
        return path
    finished = [path for path in run_folders(task) if (path / needs).is_file()]
    if not finished:
        raise UserError(f"no trained model of {task} under runs/: train one with `make {task}` "
                        "first, or give --run-dir")
    newest = max(finished, key=lambda path: (_newest_checkpoint(path),
                                             (path / needs).stat().st_mtime))
    print(f"using {newest / needs} (the newest trained run; --run-dir picks another)",
          file=sys.stderr)
    return newest
