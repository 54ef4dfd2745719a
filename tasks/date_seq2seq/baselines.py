"""date_seq2seq's metric, the one every method is scored with, and its baseline that needs
no training: pandas' own parser."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .data import Data
from .model import OUTPUT_LENGTH


def scores(predicted: list[str], truth: list[str]) -> dict[str, float]:
    """exact_match: the share of strings read right; char_accuracy: the share of the 10
    output positions right (a missing character is wrong)."""
    exact = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    chars = np.mean([sum(a == b for a, b in zip(p, t, strict=False)) / OUTPUT_LENGTH
                     for p, t in zip(predicted, truth, strict=True)])
    return {"exact_match": float(exact), "char_accuracy": float(chars)}


def pandas_reads(texts: list[str]) -> list[str]:
    """pandas' guess for each string as YYYY-MM-DD, or "" where it raises."""
    answers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" on every string
        for text in texts:
            try:
                answers.append(pd.to_datetime(text, format="mixed", dayfirst=True)
                               .strftime("%Y-%m-%d"))
            except (ValueError, OverflowError):
                answers.append("")
    return answers


def pandas_scores(data: Data) -> tuple[dict[str, float], list[str]]:
    """The baseline's scores on exactly the model's test strings, a failure to parse
    counting as a refusal; and its answers to the test dates."""
    answers = pandas_reads(data.test_text)
    refused = [answer == "" for answer in pandas_reads(data.test_no_day)]
    return {**scores(answers, data.test_truth),
            "abstain_valid": float(np.mean([answer == "" for answer in answers])),
            "refusal_invalid": float(np.mean(refused))}, answers
