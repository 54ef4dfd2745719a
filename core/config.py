"""Command-line configuration: a typed dataclass becomes an argparse parser.

Every task declares one `@dataclass Config` whose fields carry their help text and their
allowed range, and puts any check that relates two flags in `check`:

    @dataclass
    class Config(RunConfig):
        hidden_size: int = arg(32, "hidden units of the recurrent layer", minimum=1)

        def check(self) -> None:
            super().check()
            require(self.min_length <= self.max_length, "--min-length > --max-length")

`parse(Config, argv, __doc__)` returns a filled-in, checked Config; `--help` lists every
field with its default. Field names with underscores become hyphenated flags
(`--hidden-size`). A float flag must be a finite number: nan and inf are refused.

User mistakes (bad flags, files, shapes) raise `UserError`; `run_main(main)` prints its one
line and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints


class UserError(Exception):
    """Something the user can fix: the message says what was wrong and what to do."""


def require(condition: bool, message: str) -> None:
    """Raise UserError(message) unless `condition` holds: one line per check in `check`."""
    if not condition:
        raise UserError(message)


def arg(default: Any, help: str, choices: Sequence[Any] | None = None,
        minimum: float | None = None, maximum: float | None = None) -> Any:
    """A dataclass field with help text for its flag, and optionally the allowed choices
    or the range of allowed values."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


MAX_SEED = 2**32 - 1  # numpy's generators take seeds below 2**32


@dataclass
class RunConfig:
    """Flags every task has."""

    seed: int = arg(0, "random seed for weights, data order and synthetic data",
                    minimum=0, maximum=MAX_SEED)
    seeds: int = arg(1, "train this many seeds (--seed, --seed+1, ...), each in its own "
                        "seed<N>/ folder; metrics are the median over them",
                     minimum=1, maximum=1000)
    device: str = arg("auto", "where to train: auto picks cuda, then mps, then cpu",
                      choices=["auto", "cpu", "cuda", "mps"])
    threads: int = arg(0, "CPU threads for torch; 0 picks one per the model's size "
                          "(small recurrent models run faster on one thread)", minimum=0)
    run_dir: str = arg("", "output folder, used exactly; empty: runs/<task>, or the next "
                           "free runs/<task>-N when that holds a run (never replacing one)")
    resume: bool = arg(False, "continue a run from its last.pt checkpoints: --run-dir's, or "
                              "the newest run's (--epochs may be raised to train it longer)")
    overwrite: bool = arg(False, "replace the earlier run in --run-dir: only the files a run "
                                 "wrote; they are set aside until the new run has trained")
    eval_only: bool = arg(False, "train nothing: score the best.pt of a run (--run-dir's, or "
                                 "the newest run's) on the test set and write its report again")
    dry_run: bool = arg(False, "tiny budget to check that everything runs end to end "
                               "(overrides the size flags)")
    preflight: bool = arg(False, "check the flags, the data and the run folder, say where "
                                 "the run "
                                 "would write, and exit (make NPROC=N does this before "
                                 "torchrun starts its processes)")

    def check(self) -> None:
        """Checks that relate several flags; a task extends it and calls super().check()."""
        chosen = [flag for flag, on in [("--resume", self.resume), ("--overwrite",
                  self.overwrite), ("--eval-only", self.eval_only)] if on]
        require(len(chosen) <= 1, f"{' and '.join(chosen)} exclude each other; give one")
        require(self.seed + self.seeds - 1 <= MAX_SEED,
                f"--seed {self.seed} with --seeds {self.seeds} passes the largest seed "
                f"numpy takes, {MAX_SEED}")


C = TypeVar("C", bound=RunConfig)
_parsed: RunConfig | None = None  # the config parse() last returned, for run_main's messages


def _checked(kind: type, minimum: float | None, maximum: float | None) -> Callable[[str], Any]:
    """An argparse type that rejects nan, inf and values outside [minimum, maximum]."""
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {text}")
        return value
    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def program_name(config_class: type) -> str:
    """How the user started the task, `python -m tasks.<name>.train`, for --help and the
    commands the task prints."""
    module = sys.modules.get(config_class.__module__)
    spec = getattr(module, "__spec__", None)
    return f"python -m {spec.name if spec else config_class.__module__}"


class OneLineParser(argparse.ArgumentParser):
    """argparse for the tasks' commands (train, predict, sample, forecast): a bad flag is
    one line, like every other user error (argparse alone prints the whole usage first)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-inf" or "-1e-3" for a flag ("expected one argument"): read every
        # negative number as a value, so the range check can say what is wrong with it
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def task_of(package: str) -> str:
    """The task's name from its package (`__package__` of any of its modules, "tasks.sin2cos"
    -> "sin2cos"), so a copied task folder is a task of its own name; the one place a
    task's name is made."""
    return package.rsplit(".", 1)[-1]


