"""tasks/name_generator: the sampler, the probabilities the model and the n-grams give, and
sample.py's answers to bad input, on a tiny untrained model and the tiny name fixtures."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import run_main
from core.name_model import ModelConfig as ClassifierConfig
from core.name_model import NameClassifier
from core.name_model import build_vocab as classifier_vocab
from core.name_model import save_model as save_classifier
from tasks.name_generator import ngram, train
from tasks.name_generator.model import (
    ModelConfig,
    NameGenerator,
    bits_per_char,
    build_vocab,
    encode,
    next_token_probabilities,
    sample,
    token_probabilities,
)
from tasks.name_generator.sample import main as sample_main

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAMES = ["Smith", "Schmidt", "O'Neill", "Nguyen", "Tanaka", "Li"]
LANGUAGES = [0, 1, 2, 3, 4, 3]


def tiny_model(cell: str = "gru", impl: str = "torch") -> tuple[NameGenerator, object]:
    torch.manual_seed(0)
    vocab = build_vocab(NAMES)
    config = ModelConfig(cell=cell, impl=impl, embedding_dim=8, language_dim=4,
                         hidden_size=16, num_layers=1, dropout=0.0)
    return NameGenerator(len(vocab), 5, config).eval(), vocab


def test_sampler_with_a_fixed_seed_is_reproducible() -> None:
    model, vocab = tiny_model()
    first = sample(model, vocab, 1, 8, generator=torch.Generator().manual_seed(3))
    again = sample(model, vocab, 1, 8, generator=torch.Generator().manual_seed(3))
    assert first == again and len(first) == 8
    started = sample(model, vocab, 1, 4, start="Sch", generator=torch.Generator().manual_seed(3))
    assert all(name.startswith("Sch") for name in started)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_temperature_towards_zero_gives_the_argmax_name(cell: str) -> None:
    model, vocab = tiny_model(cell)
    with torch.no_grad():  # an untrained model's logits nearly tie; spread them apart
        model.out.weight *= 20
    prefix: list[int] = []
    while len(prefix) < 30:  # greedy decoding by hand, one full forward pass per step
        token = int(next_token_probabilities(model, prefix, 2).argmax())
        if token == 0:
            break
        prefix.append(token)
    greedy = vocab.decode(prefix)
    assert sample(model, vocab, 2, 3, temperature=0) == [greedy] * 3
    for temperature in (1e-4, 1e-300, 5e-324):  # 1e-300 once gave inf / nan
        cold = sample(model, vocab, 2, 3, temperature=temperature,
                      generator=torch.Generator().manual_seed(0))
        assert cold == [greedy] * 3


@pytest.mark.parametrize("impl", ["torch", "core"])
def test_next_character_probabilities_sum_to_one_with_the_end(impl: str) -> None:
    model, vocab = tiny_model(impl=impl)
    for prefix in ([], vocab.encode("Sch"), vocab.encode("Nguy")):
        p = next_token_probabilities(model, prefix, 3)
        assert p.shape == (len(vocab),) and vocab.tokens[0] == "<end>"
        torch.testing.assert_close(p.sum(), torch.tensor(1.0))
    names = [encode(name, vocab) for name in NAMES]
    p = token_probabilities(model, names, LANGUAGES)
    assert len(p) == sum(len(name) + 1 for name in NAMES)  # every character and each end
    assert np.all((p > 0) & (p <= 1))


def test_token_probabilities_match_the_next_token_distribution() -> None:
    """Batched and padded teacher forcing gives what feeding one name alone gives."""
    model, vocab = tiny_model()
    names = [encode(name, vocab) for name in NAMES]
    p = token_probabilities(model, names, LANGUAGES)
    expected = [float(next_token_probabilities(model, name[:i], language)[name[i]])
                for name, language in zip(names, LANGUAGES, strict=True)
                for i in range(len(name))]
    np.testing.assert_allclose(p, expected, rtol=1e-5)


def test_a_uniform_model_scores_log2_of_the_vocabulary() -> None:
    model, vocab = tiny_model()
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)
    names = [encode(name, vocab) for name in NAMES]
    bits = bits_per_char(token_probabilities(model, names, LANGUAGES))
    assert bits == pytest.approx(math.log2(len(vocab)))


@pytest.fixture(scope="module")
def counts() -> ngram.NGramCounts:
    vocab = build_vocab(NAMES)
    return ngram.NGramCounts([encode(name, vocab) for name in NAMES],
                             ["en", "de", "ga", "vi", "ja", "vi"], len(vocab), max_n=4)


@pytest.mark.parametrize("smoothing", [
    ngram.Smoothing(1, "add-k", 0.5), ngram.Smoothing(3, "add-k", 0.01),
    ngram.Smoothing(4, "add-k", 1.0, lam=0.75), ngram.Smoothing(2, "kneser-ney", 0.75),
    ngram.Smoothing(4, "kneser-ney", 0.6, lam=0.9)])
def test_ngram_probabilities_sum_to_one(counts: ngram.NGramCounts,
                                        smoothing: ngram.Smoothing) -> None:
    vocab = build_vocab(NAMES)
    for language, text in [("de", "Sch"), ("vi", "Ng"), ("vi", ""), ("ja", "Li"),
                           ("unseen", "Ta")]:
        h = tuple(([0] * 4 + vocab.encode(text))[-(smoothing.n - 1):]) if smoothing.n > 1 else ()
        assert counts.distribution(smoothing, language, h).sum() == pytest.approx(1.0)


def test_ngram_probabilities_by_hand() -> None:
    """Names "ab" and "ac", tokens <end> a b c (V = 4), bigrams.

    add-k: P(a | <end>) = (2 + k) / (2 + 4k).
    Kneser-Ney, D = 0.5: the unigram level counts distinct left neighbours: a 1 (<end>),
    b 1, c 1, <end> 2 (b, c); total 5, 4 types, so P1(b) = (0.5 + 0.5 * 4 / 4) / 5 = 0.2
    and P(b | a) = (1 - 0.5) / 2 + 0.5 * 2 / 2 * 0.2 = 0.35."""
    vocab = build_vocab(["ab", "ac"])
    counts = ngram.NGramCounts([encode("ab", vocab), encode("ac", vocab)], ["x", "x"],
                               len(vocab), max_n=2)
    a, b = vocab.index["a"], vocab.index["b"]
    k = 0.1
    assert counts.probability(ngram.Smoothing(2, "add-k", k), "x", (0,), a) == \
        pytest.approx((2 + k) / (2 + 4 * k))
    assert counts.probability(ngram.Smoothing(2, "kneser-ney", 0.5), "x", (a,), b) == \
        pytest.approx(0.35)


def test_ngram_with_huge_k_is_uniform(counts: ngram.NGramCounts) -> None:
    vocab = build_vocab(NAMES)
    names = [encode(name, vocab) for name in NAMES]
    p = counts.token_probabilities(ngram.Smoothing(3, "add-k", 1e9), names,
                                   ["en", "de", "ga", "vi", "ja", "vi"])
    assert bits_per_char(p) == pytest.approx(math.log2(len(vocab)))


# ---- the command line, on a model trained for two epochs on the tiny fixtures


def untrained_classifier(path: Path) -> Path:
    """A name_classifier model.pt as core.name_model writes it, untrained."""
    torch.manual_seed(0)
    config = ClassifierConfig(code_points=False, boundaries=True, cell="gru", impl="torch",
                              embedding_dim=8, hidden_size=8, num_layers=1, dropout=0.0,
                              pooling="final+max", conv_channels=4)
    vocab = classifier_vocab(NAMES, config)
    model = NameClassifier(len(vocab), 3, config, vocab.pad_index)
    save_classifier(path, model, vocab, ["English", "Irish", "Russian"])
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("names")
    for split in ("train", "test"):
        shutil.copyfile(FIXTURES / f"names_tiny_{split}.csv", data / f"names_{split}.csv")
    folder = tmp_path_factory.mktemp("run")
    classifier = untrained_classifier(tmp_path_factory.mktemp("classifier") / "model.pt")
    test = train.main(["--dry-run", "--threads", "1", "--data-dir", str(data),
                       "--run-dir", str(folder), "--classifier", str(classifier)])
    assert {"model", "ngram", "unigram", "real_names"} <= set(test)
    assert 0 <= test["model"]["language_agreement"] <= 1  # judged through core.name_model
    for name in ("model.pt", "samples.csv", "samples.png", "bits_by_language.png"):
        assert (folder / name).is_file(), name
    return folder


def test_no_task_imports_another() -> None:
    """A copied task folder stands alone: the name tasks share only core."""
    for folder in ("name_classifier", "name_generator"):
        for path in (REPO / "tasks" / folder).glob("*.py"):
            text = path.read_text()
            assert "import tasks" not in text and "from tasks" not in text, path


def sample_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "tasks.name_generator.sample", *args],
                          cwd=REPO, env=env, input=stdin, capture_output=True, text=True,
                          timeout=300)


def sampled(argv: list[str], capsys: pytest.CaptureFixture) -> list[str]:
    assert sample_main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_sample_prints_a_line_per_language(run_dir: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    lines = sampled(["--language", "all", "--count", "2", "--run-dir", str(run_dir)], capsys)
    assert len(lines) == 7 and lines[0].startswith("English: ")
    assert all(line.count(", ") == 1 for line in lines)  # two names each
    again = sampled(["--language", "russian", "--seed", "5", "--run-dir", str(run_dir)],
                    capsys)
    assert len(again) == 1 and again[0].startswith("Russian: ")
    assert again == sampled(["--language", "Russian", "--seed", "5", "--run-dir",
                             str(run_dir)], capsys)
    starts = sampled(["--language", "Irish", "English", "--start", "O'", "Mac", "--count",
                      "3", "--run-dir", str(run_dir)], capsys)
    assert [line.split(":")[0] for line in starts] == ["Irish O'...", "Irish Mac...",
                                                       "English O'...", "English Mac..."]
    assert all(name.startswith("Mac") for name in starts[1].split(": ")[1].split(", "))


def test_sample_json_and_refusals_answer_each_input(run_dir: Path) -> None:
    done = sample_cli("--language", "Irish", "Klingon", "--start", "", "Ø", "--json",
                      "--count", "2", "--run-dir", str(run_dir))
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["input"] for r in records] == ["Irish", "Irish Ø...", "Klingon", "Klingon Ø..."]
    assert len(records[0]["names"]) == 2 and records[0]["language"] == "Irish"
    assert "never saw the characters 'Ø'" in records[1]["refused"]
    assert "unknown language" in records[2]["refused"]
    assert done.stderr == ""  # with --json the count is left to the reader


def test_sample_reads_languages_from_stdin(run_dir: Path) -> None:
    done = sample_cli("--count", "2", "--run-dir", str(run_dir), stdin="Irish\nklingon\n")
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and len(lines) == 2 and lines[0].startswith("Irish: ")
    assert lines[1].startswith("'klingon': not answered: unknown language")
    done = sample_cli("--run-dir", str(run_dir), stdin="")
    assert done.returncode == 2 and "no languages given" in done.stderr


def test_sample_into_a_closed_pipe_ends_quietly(run_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(f"{sys.executable} -m tasks.name_generator.sample --language all "
                          f"--count 3000 --run-dir {run_dir} | head -1", shell=True,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("English: ") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_a_tiny_temperature_is_greedy(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--language", "Irish", "--count", "3", "--run-dir", str(run_dir)]
    assert sampled([*argv, "--temperature", "1e-300"], capsys) == sampled(
        [*argv, "--temperature", "0"], capsys)


def test_one_name_of_a_language_is_one_line_not_a_crash(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "Greek.txt").write_text("Pappas\n")
    with pytest.raises(SystemExit) as stopped:
        run_main(lambda: train.main(["--dry-run", "--data-dir", str(tmp_path), "--run-dir",
                                     str(tmp_path / "run")]))
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and error.count("\n") == 1
    assert "Greek.txt holds 1 name(s)" in error and "at least 3 names" in error


@pytest.mark.parametrize(("args", "expected"), [
    (["--language", "Klingon"], "knows English, German, Irish, Italian, Japanese"),
    (["--language", "Irish", "--start", "Ø'"], "never saw the characters 'Ø'"),
])
def test_an_input_sample_cannot_answer_is_one_line_and_exit_1(run_dir: Path, args: list[str],
                                                              expected: str) -> None:
    done = sample_cli(*args, "--run-dir", str(run_dir))
    assert done.returncode == 1 and done.stdout.count("\n") == 1
    assert ": not answered: " in done.stdout and expected in done.stdout
    assert "Traceback" not in done.stderr


def test_no_model_says_which_command_makes_one(tmp_path: Path) -> None:
    done = sample_cli("--language", "Irish", "--run-dir", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"python -m tasks.name_generator.train --run-dir {tmp_path}" in done.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["--language", "Irish", "--count", "many"], "invalid int value"),
    (["--language", "Irish", "--temperature", "-1"], "--temperature must be 0 or more"),
    (["--language", "Irish", "--temperature", "nan"], "invalid number value"),
    (["--language", "Irish", "--top-k", "-2"], "--top-k must be"),
    (["--language", "Irish", "--count", "0"], "--count must be"),
    (["--language", "Irish", "--start", "x" * 40], "--start has 40 characters"),
])
def test_more_bad_input_in_process(run_dir: Path, capsys: pytest.CaptureFixture,
                                   args: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        run_main(lambda: sample_main([*args, "--run-dir", str(run_dir)]))
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and expected in error


def test_broken_model_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "model.pt").write_bytes(b"not a model")
    with pytest.raises(SystemExit):
        run_main(lambda: sample_main(["--language", "Irish", "--run-dir", str(tmp_path)]))
    error = capsys.readouterr().err
    assert "cannot read" in error and "--run-dir" in error and error.count("\n") == 1
