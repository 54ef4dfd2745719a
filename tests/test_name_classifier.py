"""tasks/name_classifier: padding and packing change nothing, the saved model reloads
exactly, odd names get answers, and the script runs end to end on tiny fixtures (and on
the real files through the mirror, when there is one)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from core import names
from core.config import UserError, run_main
from core.data import MIRROR_ENV
from core.name_model import (
    ModelConfig,
    NameClassifier,
    as_trained,
    build_vocab,
    encode,
    logits_for,
    normalise,
    save_model,
    transliterate,
)
from core.name_model import load_model as core_load_model
from core.text import UNK
from tasks.name_classifier import baselines, train
from tasks.name_classifier.predict import main as predict_main
from tasks.name_classifier.predict import predict, problem_with
from tests.helpers import one_line_error

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TXT_DIR = FIXTURES / "names_txt"
MAKE = "python -m tasks.name_classifier.train"


def load_model(path: Path):
    return core_load_model(path, MAKE)


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --data-dir with the tiny fixture under the real files' names (the fixture is
    committed under other names, so it can never be mistaken for the real dataset)."""
    folder = tmp_path_factory.mktemp("names_csv")
    for split in ("train", "test"):
        shutil.copyfile(FIXTURES / f"names_tiny_{split}.csv", folder / f"names_{split}.csv")
    return folder


NAMES = ["O'Neill", "Li", "Abramovich", "Nguyen", "Schmidt", "Yamamoto-Watanabe", "Ng"]
LABELS = ["English", "German", "Irish"]


def model_config(**changes) -> ModelConfig:
    settings = dict(code_points=False, boundaries=True, cell="gru", impl="torch",
                    embedding_dim=8, hidden_size=6, num_layers=1, dropout=0.0,
                    pooling="final+max", conv_channels=4)
    return ModelConfig(**{**settings, **changes})


def subprocess_run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("changes", [
    {},
    {"impl": "core"},
    {"cell": "lstm", "num_layers": 2},
    {"cell": "rnn", "impl": "core", "pooling": "final", "conv_channels": 0},
    {"code_points": True, "boundaries": False, "num_layers": 2, "pooling": "final",
     "conv_channels": 0},  # the course's model
])
def test_padded_batch_gives_the_logits_of_each_name_alone(changes: dict) -> None:
    torch.manual_seed(0)
    config = model_config(**changes)
    vocab = build_vocab(NAMES, config)
    model = NameClassifier(len(vocab), len(LABELS), config, vocab.pad_index).eval()
    encoded = [encode(name, vocab, config) for name in NAMES]
    batched = logits_for(model, encoded, vocab.pad_index)
    alone = torch.cat([logits_for(model, [e], vocab.pad_index) for e in encoded])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


