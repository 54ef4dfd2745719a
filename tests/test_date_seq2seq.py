"""date_seq2seq: the generator never writes an ambiguous string, the day split holds,
the strings with no day hold none and split apart, the decoders write only real days,
attention ignores padding, beam search of width 1 is greedy decoding, the model can
learn 20 pairs by heart, and predict.py answers every input on its own line, refusing
the ones it cannot answer."""

from __future__ import annotations

import io
import json
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
    EOS,
    OUTPUT_INDEX,
    OUTPUT_TOKENS,
    DateSeq2Seq,
    ModelConfig,
    TrainedModel,
    calendar_automaton,
    decode_outputs,
    encode_inputs,
    encode_targets,
    input_vocab,
    load_model,
    save_model,
    translate,
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


def test_strings_with_no_day_hold_none_and_their_parts_are_disjoint():
    drawn = {part: dates.non_dates(part, 400, seed) for seed, part
             in enumerate(["train", "validation", "test"])}
    for part, rows in drawn.items():
        assert {kind for _, kind in rows} == set(dates.NON_DATE_KINDS)
        for text, _ in rows:
            assert text and len(text) <= dates.MAX_LENGTH and set(text) <= set(dates.alphabet())
            with pytest.raises(ValueError):
                dates.read(text)
        words = {w.lower() for text, kind in rows if kind == "words" for w in text.split()
                 if w.isalpha()}
        assert all(dates.part_of(w) == part for w in words), part
    texts = {part: {t.lower() for t, _ in rows} for part, rows in drawn.items()}
    assert not texts["test"] & texts["validation"], texts["test"] & texts["validation"]
    assert not texts["test"] & texts["train"], texts["test"] & texts["train"]
    assert dates.non_dates("test", 400, 2) == drawn["test"]  # fixed by its seed


def test_impossible_days_are_written_in_every_family_and_read_as_no_day():
    rng = random.Random(0)
    for family in dates.FAMILIES:
        for _ in range(300):
            day = dates.no_day(rng)
            with pytest.raises(ValueError):
                date(day.year, day.month, day.day)
            text, _ = dates.write(day, rng, family)
            with pytest.raises(ValueError):
                dates.read(text)
    assert dates.write_family(dates.NoDay(2023, 2, 29, 0), "numeric_year_first",
                              random.Random(3)) in {"2023-02-29", "2023/02/29", "2023.02.29",
                                                    "20230229", "2023-2-29", "2023/2/29",
                                                    "2023.2.29"}


def walk(automaton: torch.Tensor, text: str) -> int:
    state = 0
    for token in [*text, EOS]:
        state = int(automaton[state, OUTPUT_INDEX[token]])
    return state


def test_the_calendar_automaton_accepts_exactly_the_real_days():
    automaton = calendar_automaton()
    accept, dead = automaton.shape[0] - 2, automaton.shape[0] - 1
    assert all(walk(automaton, day.isoformat()) == accept for day in dates.all_days())
    for text in ["2023-02-29", "2020-04-31", "2000-01-32", "2000-13-01", "1899-12-31",
                 "2100-01-01", "2000-00-10", "2000-01-00"]:
        assert walk(automaton, text) == dead, text
    rng = random.Random(0)  # random walks through the allowed tokens end on real days
    for _ in range(500):
        state, text = 0, ""
        for _ in range(11):
            allowed = [t for t in range(len(OUTPUT_TOKENS)) if automaton[state, t] != dead]
            token = rng.choice(allowed)
            text, state = text + OUTPUT_TOKENS[token], int(automaton[state, token])
        assert state == accept and text.endswith(EOS)
        assert dates.FIRST_DAY <= date.fromisoformat(text[:-len(EOS)]) <= dates.LAST_DAY


