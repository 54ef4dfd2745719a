"""Commands that answer questions with a trained model (predict, sample): each input gets
its own line, in order; an input the model cannot answer honestly gets a line saying why
instead of a confident wrong answer, and the others are still answered.

    def answer_batch(names: list[str]) -> list[Answer]:      # one model call per batch
        return [Answer(name, f"{name}: Irish 0.93", {"top": ...}) or
                Answer(name, refused="no letters, nothing to classify"), ...]
    return answer_inputs(args.names, "surnames", answer_batch, as_json=args.json)

The inputs are the arguments, or else stdin's lines, answered as they arrive in batches
of at most BATCH lines (a batch ends sooner when stdin has no more ready), each batch's
lines printed at once: `seq 1 30000 | predict | head -1` answers its first line without
waiting for the last one, and a script can write a line and read its answer.

With `--json` every input is one JSON object on its own line: {"input": ..., <fields>}
for an answer, {"input": ..., "refused": reason} for a refusal. A refusal is not an error
of the command: the exit status says 1 once all inputs are answered. A bad flag or an
unreadable file stays a UserError, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from core.config import UserError
from core.text import shorten

BATCH = 64  # inputs answered by one call of the model at most: enough to batch the
# network's work, few enough that the first answers come at once


@dataclass
class Answer:
    """One input's answer: the line to print and its fields for --json, or the reason it
    was refused."""

    input: str
    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per input (for scripts) instead of text")


def _input_batches(given: Sequence[str], what: str) -> Iterator[list[str]]:
    """The inputs given as arguments (one batch), or else stdin's lines (the line ending
    stripped; an empty line is an input too, and is answered as such) as they arrive: a
    batch ends at BATCH lines, or sooner when stdin has nothing more ready to read."""
    if given:
        return iter([list(given)])
    if sys.stdin is None or sys.stdin.isatty():
        raise UserError(f"give {what} as arguments, or one a line on stdin")
    return _stdin_batches(what)


def _stdin_batches(what: str) -> Iterator[list[str]]:
    batch: list[str] = []
    empty = True
    while line := sys.stdin.readline():  # returns as soon as one line has arrived
        empty = False
        batch.append(line.rstrip("\r\n"))
        if len(batch) == BATCH or not _more_ready(sys.stdin):
            yield batch
            batch = []
    if empty:
        raise UserError(f"no {what} given: stdin was empty; give them as arguments, or one a "
                        "line on stdin")
    if batch:
        yield batch


def _more_ready(stream: TextIO) -> bool:
    """Whether `stream` can be read without waiting (its end counts: the next read returns
    at once). Lines already in its buffer are not seen, so a batch may end early; it waits
    only for a line that has begun to arrive. A stream without a descriptor (a test's
    StringIO) is always ready."""
    try:
        return bool(select.select([stream.fileno()], [], [], 0)[0])
    except (AttributeError, OSError, ValueError):  # no descriptor, or a platform's select
        return True  # that takes only sockets: batches of BATCH lines


def _number_blank_lines(answers: Sequence[Answer], first: int) -> None:
    """A refused blank stdin line shows nothing in the printed input: say which line it
    was (`first` is the line number of the batch's first input)."""
    for number, answer in enumerate(answers, first):
        if answer.refused and not answer.input.strip():
            answer.refused = f"{answer.refused} (line {number} of stdin is blank)"


def answer_inputs(given: Sequence[str], what: str,
                  answer_batch: Callable[[list[str]], list[Answer]],
                  as_json: bool = False) -> int:
    """Answer the inputs (`given`, or stdin's lines) batch by batch with `answer_batch`,
    printing each batch's lines as soon as it is answered; return the exit status: 1 if
    any input was refused, else 0. When a batch gets one answer per input, a refused blank
    stdin line is numbered."""
    lines = answered = refused = 0
    for batch in _input_batches(given, what):
        answers = answer_batch(batch)
        if not given and len(answers) == len(batch):
            _number_blank_lines(answers, lines + 1)
        _print(answers, as_json)
        sys.stdout.flush()  # a pipe's reader gets these lines now, not when the input ends
        lines += len(batch)
        answered += len(answers)
        refused += sum(answer.refused is not None for answer in answers)
    return _status(refused, answered, as_json)


def refusal_line(answer: Answer) -> str:
    return f"{shorten(answer.input)}: not answered: {answer.refused}"


def _print(answers: Sequence[Answer], as_json: bool) -> None:
    for answer in answers:
        if as_json:
            record = ({"input": answer.input, "refused": answer.refused} if answer.refused
                      else {"input": answer.input, **answer.fields})
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(refusal_line(answer) if answer.refused else answer.text)


def _status(refused: int, answered: int, as_json: bool) -> int:
    if refused and not as_json:
        print(f"{refused} of {answered} input(s) not answered", file=sys.stderr)
    return 1 if refused else 0


def report(answers: Sequence[Answer], as_json: bool = False) -> int:
    """Print one line per answer, in order (for a command whose inputs are all known at
    once, as forecast's months); return the exit status: 1 if any input was refused, else
    0."""
    _print(answers, as_json)
    return _status(sum(answer.refused is not None for answer in answers), len(answers),
                   as_json)
