"""date_seq2seq: the generator never writes an ambiguous string, the day split holds,
attention ignores padding, beam search of width 1 is greedy decoding, the model can
learn 20 pairs by heart, and predict.py answers bad input with one line."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import torch
from torch import nn

from core.config import UserError
from tasks.date_seq2seq import dates
from tasks.date_seq2seq import predict as predict_cli
from tasks.date_seq2seq import train as train_cli
from tasks.date_seq2seq.model import (
    DateSeq2Seq,
    ModelConfig,
    decode_outputs,
    encode_inputs,
    encode_targets,
    input_vocab,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run several times faster on one thread when the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(attention: str, impl: str = "torch", seed: int = 0) -> DateSeq2Seq:
    torch.manual_seed(seed)
    config = ModelConfig(impl=impl, attention=attention, embedding_dim=16, hidden_size=32,
                         decoder_size=64, attention_size=32, max_length=dates.MAX_LENGTH)
    return DateSeq2Seq(len(input_vocab()), config).eval()


def labelled(count: int, seed: int) -> tuple[list[str], list[str]]:
    texts, truth, _ = zip(*dates.sample(dates.all_days(), count, random.Random(seed)),
                          strict=True)
    return list(texts), list(truth)


# ---- the generator and the split


def test_every_generated_string_reads_back_as_its_own_day_and_only_that_day():
    seen: dict[str, str] = {}
    rng = random.Random(0)
    for family in dates.FAMILIES:
        for day in rng.choices(dates.all_days(), k=4000):
            text, _ = dates.write(day, rng, family)
            assert dates.read(text) == day, (family, text)
            assert seen.setdefault(text, day.isoformat()) == day.isoformat(), text
            assert len(text) <= dates.MAX_LENGTH and set(text) <= set(dates.alphabet())


def test_numeric_dates_are_day_first_or_year_first_and_two_digit_years_pivot():
    assert dates.read("03/04/1998") == date(1998, 4, 3)  # never March 4th
    assert dates.read("1998/4/3") == dates.read("19980403") == date(1998, 4, 3)
    assert dates.read("3.4.29") == date(2029, 4, 3)
    assert dates.read("3 Apr 30") == dates.read("April 3rd, 30") == date(1930, 4, 3)
    assert dates.read("the twenty-first of May 1969") == date(1969, 5, 21)
    rng = random.Random(1)
    for day in [date(1929, 12, 31), date(2030, 1, 1), date(1900, 5, 5), date(2099, 1, 1)]:
        for _ in range(200):  # outside 1930-2029 the year always has four digits
            text, _ = dates.write(day, rng)
            assert str(day.year) in text, text


def test_train_validation_and_test_days_are_disjoint_and_cover_the_calendar():
    train, val, test = dates.split_days(2000, 2000)
    assert len(val) == len(test) == 2000
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert len(train) + len(val) + len(test) == len(dates.all_days())
    assert dates.split_days(2000, 2000) == (train, val, test)  # fixed, whatever --seed


# ---- the model


@pytest.mark.parametrize("impl", ["torch", "core"])
@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_attention_weights_sum_to_one_and_ignore_padding(attention, impl):
    model = small_model(attention, impl)
    vocab = input_vocab()
    texts = ["1998/3/3", "Tuesday, the third of March 1998", "3 Mar 98"]
    truth = ["1998-03-03"] * 3
    x, lengths = encode_inputs(texts, vocab)
    with torch.no_grad():
        logits, weights = model(x, lengths, encode_targets(truth))  # weights (B, 11, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    for row, length in enumerate(lengths.tolist()):
        assert torch.all(weights[row, :, length:] == 0)
        alone_x, alone_lengths = encode_inputs([texts[row]], vocab)  # no padding at all
        with torch.no_grad():
            alone, alone_weights = model(alone_x, alone_lengths, encode_targets(truth[:1]))
        torch.testing.assert_close(logits[row], alone[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(weights[row, :, :length], alone_weights[0], atol=1e-5,
                                   rtol=1e-5)


@pytest.mark.parametrize("attention", ["additive", "dot", "none"])
def test_beam_search_of_width_one_is_greedy_decoding(attention):
    model = small_model(attention, seed=3)
    texts, _ = labelled(16, seed=2)
    x, lengths = encode_inputs(texts, input_vocab())
    greedy, greedy_weights = model.greedy(x, lengths)
    beam, beam_weights = model.beam_search(x, lengths, 1)
    assert torch.equal(greedy, beam)
    if attention != "none":
        torch.testing.assert_close(greedy_weights, beam_weights)
    wide, _ = model.beam_search(x, lengths, 4)
    assert wide.shape == greedy.shape


def test_a_model_learns_twenty_pairs_by_heart():
    model = small_model("additive").train()
    texts, truth = labelled(20, seed=5)
    x, lengths = encode_inputs(texts, input_vocab())
    y = encode_targets(truth)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    answers: list[str] = []
    for step in range(1, 401):
        logits, _ = model(x, lengths, y)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            answers = decode_outputs(model.greedy(x, lengths)[0])
            if answers == truth:
                break
    assert answers == truth


# ---- predict.py


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder with model.pt from a --dry-run (in-process: a subprocess would import
    torch once more)."""
    folder = tmp_path_factory.mktemp("date_run")
    train_cli.main(["--dry-run", "--run-dir", str(folder)])
    assert (folder / "model.pt").is_file()
    return folder


def predict(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tasks.date_seq2seq.predict", *args],
                          cwd=REPO, env=env, input=stdin, capture_output=True, text=True,
                          timeout=120)


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr


def test_predict_reads_stdin_one_date_a_line(tiny_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("3 March 1998\n\n  1998/3/3 \n"))
    answers = predict_cli.main(["--run-dir", str(tiny_run), "--beam", "2"])
    assert len(answers) == 2 and capsys.readouterr().out.splitlines() == answers


def test_predict_refuses_unknown_characters_and_empty_stdin_in_one_line(tiny_run):
    one_line_error(predict("--run-dir", str(tiny_run), "3 March 1998", "3 Kwanzaa 1998"),
                   "date 2", "never seen")
    one_line_error(predict("--run-dir", str(tiny_run), stdin=""), "no dates given")


@pytest.mark.parametrize(("args", "message"), [
    (["--beam", "0"], "--beam"),
    (["3 March " + "1" * 60], "at most"),
    (["--plot", "{tmp}/a.pdf"], r"\.png"),
    (["--plot", "{tmp}/no/a.png"], "no folder"),
])
def test_predict_refuses_bad_input_before_predicting(tiny_run, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(UserError, match=message):
        predict_cli.main(["--run-dir", str(tiny_run), *args, "3 March 1998"])


def test_predict_without_a_model_names_the_command_that_makes_one(tmp_path):
    with pytest.raises(UserError, match="no trained model.*tasks.date_seq2seq.train"):
        predict_cli.main(["--run-dir", str(tmp_path), "3 March 1998"])
    (tmp_path / "model.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read.*tasks.date_seq2seq.train"):
        predict_cli.main(["--run-dir", str(tmp_path), "3 March 1998"])


def test_predict_draws_the_attention_of_the_first_date(tiny_run, tmp_path):
    answers = predict_cli.main(["--run-dir", str(tiny_run), "--plot", str(tmp_path / "a.png"),
                                "3/3/98", "3 March 1998"])
    assert len(answers) == 2 and (tmp_path / "a.png").is_file()