# ---- the model


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_writes_a_real_day_for_any_input_and_its_probability(beam):
    """Property: whatever the input and the weights, the answer is a real ISO day, and
    its probability is the product of the model's own softmax on it (teacher forced)."""
    rng = random.Random(beam)
    alphabet = dates.alphabet()
    texts = ["".join(rng.choices(alphabet, k=rng.randint(1, dates.MAX_LENGTH)))
             for _ in range(200)] + ["29 February 2023", "31/04/2020", "hello", "32 Jan 2000"]
    for seed in range(3):
        model = small_model("additive", seed=seed)
        answers, probabilities, _ = translate(model, texts, input_vocab(), beam)
        for answer in answers:
            assert dates.FIRST_DAY <= date.fromisoformat(answer) <= dates.LAST_DAY, answer
        x, lengths = encode_inputs(texts, input_vocab())
        with torch.no_grad():
            logits, _ = model(x, lengths, encode_targets(answers))
        log_p = torch.log_softmax(logits, -1).gather(2, encode_targets(answers)[:, :, None])
        torch.testing.assert_close(log_p.sum((1, 2)).exp(), torch.tensor(probabilities),
                                   atol=1e-6, rtol=1e-4)


def test_the_threshold_is_chosen_between_the_strings_on_either_side_of_the_cut():
    real = [0.9, 0.95, 0.99, 0.5]  # one real date in four is doubtful
    no_day = [0.01, 0.2, 0.6, 0.7, 0.3]
    # Refusing the 0.5 date too would refuse a quarter of the dates: over a budget of 0.1.
    assert train_cli.choose_threshold(real, no_day, 0.1) == pytest.approx((0.3 * 0.5) ** 0.5)
    # Within a budget of 0.25 it gains two non-dates for one date: 1 - 0.25 beats 0.6 - 0.
    assert train_cli.choose_threshold(real, no_day, 0.25) == pytest.approx((0.7 * 0.9) ** 0.5)
    # A tie goes to the lower cut, which refuses fewer dates.
    assert train_cli.choose_threshold(real, [0.01, 0.2, 0.6, 0.3], 0.25) == pytest.approx(
        (0.3 * 0.5) ** 0.5)
    assert train_cli.choose_threshold([0.9], [0.95], 0.0) == 0.9  # refuses nothing




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
    greedy, greedy_weights, greedy_log_p = model.greedy(x, lengths)
    beam, beam_weights, beam_log_p = model.beam_search(x, lengths, 1)
    assert torch.equal(greedy, beam)
    torch.testing.assert_close(greedy_log_p, beam_log_p)
    if attention != "none":
        torch.testing.assert_close(greedy_weights, beam_weights)
    wide, _, _ = model.beam_search(x, lengths, 4)
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


def with_threshold(run: Path, folder: Path, threshold: float) -> Path:
    """A copy of the run's model.pt that refuses answers under `threshold`."""
    trained = load_model(run / "model.pt")
    save_model(folder / "model.pt", TrainedModel(trained.model, trained.vocab, threshold,
                                                 trained.beam))
    return folder