def task_name(config_class: type) -> str:
    """The name of the task whose train.py declares `config_class`."""
    return task_of(program_name(config_class).split()[-1].rsplit(".", 1)[0])


def parse(config_class: type[C], argv: Sequence[str] | None = None,
          doc: str | None = None) -> C:
    """Parse `argv` into a checked instance of `config_class` (a dataclass of `arg`
    fields); `doc`'s first paragraph is the --help description.

    A Config with a `preset` field and a `PRESETS` dict ({name: {field: value}}) takes the
    chosen preset's values as the defaults of those flags: flags given on the command line
    still win, and --help and metrics.json show real values."""
    parser = OneLineParser(
        prog=program_name(config_class),
        description=doc.split("\n\n")[0] if doc else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + f.name.replace("_", "-")
        help_text, choices = f.metadata.get("help", ""), f.metadata.get("choices")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
            continue
        item = (type(default[0]) if default else str) if isinstance(default, list) else kind
        if item in (int, float):
            item = _checked(item, f.metadata.get("minimum"), f.metadata.get("maximum"))
        parser.add_argument(flag, type=item, default=default, help=help_text, choices=choices,
                            nargs="+" if isinstance(default, list) else None)
    presets = getattr(config_class, "PRESETS", None)
    if presets:
        chosen, _ = parser.parse_known_args(argv)
        parser.set_defaults(**presets[chosen.preset])
    config = config_class(**vars(parser.parse_args(argv)))
    config.check()
    global _parsed
    _parsed = config
    return config


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (kill, a scheduler's time limit) ends the run as Ctrl-C does: the training
    loop keeps its last checkpoint and prints how to resume."""
    raise KeyboardInterrupt


_interrupt_note: Callable[[], str] | None = None


def on_interrupt(note: Callable[[], str] | None) -> None:
    """What Ctrl-C (or SIGTERM) says after "interrupted": `note()` when it comes, such as
    the command that resumes a run (core.run.Run registers it; None: nothing more)."""
    global _interrupt_note
    _interrupt_note = note


def _size_flags() -> str:
    """The flags of the parsed task that set a size, for an out-of-memory message."""
    if _parsed is None:
        return "the size flags"
    words = ("size", "batch", "grid", "length", "layers", "windows", "sequences", "count",
             "embedding", "channels", "frames")
    flags = [f"--{f.name.replace('_', '-')} {getattr(_parsed, f.name)}"
             for f in dataclasses.fields(_parsed)
             if any(w in f.name for w in words) and isinstance(getattr(_parsed, f.name), int)
             and not isinstance(getattr(_parsed, f.name), bool)]
    return ", ".join(flags) if flags else "the size flags"


def _out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return (isinstance(error, MemoryError) or "out of memory" in text.lower()
            or "can't allocate memory" in text or "not enough memory" in text.lower())


def run_main(main: Callable[[], Any]) -> None:
    """Call `main` as a command: a UserError is one line on stderr and exit status 2, and
    so are out of memory and a full disk; Ctrl-C or SIGTERM outside the training loop is
    one line and status 130; a reader that goes away (`| head`) ends the command quietly,
    as Unix tools do. An int that `main` returns is the exit status (1: some inputs were
    not answered)."""
    signal.signal(signal.SIGTERM, _terminate)
    if sys.stdout is None:  # started with stdout closed (`>&-`): Python has no sys.stdout
        print("error: standard output is closed; send it somewhere (> out.txt, or "
              "> /dev/null to discard it)", file=sys.stderr)
        sys.exit(2)
    try:
        status = main()
        sys.stdout.flush()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        note = _interrupt_note() if _interrupt_note else ""
        print("\ninterrupted" + (f"; {note}" if note else ""), file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # stdout's reader is gone: point stdout at /dev/null so the exit flush is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for `yes | head -1`'s yes
    except (MemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        print(f"error: out of memory: the model or a batch does not fit ({_size_flags()}); "
              "lower them and run again", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"error: no space left on the device writing {error.filename or 'a file'}; "
                  "free some space and run again (--resume continues an interrupted run)",
                  file=sys.stderr)
        elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            print(f"error: cannot write {error.filename or 'a file'}: {error.strerror}; "
                  "choose a folder you may write in", file=sys.stderr)
        else:
            raise
        sys.exit(2)
    if isinstance(status, int) and not isinstance(status, bool):
        sys.exit(status)
