"""Write dates as YYYY-MM-DD with the model train.py saved, one line per input, in order.

    python -m tasks.date_seq2seq.predict "3rd of March 1998" "1998/3/3"
    printf 'Tue 3 Mar 98\\n03.03.1998\\n' | python -m tasks.date_seq2seq.predict
    python -m tasks.date_seq2seq.predict "29 February 2023" hello --verbose
    python -m tasks.date_seq2seq.predict "the third of March 1998" --plot attention.png

Reads model.pt (weights, vocabulary, model config and refusal threshold, no pickled
code) from --run-dir, or else from the newest trained run. The model reads what the
generator writes (dates.py lists the formats): numeric dates are day first or year
first, never month first, and two-digit years pivot at 30 (98 -> 1998, 29 -> 2029).

It only ever writes a day that exists (the decoder is constrained to the calendar), and
refuses an input when the probability of its answer is under the threshold train.py
chose on validation: a day that does not exist ("31/04/2020"), or a string with no date
("hello"). An empty input, one longer than the model reads, or one with a character no
training string had is refused too. A refused input gets its own line saying why, the
others are still answered, and the exit status is 1; --json prints one JSON object per
input. Dates read from stdin are answered as they arrive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.answers import Answer, add_json_flag, answer_inputs
from core.config import OneLineParser, UserError, run_main, task_of
from core.run import trained_run
from core.train import set_threads

from .model import OUTPUT_TOKENS, TrainedModel, load_model, plot_attention, translate

TASK = task_of(__package__)


def unreadable(text: str, trained: TrainedModel) -> str | None:
    """Why the model cannot read `text` at all, or None."""
    if not text:
        return "empty: no characters to read"
    limit = trained.model.config.max_length
    if len(text) > limit:
        return f"{len(text)} characters; the model reads at most {limit}"
    unknown = trained.vocab.unknown(text)
    if unknown:
        return (f"holds {''.join(unknown)!r}, never seen in training; the model knows "
                f"{''.join(trained.vocab.tokens[1:])!r}")
    return None


def answer(text: str, date: str, probability: float, threshold: float,
           verbose: bool) -> Answer:
    """The model's date, or a refusal when its probability is under the threshold."""
    shown = f"probability {probability:.4g}"
    if probability < threshold:
        guess = f"; its best reading, {date}, has {shown}" if verbose else ""
        return Answer(text, refused=f"no date the model is sure of (probability "
                                    f"{probability:.2g} < threshold {threshold:.2g}){guess}")
    return Answer(text, f"{date}  {shown}" if verbose else date,
                  {"date": date, "probability": probability})


def check_plot(path: Path, trained: TrainedModel) -> None:
    """Refuse a --plot that cannot be drawn before anything is predicted."""
    if trained.model.attention is None:
        raise UserError("--plot: this model has no attention to draw (trained with "
                        "--attention none)")
    if path.suffix.lower() != ".png":
        raise UserError(f"--plot {path}: give a .png file name")
    if not path.parent.is_dir():
        raise UserError(f"--plot {path}: there is no folder {path.parent}")


def make_parser() -> OneLineParser:
    parser = OneLineParser(prog=f"python -m {__spec__.name}",
                           description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("dates", nargs="*",
                        help="dates as people write them; none: read one a line from stdin")
    parser.add_argument("--run-dir", default="",
                        help="folder holding the model.pt that train.py wrote; empty: the "
                             f"newest trained run under runs/{TASK}*")
    parser.add_argument("--beam", type=int, default=0,
                        help=f"beam width, 1 to {len(OUTPUT_TOKENS)} (1: greedy decoding); "
                             "0: the width the refusal threshold was chosen with")
    parser.add_argument("--verbose", action="store_true",
                        help="print each answer's probability (and a refused input's best "
                             "reading)")
    parser.add_argument("--plot", default="",
                        help="PNG file for the attention heatmap of the first date answered")
    add_json_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if not 0 <= args.beam <= len(OUTPUT_TOKENS):
        raise UserError(f"--beam must be between 0 and {len(OUTPUT_TOKENS)}, got {args.beam}")
    trained = load_model(trained_run(TASK, args.run_dir) / "model.pt")
    set_threads(0, trained.model)  # small batches: one thread for a small model, as in training
    if args.plot:
        check_plot(Path(args.plot), trained)
    plotted = []  # (text, date, attention) of the first date answered, for --plot

    def answer_batch(texts: list[str]) -> list[Answer]:
        texts = [text.strip() for text in texts]
        problems = [unreadable(text, trained) for text in texts]
        readable = [text for text, problem in zip(texts, problems, strict=True) if not problem]
        dates, probabilities, attention = translate(trained.model, readable, trained.vocab,
                                                    args.beam or trained.beam)
        answers, read = [], iter(zip(readable, dates, probabilities, attention, strict=True))
        for text, problem in zip(texts, problems, strict=True):
            if problem:
                answers.append(Answer(text, refused=problem))
                continue
            _, date, probability, weights = next(read)
            answers.append(answer(text, date, probability, trained.threshold, args.verbose))
            if not plotted and not answers[-1].refused:
                plotted.append((text, date, weights))
        return answers

    status = answer_inputs(args.dates, "dates", answer_batch, as_json=args.json)
    if args.plot and plotted:
        text, date, weights = plotted[0]
        try:
            plot_attention(weights, text, date, Path(args.plot), f"{text!r} -> {date}")
        except OSError as error:
            raise UserError(f"--plot {args.plot}: cannot write it ({error.strerror})") from None
        print(f"wrote {args.plot}", file=sys.stderr)
    elif args.plot:
        print(f"--plot {args.plot}: not drawn, no input was answered", file=sys.stderr)
    return status

if __name__ == "__main__":
    run_main(main)