def test_predict_reads_stdin_one_date_a_line_an_empty_one_too(tiny_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("3 March 1998\n\n  1998/3/3 \n"))
    status = predict_cli.main(["--run-dir", str(tiny_run), "--beam", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 1 and len(lines) == 3
    assert lines[1] == "'': not answered: empty: no characters to read (line 2 of stdin is blank)"


def test_predict_answers_every_input_in_order_and_exits_1_when_one_is_refused(tiny_run,
                                                                             tmp_path):
    """Twelve inputs, an empty one among them: each gets its line, in order; the
    impossible days and non-dates are refused or given a real day, never the impossible
    one."""
    folder = with_threshold(tiny_run, tmp_path, 0.0)  # answers everything it can read
    texts = ["3 March 1998", "29 February 2023", "31/04/2020", "", "hello", "32 Jan 2000",
             "1998/3/3", "3 Kwanzaa 1998", "31 Juni 2020", "x" * 60, "yesterday", "42"]
    result = predict("--run-dir", str(folder), *texts)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 12
    refused = {3: "empty", 7: "never seen in training", 9: "at most 50"}
    for n, (text, line) in enumerate(zip(texts, lines, strict=True)):
        if n in refused:
            assert line.startswith(f"{text[:40]!r}"[:-1]) and refused[n] in line, line
        else:
            assert dates.FIRST_DAY <= date.fromisoformat(line) <= dates.LAST_DAY, line
    assert "3 of 12 input(s) not answered" in result.stderr


def test_predict_refuses_answers_under_the_threshold_with_json_and_verbose(tiny_run, tmp_path,
                                                                          capsys):
    folder = with_threshold(tiny_run, tmp_path, 1.0)  # no answer is that sure
    texts = ["29 February 2023", "hello", "3 March 1998"]
    assert predict_cli.main(["--run-dir", str(folder), "--json", *texts]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in records] == texts
    assert all("threshold" in r["refused"] and "date" not in r for r in records)
    assert predict_cli.main(["--run-dir", str(folder), "--verbose", "hello"]) == 1
    line = capsys.readouterr().out.strip()
    assert "not answered" in line and "best reading" in line and "probability" in line

    folder = with_threshold(tiny_run, tmp_path, 0.0)
    assert predict_cli.main(["--run-dir", str(folder), "--verbose", "--json", *texts]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for r in records:
        assert 0 < r["probability"] <= 1 and r["date"] != "2023-02-29"
    assert predict_cli.main(["--run-dir", str(folder), "--verbose", "3 March 1998"]) == 0
    date_text, word, number = capsys.readouterr().out.split()
    assert word == "probability" and 0 < float(number) <= 1
    date.fromisoformat(date_text)


def test_predict_ends_quietly_when_its_reader_goes_away(tiny_run):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        f"seq 1 3000 | {sys.executable} -m tasks.date_seq2seq.predict --run-dir {tiny_run} "
        "| head -1", shell=True, cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120)
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr


def test_predict_help_names_its_flags():
    result = predict("--help")
    assert result.returncode == 0
    for flag in ["--run-dir", "--beam", "--verbose", "--json", "--plot", "dates"]:
        assert flag in result.stdout


def test_predict_with_empty_stdin_or_a_bad_flag_is_one_line_with_status_2(tiny_run):
    one_line_error(predict("--run-dir", str(tiny_run), stdin=""), "no dates given")
    one_line_error(predict("--run-dir", str(tiny_run), "--beam", "14", "3 March 1998"),
                   "--beam")


@pytest.mark.parametrize(("args", "message"), [
    (["--beam", "-1"], "--beam"),
    (["--plot", "{tmp}/a.pdf"], r"\.png"),
    (["--plot", "{tmp}/no/a.png"], "no folder"),
])
def test_predict_refuses_bad_flags_before_predicting(tiny_run, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(UserError, match=message):
        predict_cli.main(["--run-dir", str(tiny_run), *args, "3 March 1998"])


def test_predict_says_what_is_wrong_with_the_model_file(tmp_path, tiny_run, monkeypatch):
    with pytest.raises(UserError, match="no trained model.*tasks.date_seq2seq.train"):
        predict_cli.main(["--run-dir", str(tmp_path), "3 March 1998"])
    (tmp_path / "model.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read.*damaged.*tasks.date_seq2seq.train"):
        predict_cli.main(["--run-dir", str(tmp_path), "3 March 1998"])
    torch.save({"model": {}, "labels": ["a"]}, tmp_path / "model.pt")  # another task's
    with pytest.raises(UserError, match="not a date model"):
        predict_cli.main(["--run-dir", str(tmp_path), "3 March 1998"])
    model_pt = tiny_run / "model.pt"
    real_open = Path.open

    def no_permission(self, *args, **kwargs):
        if self == model_pt:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", no_permission)  # the tests run as root in CI
    with pytest.raises(UserError, match="cannot read.*permission denied") as error:
        predict_cli.main(["--run-dir", str(tiny_run), "3 March 1998"])
    assert "damaged" not in str(error.value)


def test_predict_draws_the_attention_of_the_first_date(tiny_run, tmp_path):
    folder = with_threshold(tiny_run, tmp_path, 0.0)
    status = predict_cli.main(["--run-dir", str(folder), "--plot", str(tmp_path / "a.png"),
                               "", "3/3/98", "3 March 1998"])
    assert status == 1 and (tmp_path / "a.png").is_file()