def test_saved_model_reloads_and_predicts_identically(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = model_config()
    vocab = build_vocab(NAMES, config)
    model = NameClassifier(len(vocab), len(LABELS), config, vocab.pad_index).eval()
    save_model(tmp_path / "model.pt", model, vocab, LABELS)
    loaded, loaded_vocab, loaded_labels = load_model(tmp_path / "model.pt")
    assert loaded_labels == LABELS and loaded_vocab.tokens == vocab.tokens
    encoded = [encode(name, vocab, config) for name in NAMES]
    torch.testing.assert_close(logits_for(loaded, encoded, vocab.pad_index),
                               logits_for(model, encoded, vocab.pad_index), rtol=0, atol=0)
    assert predict(NAMES, loaded, loaded_vocab, LABELS, 2) == predict(NAMES, model, vocab,
                                                                       LABELS, 2)


def test_unreadable_model_file_says_permission_not_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.pt").write_bytes(b"anything")
    def refuse(*args, **kwargs):  # as open() does without read permission (tests run as root)
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(UserError, match="Permission denied") as error:
        load_model(tmp_path / "model.pt")
    assert "damaged" not in str(error.value)


def test_broken_model_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        load_model(tmp_path / "model.pt")


def test_accents_are_dropped_and_unknown_letters_map_to_unk() -> None:
    assert transliterate(" Müller ") == "Muller"
    assert transliterate("Nguyễn") == "Nguyen"
    assert transliterate("Dvořák") == "Dvorak"
    for config in (model_config(), model_config(code_points=True, boundaries=False)):
        vocab = build_vocab(["Muller", "Dang"], config)
        indices = encode("Đặng", vocab, config)  # Đ has no decomposition
        assert vocab.unk_index in indices
        assert vocab.decode(indices).replace("<s>", "").replace("</s>", "") == UNK + "ang"
    course = model_config(code_points=True, boundaries=False)
    assert encode("Ab", build_vocab([], course), course) == [ord("A"), ord("b")]


def test_keep_accents_keeps_the_letter_however_it_was_typed() -> None:
    keep = model_config(accents="keep")
    assert normalise(" Müller ", keep) == "Müller"
    assert normalise("Mu\u0308ller", keep) == "Müller"  # u + combining diaeresis: one letter
    vocab = build_vocab(["Müller", "Muller"], keep)
    assert "ü" in vocab.tokens
    assert encode("Müller", vocab, keep) != encode("Muller", vocab, keep)
    assert normalise("Müller", model_config()) == "Muller"  # the surname tasks' default


def test_a_lower_case_model_reads_input_as_lower_case() -> None:
    """A model trained with --case lower never sees a capital, so predict must not
    title-case what is typed (the default --case title does, as names are so written)."""
    lower, title = model_config(case="lower"), model_config()
    assert normalise("Haus", lower) == "haus" and normalise("Haus", title) == "Haus"
    assert as_trained("house", title) == "House" and as_trained("O'NEILL", title) == "O'Neill"
    assert as_trained("McDonald", title) == "McDonald"
    assert as_trained("house", model_config(case="keep")) == "house"
    vocab = build_vocab(["haus", "house"], lower)
    model = NameClassifier(len(vocab), len(LABELS), lower, vocab.pad_index)
    for typed in ("house", "House", "HOUSE"):
        assert predict([typed], model, vocab, LABELS, top=1)[0].fields["unknown"] == ""
    # the same vocabulary read by a title-case model: the capital it adds is unknown
    titled = NameClassifier(len(vocab), len(LABELS), title, vocab.pad_index)
    assert predict(["house"], titled, vocab, LABELS, top=1)[0].fields["unknown"] == "H"


def test_case_and_accents_are_saved_in_model_pt(tmp_path: Path) -> None:
    config = model_config(case="lower", accents="keep")
    vocab = build_vocab(["müller"], config)
    save_model(tmp_path / "model.pt", NameClassifier(len(vocab), 2, config), vocab, ["A", "B"])
    loaded, _, _ = load_model(tmp_path / "model.pt")
    assert (loaded.config.case, loaded.config.accents) == ("lower", "keep")


def test_odd_inputs_get_a_reason_instead_of_a_guess() -> None:
    assert problem_with("") and problem_with("   ")
    assert "no letters" in problem_with("1234-56")
    assert "characters" in problem_with("x" * 500)
    assert problem_with("Müller") is None and problem_with("O'Neill") is None
    torch.manual_seed(0)
    config = model_config()
    vocab = build_vocab(NAMES, config)
    model = NameClassifier(len(vocab), len(LABELS), config, vocab.pad_index).eval()
    answers = predict(["", "42", "Müller", "Đặng"], model, vocab, LABELS, 5)
    assert "empty" in answers[0].refused and "no letters" in answers[1].refused
    assert answers[2].refused is None and answers[2].text.startswith("Müller: ")
    assert answers[2].text.count(",") == len(LABELS) - 1 and len(answers[2].fields["top"]) == 3
    assert "unknown" in answers[3].text and answers[3].fields["unknown"] == "Đ"


def test_stratified_split_keeps_every_language_and_is_fixed(csv_dir: Path) -> None:
    frame = names.read_csv_names(csv_dir / "names_train.csv")
    rest, held = names.stratified_split(frame, 0.2, seed=0)
    assert len(rest) + len(held) == len(frame)
    assert not set(rest["name"]) & set(held["name"])
    assert set(held["language"]) == set(rest["language"]) == set(frame["language"])
    again = names.stratified_split(frame, 0.2, seed=0)[1]
    pd.testing.assert_frame_equal(held, again)


def test_bad_csv_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "names_train.csv").write_text("Smith,English\nJones\n")
    with pytest.raises(UserError, match="line 2"):
        names.read_csv_names(tmp_path / "names_train.csv")
    with pytest.raises(UserError, match="neither"):
        names.load_names(str(tmp_path))


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory, csv_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("name_classifier")
    done = subprocess_run("tasks.name_classifier.train", "--dry-run", "--threads", "1",
                          "--data-dir", str(csv_dir), "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    return run_dir


def test_dry_run_writes_the_artefacts(dry_run: Path) -> None:
    metrics = json.loads((dry_run / "metrics.json").read_text())
    assert metrics["task"] == "name_classifier"
    for method in ("model", "majority", "ngram_linear"):
        assert set(metrics["test"][method]) >= {"accuracy", "macro_f1", "balanced_accuracy",
                                                "accuracy_unseen"}
    assert set(metrics["config"]["ngram_linear_chosen"]) == {"l2", "iterations",
                                                             "validation_accuracy"}
    table = pd.read_csv(dry_run / "per_language.csv")
    assert list(table.columns) == ["language", "support", "precision", "recall", "f1",
                                   "ngram_linear_precision", "ngram_linear_recall",
                                   "ngram_linear_f1"]
    for name in ("confusion.png", "training_curve.png", "model.pt", "seed0/best.pt",
                 "seed0/last.pt", "seed0/history.csv"):
        assert (dry_run / name).is_file(), name


def test_predict_reads_the_saved_model_from_arguments_and_stdin(
        dry_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess_run("tasks.name_classifier.predict", "Nguyen", "Müller", "", "...",
                          "x" * 100, "Tanaka", "--top", "2", "--run-dir", str(dry_run))
    assert done.returncode == 1, done.stderr  # some names refused, the others answered
    lines = done.stdout.splitlines()
    assert len(lines) == 6 and lines[0].startswith("Nguyen: ") and lines[0].count(",") == 1
    assert lines[1].startswith("Müller: ") and lines[5].startswith("Tanaka: ")
    assert "empty" in lines[2] and "no letters" in lines[3] and "characters" in lines[4]
    assert done.stderr.strip() == "3 of 6 input(s) not answered"
    monkeypatch.setattr(sys, "stdin", io.StringIO("Nguyen\nTanaka\n"))
    assert predict_main(["--run-dir", str(dry_run)]) == 0


def test_predict_json_is_one_object_per_name_in_order(dry_run: Path) -> None:
    done = subprocess_run("tasks.name_classifier.predict", "--json", "--run-dir",
                          str(dry_run), stdin="Nguyen\n42\nSchmidt\n")
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["input"] for r in records] == ["Nguyen", "42", "Schmidt"]
    assert len(records[0]["top"]) == 3 and "no letters" in records[1]["refused"]


def test_predict_into_a_closed_pipe_ends_quietly(dry_run: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(f"seq -f 'Smith%g' 1 30000 | {sys.executable} -m "
                          f"tasks.name_classifier.predict --run-dir {dry_run} | head -1",
                          shell=True, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.startswith("Smith1: ") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_same_seed_gives_the_same_baselines(dry_run: Path, csv_dir: Path,
                                            tmp_path: Path) -> None:
    again = train.main(["--dry-run", "--threads", "1", "--data-dir", str(csv_dir),
                        "--run-dir", str(tmp_path)])
    first = json.loads((dry_run / "metrics.json").read_text())["test"]
    for method in ("majority", "ngram_linear"):
        assert again[method] == first[method]


def test_tfidf_rows_have_unit_length_and_common_grams_weigh_least() -> None:
    features = baselines.TfidfGrams(["Abe", "Abel", "Li"])
    assert features.idf[features.index["<"]] == pytest.approx(1.0)  # in every name
    assert features.idf[features.index["Abe"]] < features.idf[features.index["Li"]]
    ids, offsets, weights = features(["Abe", "Lia", "zzz"])
    rows = torch.tensor_split(weights, offsets[1:])
    for row in rows:
        torch.testing.assert_close(row.norm(), torch.tensor(1.0))
    assert len(rows[2]) == 2  # "zzz": only < and > are training n-grams


def exits_with_one_line(main, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run `main` as `core.config.run` does; check exit status 2 and return stderr."""
    with pytest.raises(SystemExit) as stopped:
        run_main(lambda: main(argv))
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1
    return error


def test_missing_model_says_which_command_makes_it(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    error = exits_with_one_line(predict_main, ["Nguyen", "--run-dir", str(tmp_path)], capsys)
    assert "make name_classifier" in error


def test_gzipped_files_and_txt_folder_train(tmp_path: Path, csv_dir: Path) -> None:
    for name in ("names_train.csv", "names_test.csv"):
        with open(csv_dir / name, "rb") as src, gzip.open(tmp_path / (name + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    for data_dir in (tmp_path, TXT_DIR):
        test = train.main(["--dry-run", "--epochs", "1", "--threads", "1", "--hidden-size", "8",
                           "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "run"),
                           "--overwrite"])
        assert set(test) == {"model", "majority", "ngram_linear"}


def test_bad_data_dir_is_one_clear_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    argv = ["--dry-run", "--data-dir", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path)]
    assert "not a folder" in exits_with_one_line(train.main, argv, capsys)


def test_data_that_cannot_train_says_what_it_lacks(tmp_path: Path, csv_dir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(csv_dir / "names_test.csv", data / "names_test.csv")
    argv = ["--dry-run", "--data-dir", str(data), "--run-dir", str(tmp_path / "run")]
    (data / "names_train.csv").write_text("Name,Language\n")  # a header line only
    assert "holds no names" in exits_with_one_line(train.main, argv, capsys)
    (data / "names_train.csv").write_text("Smith,English\nJones,English\nAbe,Japanese\n")
    error = exits_with_one_line(train.main, argv, capsys)
    assert "'Japanese' has 1 name(s)" in error and "at least 2 per language" in error
    txt = tmp_path / "txt"
    shutil.copytree(TXT_DIR, txt)
    (txt / "Greek.txt").write_text("")
    argv = ["--dry-run", "--data-dir", str(txt), "--run-dir", str(tmp_path / "run")]
    error = exits_with_one_line(train.main, argv, capsys)
    assert f"{txt / 'Greek.txt'} is empty" in error and "at least 3 names" in error


@pytest.mark.skipif(not all((Path(os.environ.get(MIRROR_ENV, "")) / name).is_file()
                         for name in ("names_train.csv", "names_test.csv")),
                    reason=f"real names data: no names_train.csv and names_test.csv in "
                           f"{MIRROR_ENV} ({os.environ.get(MIRROR_ENV, 'unset')})")
def test_real_data_dry_run_through_the_mirror(tmp_path: Path) -> None:
    done = subprocess_run("tasks.name_classifier.train", "--dry-run", "--threads", "1",
                          "--run-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "18 languages" in done.stdout
    assert (tmp_path / "metrics.json").is_file()


def test_keep_accents_with_code_points_is_one_line(capsys: pytest.CaptureFixture) -> None:
    error = one_line_error(train.main, ["--preset", "course", "--accents", "keep",
                                        "--dry-run"], capsys)
    assert "--accents keep needs a vocabulary" in error
