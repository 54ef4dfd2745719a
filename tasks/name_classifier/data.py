"""name_classifier's data: the course's names files as train, validation and test splits
of (name, language index)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.config import UserError
from core.names import SPLIT_SEED, load_names, shrink, stratified_split

VALIDATION_SHARE = 0.1


@dataclass
class Split:
    """One split's names and their languages' indices."""

    names: list[str]
    y: np.ndarray


def read_data(data_dir: str, dry_run: bool = False
              ) -> tuple[dict[str, Split], list[str], np.ndarray]:
    """The train, validation and test splits, the sorted languages, and which test names
    the training file never holds (under any language): what a classifier makes of a
    spelling it has not seen, free of the names the course's split leaks. Validation is a
    stratified VALIDATION_SHARE of the training file; `dry_run` keeps a few names of each
    language."""
    train_file, test_file, source = load_names(data_dir)
    if dry_run:
        train_file, test_file = shrink(train_file, 30), shrink(test_file, 10)
    train, validation = stratified_split(train_file, VALIDATION_SHARE, SPLIT_SEED)
    labels = sorted(train_file["language"].unique())
    unseen = sorted(set(test_file["language"]) - set(labels))
    if unseen:
        raise UserError(f"the test data has languages the training data lacks: {unseen}")
    index = {language: i for i, language in enumerate(labels)}
    print(f"data ({source}): {len(train)} train, {len(validation)} validation, "
          f"{len(test_file)} test names, {len(labels)} languages")
    splits = {split: Split(frame["name"].tolist(), frame["language"].map(index).to_numpy())
              for split, frame in [("train", train), ("validation", validation),
                                   ("test", test_file)]}
    unseen_rows = ~test_file["name"].isin(set(train_file["name"])).to_numpy()
    return splits, labels, unseen_rows
