"""Write surnames of a language with the model train.py saved, one line per language.

    python -m tasks.name_generator.sample --language Russian --count 10
    python -m tasks.name_generator.sample --language Japanese --temperature 0.5 --top-k 5
    python -m tasks.name_generator.sample --language Irish Scottish --start "O'" Mac
    python -m tasks.name_generator.sample --language all --json   # every language
    printf 'Czech\\nGreek\\n' | python -m tasks.name_generator.sample --count 5

Reads model.pt (weights, vocabulary, languages and model config, no pickled code) from
--run-dir, or else from the newest trained runs/name_generator*/, so it needs neither the
data nor the training flags. Each input, a language (from --language, or one a line on
stdin) with each --start, gets one line, in order: "Language: name, name, ...". An input
the model cannot answer (an unknown language, a start with characters it never saw) gets
a line saying why, the others are still answered, and the exit status is then 1. The same
--seed gives the same names. --temperature below 1 picks likely characters more often
(towards 0, and at 0, always the most likely, so every name is the same); above 1, less
often. --top-k K draws only among the K most likely characters at each step. Languages
read from stdin are answered as they arrive.
"""

from __future__ import annotations

import argparse
import math

import torch

from core.answers import Answer, add_json_flag, answer_inputs
from core.config import OneLineParser, UserError, run_main, task_of
from core.run import trained_run
from core.text import Vocab
from core.train import set_threads

from .model import MAX_LENGTH, NameGenerator, load_model, sample

TASK = task_of(__package__)
PER_LANGUAGE = 3  # names per language for --language all, unless --count says otherwise
MAX_COUNT = 10_000


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


finite.__name__ = "number"  # argparse names the type in its message


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog=f"python -m {__package__}.sample",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", nargs="+", default=[],
                        help="the languages to write names of (as in the training file, "
                             "any case), or `all` for every language; none: one a line "
                             "from stdin")
    parser.add_argument("--count", type=int, default=None,
                        help=f"how many names per language; default 10, or {PER_LANGUAGE} "
                             "with `all`")
    parser.add_argument("--temperature", type=finite, default=1.0,
                        help="divides the logits: below 1 more likely characters, 0 always "
                             "the most likely one (default: 1)")
    parser.add_argument("--top-k", type=int, default=0,
                        help="draw only among the K most likely next tokens (default 0: all)")
    parser.add_argument("--start", nargs="+", default=[""],
                        help="the first characters of every name, the model writing the "
                             "rest; several: each start is its own input (default: none)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed: the same seed writes the same names (default: 0)")
    parser.add_argument("--run-dir", default="",
                        help="folder holding the model.pt that train.py wrote (default: the "
                             f"newest trained runs/{TASK}*/)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be 0 or more, got {args.temperature}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be 0 (all) or more, got {args.top_k}")
    if not 0 <= args.seed < 2**63:
        raise UserError(f"--seed must be between 0 and 2**63 - 1, got {args.seed}")
    for start in args.start:
        if len(start) >= MAX_LENGTH:
            raise UserError(f"--start has {len(start)} characters; names stop at "
                            f"{MAX_LENGTH}")
    return args


def problem_with(language: str, start: str, languages: list[str], vocab: Vocab) -> str | None:
    """Why the model cannot write names of `language` beginning with `start`, or None."""
    if language not in languages:
        return f"unknown language; the model knows {', '.join(languages)} (or all)"
    unknown = vocab.unknown(start)
    if unknown:
        alphabet = "".join(t for t in vocab.tokens if len(t) == 1)
        return (f"--start {start!r}: the model never saw the characters {''.join(unknown)!r}; "
                f"it knows only {alphabet!r}")
    return None


def answer(model: NameGenerator, vocab: Vocab, languages: list[str], asked: str, start: str,
           args: argparse.Namespace, count: int, generator: torch.Generator) -> Answer:
    """One input's line, "Language: name, name, ...", or why it is refused."""
    by_case = {language.lower(): language for language in languages}
    language = by_case.get(asked.strip().lower(), asked)
    label = f"{language} {start}..." if start else language
    problem = problem_with(language, start, languages, vocab)
    if problem is not None:
        return Answer(label, refused=problem)
    names = sample(model, vocab, languages.index(language), count, args.temperature,
                   args.top_k, start, generator)
    return Answer(label, f"{label}: {', '.join(names)}",
                  {"language": language, "start": start, "names": names})


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run_dir = trained_run(TASK, args.run_dir)
    model, vocab, languages = load_model(run_dir / "model.pt",
                                         f"python -m {__package__}.train --run-dir {run_dir}")
    set_threads(0, model)  # one name at a time: one thread for a small model, as in training
    generator = torch.Generator().manual_seed(args.seed)

    def answer_batch(batch: list[str]) -> list[Answer]:
        answers = []
        for asked in batch:
            every = asked.strip().lower() == "all"
            count = args.count or (PER_LANGUAGE if every else 10)
            answers += [answer(model, vocab, languages, language, start, args, count, generator)
                        for language in (languages if every else [asked])
                        for start in args.start]
        return answers

    return answer_inputs(args.language, "languages", answer_batch, as_json=args.json)


if __name__ == "__main__":
    run_main(main)
