"""Write surnames of a language with the model train.py saved, one name a line.

    python -m tasks.name_generator.sample --language Russian --count 10
    python -m tasks.name_generator.sample --language Japanese --temperature 0.5 --top-k 5
    python -m tasks.name_generator.sample --language Irish --start "O'" --seed 1
    python -m tasks.name_generator.sample --language all        # a few of every language

Reads <run-dir>/model.pt (weights, vocabulary, languages and model config, no pickled
code), so it needs neither the data nor the training flags. The same --seed gives the same
names. --temperature below 1 picks likely characters more often (0: always the most
likely, so every name is the same); above 1, less often. --top-k K draws only among the K
most likely characters at each step.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from core.config import OneLineParser, UserError, run_main

from .model import MAX_LENGTH, load_model, sample

DEFAULT_RUN_DIR = Path("runs") / __package__.rsplit(".", 1)[-1]
PER_LANGUAGE = 3  # names per language for --language all, unless --count says otherwise


def train_command(run_dir: Path) -> str:
    """The command that writes <run_dir>/model.pt."""
    return f"python -m {__package__}.train --run-dir {run_dir}"


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


finite.__name__ = "number"  # argparse names the type in its message


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog=f"python -m {__package__}.sample",
                    description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", required=True,
                        help="the language to write names of (as in the training file, "
                             "any case), or `all` for a few of every language")
    parser.add_argument("--count", type=int, default=None,
                        help=f"how many names (per language with `all`); default 10, or "
                             f"{PER_LANGUAGE} per language with `all`")
    parser.add_argument("--temperature", type=finite, default=1.0,
                        help="divides the logits: below 1 more likely characters, 0 always "
                             "the most likely one (default: 1)")
    parser.add_argument("--top-k", type=int, default=0,
                        help="draw only among the K most likely next tokens (default 0: all)")
    parser.add_argument("--start", default="",
                        help="the first characters of every name; the model writes the rest "
                             "(default: none)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed: the same seed writes the same names (default: 0)")
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR),
                        help="folder holding the model.pt that train.py wrote (default: "
                             f"{DEFAULT_RUN_DIR})")
    args = parser.parse_args(argv)
    if args.count is not None and not 1 <= args.count <= 10_000:
        raise UserError(f"--count must be between 1 and 10000, got {args.count}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be 0 or more, got {args.temperature}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be 0 (all) or more, got {args.top_k}")
    if not 0 <= args.seed < 2**63:
        raise UserError(f"--seed must be between 0 and 2**63 - 1, got {args.seed}")
    if len(args.start) >= MAX_LENGTH:
        raise UserError(f"--start has {len(args.start)} characters; names stop at "
                        f"{MAX_LENGTH}")
    return args


def main(argv: list[str] | None = None) -> list[str]:
    args = parse(argv)
    run_dir = Path(args.run_dir)
    path = run_dir / "model.pt"
    if not path.is_file():
        raise UserError(f"no trained model at {path}: make one with `{train_command(run_dir)}` "
                        f"(or `make {DEFAULT_RUN_DIR.name}` for {DEFAULT_RUN_DIR})")
    model, vocab, languages = load_model(path, train_command(run_dir))

    if args.language.lower() == "all":
        chosen, count = languages, args.count or PER_LANGUAGE
    else:
        match = [lang for lang in languages if lang.lower() == args.language.lower()]
        if not match:
            raise UserError(f"unknown language {args.language!r}; the model knows: "
                            f"{', '.join(languages)} (or all)")
        chosen, count = match, args.count or 10
    unknown = vocab.unknown(args.start)
    if unknown:
        alphabet = "".join(t for t in vocab.tokens if len(t) == 1)
        raise UserError(f"--start {args.start!r}: the model never saw the characters "
                        f"{''.join(unknown)!r}; it knows only {alphabet!r}")

    generator = torch.Generator().manual_seed(args.seed)
    lines = []
    for language in chosen:
        names = sample(model, vocab, languages.index(language), count, args.temperature,
                       args.top_k, args.start, generator)
        lines += [f"{language}: {name}" if len(chosen) > 1 else name for name in names]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    run_main(main)
