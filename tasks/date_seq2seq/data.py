"""date_seq2seq's strings for one run: the days split three ways, the fixed validation and
test strings, dates and strings that hold no day (dates.py writes them all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.text import Vocab

from .dates import non_dates, split_days, written_once
from .model import input_vocab

VAL_SEED, TEST_SEED = 1, 2  # the formats of the fixed validation and test strings


@dataclass
class Data:
    """The strings of a run: training days, and the fixed validation and test strings,
    dates (text, ISO truth, family) and strings that hold no day (text, kind)."""

    vocab: Vocab
    train_days: list[date]
    val_text: list[str]
    val_truth: list[str]
    test_text: list[str]
    test_truth: list[str]
    test_family: list[str]
    val_no_day: list[str]
    test_no_day: list[str]
    test_no_day_kind: list[str]


def columns(rows: list[tuple[str, ...]]) -> tuple[list[str], ...]:
    """[(text, ISO date, family), ...] -> texts, ISO dates, families (any width)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def make_data(val_size: int, test_size: int, non_date_size: int) -> Data:
    """Disjoint train, validation and test days (dates.split_days); the validation and
    test strings, fixed by their own seeds, and as many strings that hold no day each."""
    train_days, val_days, test_days = split_days(val_size, test_size)
    val_text, val_truth, _ = columns(written_once(val_days, VAL_SEED))
    val_no_day, _ = columns(non_dates("validation", non_date_size, VAL_SEED))
    test_no_day, test_no_day_kind = columns(non_dates("test", non_date_size, TEST_SEED))
    return Data(input_vocab(), train_days, val_text, val_truth,
                *columns(written_once(test_days, TEST_SEED)), val_no_day, test_no_day,
                test_no_day_kind)
