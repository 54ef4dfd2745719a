"""name_generator's data: the course's names files as (name, language) rows, split into
train, validation and test, and encoded for the network and the n-grams alike."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from core.config import UserError
from core.names import SPLIT_SEED, load_names, shrink, stratified_split
from core.text import Vocab

from .model import build_vocab, encode

VALIDATION_SHARE = 0.1

Rows = list[tuple[str, str]]  # (name, language)


def as_rows(frame: pd.DataFrame) -> Rows:
    return list(zip(frame["name"], frame["language"], strict=True))


@dataclass
class Data:
    """The three splits as (name, language) rows and encoded, and what the scores need."""

    train: Rows
    validation: Rows
    test: Rows
    languages: list[str]
    vocab: Vocab
    encoded: dict[str, tuple[list[list[int]], list[int]]]  # split -> (names, languages)
    known_names: set[str]  # every name of the training file, to tell novel samples


def read_data(data_dir: str, dry_run: bool = False) -> Data:
    """The training file gives train and a stratified VALIDATION_SHARE for validation, the
    test file is scored once; the alphabet is every character of both files, so a test
    character that no training name uses still gets a (small) probability where an error
    would end the run (in the real files every test character also occurs in training).
    `dry_run` keeps a few names of each language."""
    train_frame, test_frame, source = load_names(data_dir)
    if dry_run:
        train_frame, test_frame = shrink(train_frame, 30), shrink(test_frame, 10)
    train, validation = (as_rows(f) for f in stratified_split(train_frame, VALIDATION_SHARE,
                                                              SPLIT_SEED))
    train_file, test_file = as_rows(train_frame), as_rows(test_frame)
    languages = sorted({language for _, language in train_file})
    unseen = sorted({language for _, language in test_file} - set(languages))
    if unseen:
        raise UserError(f"the test file has languages the training file lacks: {unseen}")
    vocab = build_vocab([name for name, _ in train_file + test_file])
    index = {language: i for i, language in enumerate(languages)}
    print(f"data ({source}): {len(train)} train, {len(validation)} validation, "
          f"{len(test_file)} test names, {len(languages)} languages, "
          f"{len(vocab)} tokens (characters and <end>)")
    encoded = {split: ([encode(name, vocab) for name, _ in rows],
                       [index[language] for _, language in rows])
               for split, rows in [("train", train), ("validation", validation),
                                   ("test", test_file)]}
    return Data(train, validation, test_file, languages, vocab, encoded,
                {name for name, _ in train_file})


def names_by_language(rows: Rows) -> dict[str, list[str]]:
    """{language: its names, in file order}."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for name, language in rows:
        grouped[language].append(name)
    return dict(grouped)

