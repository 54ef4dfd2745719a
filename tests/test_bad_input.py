"""Issue 14, "every bad input is one clear line": char_transduce's --pairs files and strings,
and name_classifier's model.pt and predict command line. (CSV and dataset-mirror cases
live in test_series.py and test_data_fetch.py.)"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import UserError
from core.name_model import ModelConfig, NameClassifier, build_vocab, save_model
from core.name_model import load_model as core_load_model
from core.text import shorten
from tasks.char_transduce import train as char_transduce
from tasks.name_classifier.predict import predict

REPO = Path(__file__).resolve().parent.parent
TRAIN_COMMAND = "python -m tasks.name_classifier.train"
NAMES = ["Smith", "O'Neill", "Schmidt", "Nguyen", "Tanaka", "Smith-Jones"]
LABELS = ["English", "Irish", "German", "Vietnamese", "Japanese"]


def load_model(path: Path):
    return core_load_model(path, f"{TRAIN_COMMAND} --run-dir {path.parent}")


# ---- core.text.shorten


def test_shorten_quotes_short_text_whole_and_cuts_long_text() -> None:
    assert shorten("hello") == "'hello'"
    assert shorten("x" * 41) == "'" + "x" * 40 + "'… (41 characters)"
    assert shorten("ab\tc", limit=2) == "'ab'… (4 characters)"


# ---- char_transduce read_pairs


def pairs_from(tmp_path: Path, text: str, encoding: str = "utf-8") -> list[tuple[str, str]]:
    path = tmp_path / "pairs.tsv"
    path.write_text(text, encoding=encoding)
    return char_transduce.read_pairs(char_transduce.Config(pairs=str(path)))


def test_pairs_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    assert pairs_from(tmp_path, "hello\tohlol\n", encoding="utf-8-sig") == [("hello", "ohlol")]


def test_decomposed_accents_count_as_one_character(tmp_path: Path) -> None:
    decomposed, composed = "cafe\u0301", "caf\u00e9"  # e + combining acute, and é
    assert pairs_from(tmp_path, f"{decomposed}\tabcd\n") == [(composed, "abcd")]
    config = char_transduce.Config(src="abcd", tgt=decomposed)
    assert char_transduce.read_pairs(config) == [("abcd", composed)]


@pytest.mark.parametrize("text, message", [
    ("a" * 5000 + "\t" + "b" * 10 + "\n", r"source 'a{40}'… \(5000 characters\) has 5000"),
    ("x" * 5000 + "\n", r"expected src<TAB>tgt, got 'x{40}'… \(5000 characters\)"),
])
def test_long_strings_are_shortened_in_messages(tmp_path: Path, text: str,
                                                message: str) -> None:
    with pytest.raises(UserError, match=message) as error:
        pairs_from(tmp_path, text)
    assert len(str(error.value)) < 300


# ---- name_classifier model.pt


def small_model(tmp_path: Path) -> Path:
    """A model.pt as train.py writes it, from an untrained model (the weights only need to
    be fixed, not good); big enough that 1000 bytes fit inside one weight tensor."""
    torch.manual_seed(0)
    config = ModelConfig(code_points=False, boundaries=True, cell="gru", impl="torch",
                         embedding_dim=16, hidden_size=32, num_layers=1, dropout=0.0,
                         pooling="final+max", conv_channels=4)
    vocab = build_vocab(NAMES, config)
    model = NameClassifier(len(vocab), len(LABELS), config, vocab.pad_index).eval()
    path = tmp_path / "model.pt"
    save_model(path, model, vocab, LABELS, seed=0)
    return path


def load_error(path: Path) -> str:
    """load_model's message for `path`, checked to be one line naming the file and the
    command that writes a new model."""
    with pytest.raises(UserError) as error:
        load_model(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and TRAIN_COMMAND in message
    return message


def test_saved_model_round_trips(tmp_path: Path) -> None:
    model, vocab, labels = load_model(small_model(tmp_path))
    assert labels == LABELS and not model.training


def test_empty_model_file_says_it_is_empty(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"")
    assert "empty (0 bytes)" in load_error(tmp_path / "model.pt")


def test_random_bytes_are_one_line_not_torchs_advice(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(os.urandom(3000))
    message = load_error(tmp_path / "model.pt")
    assert "not a model file torch can load" in message and "weights_only" not in message


def test_foreign_checkpoint_names_what_it_lacks(tmp_path: Path) -> None:
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, tmp_path / "model.pt")
    assert "lacks 'vocab', 'labels', 'config'" in load_error(tmp_path / "model.pt")


def test_file_without_checksum_is_refused(tmp_path: Path) -> None:
    path = small_model(tmp_path)
    saved = torch.load(path, weights_only=True)
    del saved["sha256"]
    torch.save(saved, path)
    assert "no checksum" in load_error(path)


def test_flipped_bytes_in_the_weights_fail_the_checksum(tmp_path: Path) -> None:
    path = small_model(tmp_path)
    weights = torch.load(path, weights_only=True)["model"]["rnn.weight_hh_l0"]
    data = bytearray(path.read_bytes())
    start = bytes(data).find(weights.numpy().tobytes())  # the tensor's bytes, as stored
    assert start >= 0 and weights.numel() * 4 > 2000
    for offset in range(start, start + 2000, 2):  # 1000 bytes inside one weight matrix
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "is corrupt: checksum mismatch" in load_error(path)


# ---- name_classifier predict


def test_capitals_and_lower_case_read_as_the_title_case_names_trained_on(
        tmp_path: Path) -> None:
    model, vocab, labels = load_model(small_model(tmp_path))
    answers = predict(["SMITH", "smith", "Smith", "O'NEILL", "O'Neill"], model, vocab, labels,
                      3)
    scores = [answer.text.split(": ", 1)[1] for answer in answers]
    assert scores[0] == scores[1] == scores[2] and scores[3] == scores[4]


def predict_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "tasks.name_classifier.predict", *args],
                          cwd=REPO, env=env, input=stdin, capture_output=True, text=True,
                          timeout=300)


def test_predict_with_a_corrupt_model_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(os.urandom(3000))
    done = predict_cli("Smith", "--run-dir", str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and TRAIN_COMMAND in done.stderr


def test_predict_with_no_names_on_stdin_exits_2(tmp_path: Path) -> None:
    small_model(tmp_path)
    done = predict_cli("--run-dir", str(tmp_path), stdin="")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: no names given") and done.stderr.count("\n") == 1


def test_predict_answers_blank_lines_each_with_a_refusal(tmp_path: Path) -> None:
    small_model(tmp_path)
    done = predict_cli("--run-dir", str(tmp_path), stdin="\n  \n")
    assert done.returncode == 1 and done.stdout.count("not answered: empty name") == 2
    assert "(line 2 of stdin is blank)" in done.stdout


def test_predict_answers_each_stdin_line_before_the_input_ends(tmp_path: Path) -> None:
    """A line written to predict's stdin is answered while stdin is still open, so a
    script can ask and read one name at a time, and `seq ... | predict | head -1` ends at
    once; the line numbers, refusals and exit status stay those of the whole input."""
    small_model(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.name_classifier.predict", "--run-dir", str(tmp_path)],
        cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)

    def ask(line: str) -> str:
        process.stdin.write(line + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, f"no answer to {line!r} while stdin is open"
        return process.stdout.readline()

    try:
        assert ask("Smith").startswith("Smith: ")
        assert ask("").endswith("not answered: empty name, nothing to classify "
                                "(line 2 of stdin is blank)\n")
        assert ask("Tanaka").startswith("Tanaka: ")
        process.stdin.close()
        assert process.wait(timeout=60) == 1  # the blank line was refused
        assert process.stdout.read() == ""
        assert process.stderr.read() == "1 of 3 input(s) not answered\n"
    finally:
        process.kill()
        process.wait()


def test_tutorial_records_the_core_cell_it_runs() -> None:
    from core.config import parse

    cfg = parse(char_transduce.Config, ["--model", "tutorial", "--impl", "torch"])
    assert cfg.impl == "core"


def test_predict_help_says_names_are_read_in_title_case() -> None:
    done = predict_cli("--help")
    assert done.returncode == 0 and "title case" in done.stdout
