"""Which languages a surname most likely comes from, by the model train.py saved.

    python -m tasks.name_classifier.predict Papadopoulos Yoshida Lewandowski --top 3
    printf 'Müller\\nTanaka\\n' | python -m tasks.name_classifier.predict --json

Reads model.pt (weights, vocabulary, labels and model config, no pickled code) from
--run-dir, or else from the newest trained runs/name_classifier*/, so it needs neither the
data files nor the training flags. Each name gets one line, in order (names on stdin are
answered as they arrive); a name the model cannot read (empty, no letters, too long) gets
a line saying why instead of a guess, and the exit status is then 1. Each name is read as
the model was trained (its --case and --accents, saved in model.pt): with the default
--case title, a name in all capitals or all lower case is read in title case (SMITH as
Smith, O'NEILL as O'Neill), as the training names are written, and mixed case (McDonald)
is kept; a --case lower model reads every name in lower case.
"""

from __future__ import annotations

import argparse

import torch

from core.answers import Answer, add_json_flag, answer_inputs
from core.config import OneLineParser, UserError, run_main, task_of
from core.name_model import (
    NameClassifier,
    as_trained,
    encode,
    load_model,
    logits_for,
    normalise,
    transliterate,
)
from core.run import trained_run
from core.text import Vocab
from core.train import set_threads

TASK = task_of(__package__)
MAX_LENGTH = 40  # the longest training name has 19 characters; far beyond is not a surname


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
            top: int) -> list[Answer]:
    """One answer per name, 'name: language p, language p, ...', or why it was refused."""
    readable = [name for name in names if problem_with(name) is None]
    encoded = [encode(as_trained(name, model.config), vocab, model.config) for name in readable]
    probabilities = torch.softmax(logits_for(model, encoded, vocab.pad_index), dim=1)
    guesses = iter(probabilities)
    answers = []
    for name in names:
        problem = problem_with(name)
        if problem is not None:
            answers.append(Answer(name, refused=problem))
            continue
        p, order = next(guesses).topk(min(top, len(labels)))
        ranked = [(labels[i], q) for q, i in zip(p.tolist(), order.tolist(), strict=True)]
        unknown = "".join(vocab.unknown(normalise(as_trained(name, model.config),
                                                  model.config)))
        note = f"  (read as unknown: {unknown})" if unknown else ""
        text = f"{name}: " + ", ".join(f"{language} {q:.3f}" for language, q in ranked)
        fields = {"top": [{"language": language, "probability": round(q, 4)}
                          for language, q in ranked], "unknown": unknown}
        answers.append(Answer(name, text + note, fields))
    return answers


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog=f"python -m {__spec__.name}",
                           description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("names", nargs="*",
                        help="surnames; none: read one a line from stdin. Each is read as "
                             "the model was trained (its --case and --accents): with --case "
                             "title, names in all capitals or all lower case are read in "
                             "title case (SMITH as Smith)")
    parser.add_argument("--top", type=int, default=3, help="how many languages to show")
    parser.add_argument("--run-dir", default="",
                        help=f"folder holding the model.pt that train.py wrote; empty: the "
                             f"newest trained runs/{TASK}*/")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run_dir = trained_run(TASK, args.run_dir)
    model, vocab, labels = load_model(run_dir / "model.pt",
                                      f"python -m {__package__}.train --run-dir {run_dir}")
    set_threads(0, model)  # small batches of names: one thread for a small model, as in training
    return answer_inputs(args.names, "names",
                         lambda names: predict(names, model, vocab, labels, args.top),
                         as_json=args.json)


if __name__ == "__main__":
    run_main(main)
