"""Commands that answer questions with a trained model (predict, sample): each input gets
its own line, in order; an input the model cannot answer honestly gets a line saying why
instead of a confident wrong answer, and the others are still answered.

    inputs = read_inputs(args.names, "surnames")           # arguments, or stdin lines
    answers = [Answer(name, f"{name}: Irish 0.93", {"top": ...}) or
               Answer(name, refused="no letters, nothing to classify"), ...]
    return report(answers, as_json=args.json)               # 0, or 1 if any was refused

With `--json` every input is one JSON object on its own line: {"input": ..., <fields>}
for an answer, {"input": ..., "refused": reason} for a refusal. A refusal is not an error
of the command: the exit status says 1 once all inputs are answered. A bad flag or an
unreadable file stays a UserError, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.config import UserError
from core.text import shorten


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


def read_inputs(given: Sequence[str], what: str) -> list[str]:
    """The inputs given as arguments, or else one per line of stdin (the line ending
    stripped; an empty line is an input too, and is answered as such)."""
    if given:
        return list(given)
    if sys.stdin is None or sys.stdin.isatty():
        raise UserError(f"give {what} as arguments, or one a line on stdin")
    inputs = [line.rstrip("\r\n") for line in sys.stdin]
    if not inputs:
        raise UserError(f"no {what} given: stdin was empty; give them as arguments, or one a "
                        "line on stdin")
    return inputs


def blank_stdin_lines(answers: Sequence[Answer], given: Sequence[str]) -> None:
    """When the inputs came from stdin (none `given`), a refused blank input is a blank
    line there: say which line, since the printed input itself shows nothing."""
    if given:
        return
    for number, answer in enumerate(answers, 1):
        if answer.refused and not answer.input.strip():
            answer.refused = f"{answer.refused} (line {number} of stdin is blank)"


def refusal_line(answer: Answer) -> str:
    return f"{shorten(answer.input)}: not answered: {answer.refused}"


def report(answers: Sequence[Answer], as_json: bool = False) -> int:
    """Print one line per answer, in order; return the exit status: 1 if any input was
    refused, else 0."""
    for answer in answers:
        if as_json:
            record = ({"input": answer.input, "refused": answer.refused} if answer.refused
                      else {"input": answer.input, **answer.fields})
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(refusal_line(answer) if answer.refused else answer.text)
    refused = sum(answer.refused is not None for answer in answers)
    if refused and not as_json:
        print(f"{refused} of {len(answers)} input(s) not answered", file=sys.stderr)
    return 1 if refused else 0
