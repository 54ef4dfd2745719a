"""Command-line configuration: a typed dataclass becomes an argparse parser.

Every task declares one `@dataclass Config` whose fields carry their help text:

    @dataclass
    class Config(RunConfig):
        hidden_size: int = arg(32, "hidden units of the recurrent layer")

`parse(Config, argv)` returns a filled-in Config; `--help` lists every field with its
default. Field names with underscores become hyphenated flags (`--hidden-size`).

User mistakes (bad flags, files, shapes) raise `UserError`; `run(main)` prints its one
line and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints


class UserError(Exception):
    """Something the user can fix: the message says what was wrong and what to do."""


def arg(default: Any, help: str, choices: Sequence[Any] | None = None,
        minimum: float | None = None) -> Any:
    """A dataclass field with help text for its flag, and optionally the allowed choices
    or the smallest allowed value."""
    meta = {"help": help, "choices": choices, "minimum": minimum}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    """Flags every task has."""

    seed: int = arg(0, "random seed for weights, data order and synthetic data", minimum=0)
    device: str = arg("auto", "where to train: auto picks cuda, then mps, then cpu",
                      choices=["auto", "cpu", "cuda", "mps"])
    threads: int = arg(0, "CPU threads for torch; 0 picks one per the model's size "
                          "(small recurrent models run faster on one thread)", minimum=0)
    run_dir: str = arg("", "output folder; empty means runs/<task>")
    resume: bool = arg(False, "continue from the last.pt checkpoint(s) in --run-dir instead "
                               "of starting afresh")
    dry_run: bool = arg(False, "tiny budget to check that everything runs end to end "
                               "(overrides the size flags)")


C = TypeVar("C")


def _at_least(kind: type, minimum: float) -> Callable[[str], Any]:
    """An argparse type that also rejects values below `minimum`."""
    def convert(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value
    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def parse(config_class: type[C], argv: Sequence[str] | None = None,
          description: str | None = None) -> C:
    """Parse `argv` into an instance of `config_class` (a dataclass of `arg` fields)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + f.name.replace("_", "-")
        help_text, choices = f.metadata.get("help", ""), f.metadata.get("choices")
        if f.metadata.get("minimum") is not None:
            kind = _at_least(kind, f.metadata["minimum"])
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        elif isinstance(default, list):
            item = type(default[0]) if default else str
            parser.add_argument(flag, nargs="+", type=item, default=default, help=help_text,
                                choices=choices)
        else:
            parser.add_argument(flag, type=kind, default=default, help=help_text,
                                choices=choices)
    return config_class(**vars(parser.parse_args(argv)))


def run_dir_for(config: RunConfig, package: str) -> Path:
    """The task's output folder: `--run-dir`, else runs/<last part of the package name>.

    Using the package name means a copied task folder writes to its own runs/ folder.
    """
    path = Path(config.run_dir) if config.run_dir else Path("runs") / package.rsplit(".", 1)[-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot use {path} as the run folder: {error.strerror}") from None
    return path


def run(main: Callable[[], Any]) -> None:
    """Call `main`; turn a UserError into one line on stderr and exit status 2."""
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
