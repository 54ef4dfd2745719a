"""The surnames data of the two name tasks (name_classifier, name_generator):
`Name,Language` rows without a header in names_train.csv and names_test.csv (plain or
gzipped, fetched by name with their checksums), or a folder of per-language <Language>.txt
files as in the PyTorch tutorial; the least of it a task can train on (each check one line
naming the file), a stratified held-out split, and a dry run's shrink."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import UserError
from core.data import fetch
from core.text import shorten

TRAIN_FILE, TEST_FILE = "names_train.csv", "names_test.csv"
TXT_TEST_SHARE = 1 / 3  # the course's split holds a third of the tutorial's names for test
SPLIT_SEED = 0  # the data split stays fixed across --seed, so seeds vary only the model
# A language needs a name to train on and one to choose the epoch on (validation); the
# txt-folder form also holds a third out for test.
MIN_PER_LANGUAGE = 2
MIN_PER_TXT_FILE = 3


def read_csv_names(path: Path) -> pd.DataFrame:
    """`Name,Language` rows without a header (plain or gzipped) -> DataFrame(name, language)."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                if not row or (number == 1 and [c.strip().lower() for c in row]
                               == ["name", "language"]):  # a header line, if one was added
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise UserError(f"{path} line {number}: expected 'Name,Language', "
                                    f"got {shorten(','.join(row))!r}")
                rows.append((row[0].strip(), row[1].strip()))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not rows:
        raise UserError(f"{path} holds no names: it needs `Name,Language` rows, at least "
                        f"{MIN_PER_LANGUAGE} per language")
    return pd.DataFrame(rows, columns=["name", "language"])


def check_enough(frame: pd.DataFrame, where: Path | str, minimum: int) -> None:
    """A UserError naming the first language of the training file with fewer than
    `minimum` names, which the validation split would leave without one."""
    counts = frame["language"].value_counts()
    few = counts[counts < minimum]
    if len(few):
        language, count = few.index[0], int(few.iloc[0])
        raise UserError(f"{where}: language {shorten(language)} has {count} name(s); the "
                        f"name tasks need at least {minimum} per language (one to train on, "
                        "one for validation)")


def read_txt_folder(folder: Path) -> pd.DataFrame:
    """One <Language>.txt per language, one name a line (the PyTorch tutorial's layout)."""
    frames = []
    for path in sorted(folder.glob("*.txt")):
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path}: {error}") from None
        names = [name for name in names if name]
        if len(names) < MIN_PER_TXT_FILE:
            state = "is empty" if not names else f"holds {len(names)} name(s)"
            raise UserError(f"{path} {state}: each <Language>.txt needs at least "
                            f"{MIN_PER_TXT_FILE} names, one a line (to train on, for "
                            "validation and for test)")
        frames.append(pd.DataFrame({"name": names, "language": [path.stem] * len(names)}))
    return pd.concat(frames, ignore_index=True)


def stratified_split(frame: pd.DataFrame, share: float,
                     seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, held out): `share` of each language held out (at least one name of a
    language that has two or more), the same for every run with the same seed."""
    rng = np.random.default_rng(seed)
    held = []
    for _, group in frame.groupby("language", sort=True):
        count = round(share * len(group)) if len(group) > 1 else 0
        held += list(rng.permutation(group.index.to_numpy())[:max(count, min(1, len(group) - 1))])
    mask = frame.index.isin(held)
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def load_names(data_dir: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train file, test file, where they came from). The txt-folder form has no test
    file, so a stratified third is held out with a fixed seed."""
    if not data_dir:
        train = read_csv_names(fetch(TRAIN_FILE))
        check_enough(train, TRAIN_FILE, MIN_PER_LANGUAGE)
        return train, read_csv_names(fetch(TEST_FILE)), "fetched"
    folder = Path(data_dir)
    if not folder.is_dir():
        raise UserError(f"--data-dir {folder} is not a folder")
    for suffix in ("", ".gz"):
        train, test = folder / (TRAIN_FILE + suffix), folder / (TEST_FILE + suffix)
        if train.is_file() and test.is_file():
            train_frame = read_csv_names(train)
            check_enough(train_frame, train, MIN_PER_LANGUAGE)
            return train_frame, read_csv_names(test), f"{train.name}, {test.name}"
    if any(folder.glob("*.txt")):
        train, test = stratified_split(read_txt_folder(folder), TXT_TEST_SHARE, SPLIT_SEED)
        return train, test, f"*.txt, a stratified third held out for test (seed {SPLIT_SEED})"
    raise UserError(f"--data-dir {folder} holds neither {TRAIN_FILE} and {TEST_FILE} "
                    "(or .csv.gz) nor per-language *.txt files")


def shrink(frame: pd.DataFrame, per_language: int) -> pd.DataFrame:
    """The first `per_language` names of each language: a dry run's tiny data set."""
    return frame.groupby("language", sort=False).head(per_language).reset_index(drop=True)
