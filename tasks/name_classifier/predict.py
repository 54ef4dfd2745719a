"""Which languages a surname most likely comes from, by the model train.py saved.

    python -m tasks.name_classifier.predict Nguyen Schmidt "O'Neill" --top 3
    printf 'Müller\\nTanaka\\n' | python -m tasks.name_classifier.predict

Reads <run-dir>/model.pt (weights, vocabulary, labels and model config, no pickled
code), so it needs neither the data files nor the training flags. Names the model cannot
read (empty, no letters, too long) get a one-line answer instead of a guess. A name in all
capitals or all lower case is read in title case (SMITH as Smith, O'NEILL as O'Neill),
as the training names are written; mixed case (McDonald) is kept.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from core.config import OneLineParser, UserError, run_main
from core.text import Vocab

from .model import NameClassifier, encode, load_model, logits_for, transliterate

DEFAULT_RUN_DIR = Path("runs") / __package__.rsplit(".", 1)[-1]
MAX_LENGTH = 40  # the longest training name has 19 characters; far beyond is not a surname


def as_written_in_training(name: str) -> str:
    """SMITH and smith -> Smith: the model saw names in title case only, and reads
    "SMITH" as a different, unseen spelling. Each word and each part after an apostrophe
    or hyphen starts upper case (O'NEILL -> O'Neill, SMITH-JONES -> Smith-Jones). Mixed
    case is the writer's choice (McDonald, DiMaggio) and stays."""
    if name.isupper() or name.islower():
        return re.sub(r"[^\W\d_]+", lambda word: word[0].capitalize(), name)
    return name


def load_saved(run_dir: Path) -> tuple[NameClassifier, Vocab, list[str]]:
    """The classifier train.py saved in `run_dir`; says how to make it when it is missing."""
    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        raise UserError(f"no trained model at {path}: run `make name_classifier` "
                        f"(python -m {__package__}.train --run-dir {run_dir}) first")
    return load_model(path)


def problem_with(name: str) -> str | None:
    """Why `name` cannot be classified, or None when it can."""
    letters = transliterate(name)
    if not letters:
        return "empty name, nothing to classify"
    if not any(ch.isalpha() for ch in letters):
        return "no letters (only digits, punctuation or symbols), nothing to classify"
    if len(letters) > MAX_LENGTH:
        return f"{len(letters)} characters; surnames here have at most {MAX_LENGTH}"
    return None


def predict(names: list[str], model: NameClassifier, vocab: Vocab, labels: list[str],
            top: int) -> list[str]:
    """One line per name: 'name: language p, language p, ...' or why it was skipped."""
    readable = [name for name in names if problem_with(name) is None]
    encoded = [encode(as_written_in_training(name), vocab, model.config) for name in readable]
    probabilities = torch.softmax(logits_for(model, encoded, vocab.pad_index), dim=1)
    guesses = dict(zip(readable, probabilities, strict=True))
    lines = []
    for name in names:
        problem = problem_with(name)
        if problem is not None:
            lines.append(f"{name!r}: {problem}")
            continue
        p, order = guesses[name].topk(min(top, len(labels)))
        unknown = vocab.unknown(transliterate(as_written_in_training(name)))
        note = f"  (read as unknown: {''.join(unknown)})" if unknown else ""
        ranked = ", ".join(f"{labels[i]} {q:.3f}" for q, i in zip(p.tolist(), order.tolist(),
                                                                 strict=True))
        lines.append(f"{name}: {ranked}{note}")
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    parser = OneLineParser(prog=f"python -m {__spec__.name}",
                           description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("names", nargs="*",
                        help="surnames; none: read one a line from stdin. Names in all "
                             "capitals or all lower case are read in title case (SMITH as "
                             "Smith), as the model was trained on")
    parser.add_argument("--top", type=int, default=3, help="how many languages to show")
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR),
                        help="folder holding the model.pt that train.py wrote")
    args = parser.parse_args(argv)
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    names = args.names
    if not names:
        if sys.stdin.isatty():
            raise UserError("give surnames as arguments, or one a line on stdin")
        names = [line.rstrip("\r\n") for line in sys.stdin]
        if not any(name.strip() for name in names):
            raise UserError("no names given: stdin held none; give surnames as arguments, "
                            "or one a line on stdin")
    model, vocab, labels = load_saved(Path(args.run_dir))
    lines = predict(names, model, vocab, labels, args.top)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    run_main(main)
