"""Write dates as YYYY-MM-DD with the model train.py saved, one per line.

    python -m tasks.date_seq2seq.predict "3rd of March 1998" "1998/3/3"
    printf 'Tue 3 Mar 98\\n03.03.1998\\n' | python -m tasks.date_seq2seq.predict
    python -m tasks.date_seq2seq.predict "the third of March 1998" --plot attention.png

Reads <run-dir>/model.pt (weights, vocabulary and model config, no pickled code). The
model reads what the generator writes (dates.py lists the formats): numeric dates are
day first or year first, never month first, and two-digit years pivot at 30 (98 -> 1998,
29 -> 2029). A date longer than the model's limit, or with a character no training
string had, stops the command with one line saying which; the model would only guess.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import OneLineParser, UserError, run_main
from core.text import Vocab, shorten

from .model import OUTPUT_TOKENS, DateSeq2Seq, load_model, plot_attention, translate

DEFAULT_RUN_DIR = Path("runs") / __package__.rsplit(".", 1)[-1]


def check_readable(texts: list[str], vocab: Vocab, max_length: int) -> None:
    """Raise UserError for the first date the model cannot read."""
    for number, text in enumerate(texts, start=1):
        where = f"date {number} ({shorten(text)})"
        if not text:
            raise UserError(f"date {number} is empty; give one date per argument or line")
        if len(text) > max_length:
            raise UserError(f"{where} has {len(text)} characters; the model reads at most "
                            f"{max_length}")
        unknown = vocab.unknown(text)
        if unknown:
            raise UserError(f"{where} holds {''.join(unknown)!r}, never seen in training; "
                            f"the model knows {''.join(vocab.tokens[1:])!r}")


def read_dates(arguments: list[str]) -> list[str]:
    """The dates from the arguments, or one a line from stdin (blank lines skipped)."""
    if arguments:
        return [text.strip() for text in arguments]
    if sys.stdin.isatty():
        raise UserError("no dates given: give them as arguments, or one a line on stdin")
    texts = [line.strip() for line in sys.stdin]
    texts = [text for text in texts if text]
    if not texts:
        raise UserError("no dates given: stdin was empty; give dates as arguments, or one "
                        "a line on stdin")
    return texts


def check_plot(path: Path, model: DateSeq2Seq) -> None:
    """Refuse a --plot that cannot be drawn before anything is predicted."""
    if model.attention is None:
        raise UserError("--plot: this model has no attention to draw (trained with "
                        "--attention none)")
    if path.suffix.lower() != ".png":
        raise UserError(f"--plot {path}: give a .png file name")
    if not path.parent.is_dir():
        raise UserError(f"--plot {path}: there is no folder {path.parent}")


def main(argv: list[str] | None = None) -> list[str]:
    parser = OneLineParser(prog=f"python -m {__spec__.name}",
                           description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("dates", nargs="*",
                        help="dates as people write them; none: read one a line from stdin")
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR),
                        help="folder holding the model.pt that train.py wrote")
    parser.add_argument("--beam", type=int, default=3,
                        help=f"beam width, 1 to {len(OUTPUT_TOKENS)} (1: greedy decoding)")
    parser.add_argument("--plot", default="",
                        help="PNG file for the attention heatmap of the first date")
    args = parser.parse_args(argv)
    if not 1 <= args.beam <= len(OUTPUT_TOKENS):
        raise UserError(f"--beam must be between 1 and {len(OUTPUT_TOKENS)}, got {args.beam}")
    texts = read_dates(args.dates)
    model, vocab = load_model(Path(args.run_dir) / "model.pt")
    check_readable(texts, vocab, model.config.max_length)
    if args.plot:
        check_plot(Path(args.plot), model)
    outputs, attention = translate(model, texts, vocab, args.beam)
    print("\n".join(outputs))
    if args.plot:
        try:
            plot_attention(attention[0], texts[0], outputs[0], Path(args.plot),
                           f"{texts[0]!r} -> {outputs[0]}")
        except OSError as error:
            raise UserError(f"--plot {args.plot}: cannot write it ({error.strerror})") from None
        print(f"wrote {args.plot}", file=sys.stderr)
    return outputs


if __name__ == "__main__":
    run_main(main)
