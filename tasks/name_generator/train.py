"""name_generator: write surnames of a given language, one character at a time.

A conditional character-level language model (one-to-many): the language (an embedding)
and the characters so far go in; a distribution over the next character, or the end of
the name, comes out. Trained with teacher forcing on names_train.csv (`Name,Language`, no
header, 18 languages); the epoch is chosen on a stratified 10% of that file (a fixed
split), and names_test.csv is scored once, with the weights of the best epoch.

What is scored on the test file:
- bits_per_char: the mean -log2 P of every character of every name and of its end;
- novel_fraction: the share of names sampled at temperature 1 (--samples per language)
  that the training file does not hold;
- language_agreement: the share of those samples that the name_classifier model assigns
  to the asked language, averaged over languages; the same for the real test names is
  method real_names, the most the classifier can confirm. It needs a trained classifier
  (runs/name_classifier/model.pt, or --classifier), read through core.name_model, so this
  folder imports no other task; without one it is left out, and the run says so.

Baselines in the same run, on the same names and with the same bits per character: one
character n-gram model per language, add-k or interpolated Kneser-Ney, n = 1..--max-order,
each alone or mixed with the model of all languages; order and smoothing are chosen on the
same validation split (method ngram, its setting in metrics.json's config) and the best
1-gram is method unigram. See ngram.py.

    make name_generator                      # python -m tasks.name_generator.train
    python -m tasks.name_generator.train --cell lstm --impl core
    python -m tasks.name_generator.sample --language Russian --count 10 --temperature 0.8
    python -m tasks.name_generator.sample --language all

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from core import plots
from core.config import RunConfig, UserError, arg, parse, require, run_main
from core.files import atomic_write_text
from core.name_model import encode as classifier_encode
from core.name_model import load_model as load_classifier
from core.name_model import logits_for
from core.names import SPLIT_SEED, load_names, shrink, stratified_split
from core.report import comparison_table
from core.run import Run, SeedResult
from core.text import Vocab, length_buckets

from . import ngram
from .model import (
    IGNORE,
    ModelConfig,
    NameGenerator,
    bits_per_char,
    build_vocab,
    encode,
    sample,
    save_model,
    teacher_forcing_batch,
    token_probabilities,
)

VALIDATION_SHARE = 0.1
CLASSIFIER = Path("runs") / "name_classifier" / "model.pt"  # the optional scorer
SHOWN = 5  # samples per language printed and shown in the report
MIXTURE_WEIGHTS = np.linspace(0, 1, 21)  # the model's weights tried in model+ngram

Rows = list[tuple[str, str]]  # (name, language)


def as_rows(frame: pd.DataFrame) -> Rows:
    return list(zip(frame["name"], frame["language"], strict=True))


@dataclass
class Config(RunConfig):
    data_dir: str = arg("", "folder with names_train.csv and names_test.csv; empty: fetch "
                            "the data")
    cell: str = arg("gru", "recurrent cell", choices=["rnn", "lstm", "gru"])
    impl: str = arg("torch", "torch.nn's layers (fast) or core's cells (same weights)",
                    choices=["torch", "core"])
    embedding_dim: int = arg(32, "character embedding size", minimum=1)
    language_dim: int = arg(16, "language embedding size (fed in at every step)", minimum=1)
    hidden_size: int = arg(256, "hidden units per layer", minimum=1)
    num_layers: int = arg(1, "stacked recurrent layers", minimum=1)
    dropout: float = arg(0.1, "dropout on the inputs and outputs of the recurrent layers",
                         minimum=0, maximum=0.99)
    epochs: int = arg(12, "training epochs", minimum=1)
    batch_size: int = arg(64, "names per batch", minimum=1)
    lr: float = arg(6e-3, "peak learning rate of the one-cycle schedule (Adam)", minimum=0)
    clip_norm: float = arg(1.0, "clip the gradient norm to this (0: no clipping)", minimum=0)
    max_order: int = arg(5, "longest n-gram the baselines try (n = 1..this)", minimum=1,
                         maximum=8)
    samples: int = arg(100, "names sampled per language at temperature 1 for novel_fraction "
                            "and language_agreement", minimum=1)
    classifier: str = arg("", "a name_classifier model.pt for language_agreement; empty: "
                              f"{CLASSIFIER} if it exists")

    def check(self) -> None:
        super().check()
        require(not self.classifier or Path(self.classifier).is_file(),
                f"--classifier {self.classifier}: no such file (train one with `make "
                "name_classifier`, or leave --classifier out)")


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


def read_data(cfg: Config) -> Data:
    """The training file gives train and a stratified validation, the test file is scored
    once; the alphabet is every character of both files, so a test character that no
    training name uses still gets a (small) probability where an error would end the run
    (in the real files every test character also occurs in training)."""
    train_frame, test_frame, source = load_names(cfg.data_dir)
    if cfg.dry_run:
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


def ngram_baselines(data: Data, max_order: int
                    ) -> tuple[dict[str, ngram.Smoothing], dict[str, np.ndarray], np.ndarray]:
    """n-gram models of the same 90%, every setting scored on validation: the settings
    chosen for ngram and unigram, their per-token test probabilities, and the validation
    probabilities of the chosen ngram (for the mixture with the network)."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        data.encoded[split] for split in ("train", "validation", "test"))
    counts = ngram.NGramCounts(x_train, y_train, len(data.vocab), max_order)
    on_validation = {s: bits_per_char(counts.token_probabilities(s, x_val, y_val))
                     for s in ngram.candidates(max_order)}
    print("n-gram baselines, validation bits per character, the best setting of each order:")
    for n in range(1, max_order + 1):
        best_n = min((s for s in on_validation if s.n == n), key=on_validation.get)
        print(f"  {best_n}: {on_validation[best_n]:.4f}")
    chosen = {"ngram": min(on_validation, key=on_validation.get),
              "unigram": min((s for s in on_validation if s.n == 1), key=on_validation.get)}
    print(f"chosen on validation: ngram = {chosen['ngram']}, unigram = {chosen['unigram']}")
    ngram_test = {method: counts.token_probabilities(s, x_test, y_test)
                  for method, s in chosen.items()}
    return chosen, ngram_test, counts.token_probabilities(chosen["ngram"], x_val, y_val)


class Classifier:
    """A name_classifier model.pt as a function from names to languages. It is read
    through core.name_model, which both tasks use, so this folder imports no other task
    and runs alone when copied."""

    def __init__(self, path: Path) -> None:
        self.model, self.vocab, self.labels = load_classifier(
            path, "make name_classifier (python -m tasks.name_classifier.train)")

    def __call__(self, names: list[str]) -> list[str]:
        encoded = [classifier_encode(name, self.vocab, self.model.config) for name in names]
        logits = logits_for(self.model, encoded, self.vocab.pad_index)
        return [self.labels[i] for i in logits.argmax(1).tolist()]


def find_classifier(cfg: Config) -> tuple[Classifier | None, str]:
    """(classifier or None, a line saying which one, or why there is none)."""
    if cfg.classifier:
        return Classifier(Path(cfg.classifier)), f"language_agreement by {cfg.classifier}"
    if not CLASSIFIER.is_file():
        return None, (f"language_agreement left out: no classifier at {CLASSIFIER} (`make "
                      "name_classifier` trains one; or give --classifier PATH)")
    try:
        return Classifier(CLASSIFIER), f"language_agreement by the classifier {CLASSIFIER}"
    except UserError as error:  # the default one is optional: a broken one is skipped
        return None, f"language_agreement left out: {error}"


def agreement(classify: Classifier, names: dict[str, list[str]]) -> float:
    """The share of each language's names that `classify` assigns to it, averaged over
    the languages the classifier knows (so every language weighs the same). An empty
    name counts as a miss."""
    shares = []
    for language, group in names.items():
        if language not in classify.labels or not group:
            continue
        readable = [name for name in group if name]
        guesses = classify(readable) if readable else []
        shares.append(sum(g == language for g in guesses) / len(group))
    return float(np.mean(shares)) if shares else float("nan")


def names_by_language(rows: Rows) -> dict[str, list[str]]:
    """{language: its names, in file order}."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for name, language in rows:
        grouped[language].append(name)
    return dict(grouped)


def bits_by_language(data: Data, p: np.ndarray) -> dict[str, float]:
    """Per-token test probabilities -> bits per character of each test language (the
    tokens of a name are its characters and its <end>)."""
    names, languages = data.encoded["test"]
    token_language = np.repeat(languages, [len(x) for x in names])
    return {data.languages[i]: bits_per_char(p[token_language == i])
            for i in sorted(set(languages))}


def bits_by_language_plot(per_language: dict[str, dict[str, float]], path: Path) -> None:
    """Bars of bits per character on test, per language: the model beside the n-gram."""
    languages = list(next(iter(per_language.values())))
    x = np.arange(len(languages))
    width = 0.8 / len(per_language)
    fig, ax = plt.subplots(figsize=(11, 4))
    colors = iter(["tab:red", *plots.BASELINE_COLORS])
    for i, (method, values) in enumerate(per_language.items()):
        ax.bar(x + (i - (len(per_language) - 1) / 2) * width,
               [values[lang] for lang in languages], width, label=method, color=next(colors))
    ax.set_xticks(x, languages, rotation=60, ha="right")
    ax.set_ylabel("bits per character (test)")
    ax.set_title("test bits per character by language (lower is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plots.save(fig, path)


def samples_plot(samples: dict[str, list[str]], known_names: set[str], path: Path,
                 title: str) -> None:
    """A table of SHOWN sampled names per language; names of the training file grey."""
    fig, ax = plt.subplots(figsize=(2 + 1.6 * SHOWN, 0.8 + 0.3 * len(samples)))
    ax.set_axis_off()
    ax.set_xlim(0, SHOWN + 1)
    ax.set_ylim(len(samples), -1)
    for row, (language, group) in enumerate(samples.items()):
        ax.text(0, row, language, fontweight="bold", va="center")
        for column, name in enumerate(group[:SHOWN], start=1):
            ax.text(column, row, name or "(empty)", va="center",
                    color="grey" if name in known_names else "black")
    ax.set_title(title)
    fig.tight_layout()
    plots.save(fig, path)


def sample_scores(model: NameGenerator, data: Data, count: int, seed: int,
                  classify: Classifier | None) -> tuple[dict[str, list[str]], dict[str, float]]:
    """`count` samples per language at temperature 1 with the seed's generator, their
    novel_fraction and (with a classifier) language_agreement."""
    generator = torch.Generator().manual_seed(seed)
    samples = {language: sample(model, data.vocab, i, count, generator=generator)
               for i, language in enumerate(data.languages)}
    every = [name for group in samples.values() for name in group]
    novel = [name for name in every if name and name not in data.known_names]
    scores = {"novel_fraction": len(novel) / len(every)}
    if classify is not None:
        scores["language_agreement"] = agreement(classify, samples)
    return samples, scores


def write_samples(samples: dict[str, list[str]], known_names: set[str], path: Path) -> None:
    """samples.csv: language, name, and whether the training file holds the name."""
    rows = [("language", "name", "in_training_file")]
    rows += [(language, name, name in known_names)
             for language, group in samples.items() for name in group]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    atomic_write_text(path, out.getvalue())


def report(run: Run, test: dict[str, dict[str, Any]], data: Data, best: SeedResult,
           best_seed: int, ngram_per_language: dict[str, float], seconds: float) -> None:
    """The comparison table, the samples and bits per language; samples.csv and plots."""
    print(comparison_table(test, ["bits_per_char", "novel_fraction", "language_agreement"]))
    ratio = test["model"]["bits_per_char"] / test["ngram"]["bits_per_char"]
    print(f"model / ngram bits per character = {ratio:.3f}; {seconds:.1f} s training")
    print(f"model+ngram: the mixture with the model's weight "
          f"{test['model+ngram']['model_weight']:.2f} (chosen on validation)")
    if "language_agreement" in test["model"]:
        share = test["model"]["language_agreement"] / test["real_names"]["language_agreement"]
        print(f"language_agreement of samples / of real test names = {share:.3f}")
    samples = best.outputs["samples"]
    print(f"samples at temperature 1 (seed {best_seed}; * = a name of the training file):")
    for language, group in samples.items():
        print(f"  {language:<11} " + ", ".join(name + ("*" if name in data.known_names else "")
                                               for name in group[:SHOWN]))
    write_samples(samples, data.known_names, run.dir / "samples.csv")
    samples_plot(samples, data.known_names, run.dir / "samples.png",
                 f"sampled names at temperature 1 (seed {best_seed}; grey: in the training "
                 "file)")
    per_language = {"model": best.outputs["per_language"], "ngram": ngram_per_language}
    counts = {language: len(group) for language, group in names_by_language(data.test).items()}
    print(f"test bits per character by language (seed {best_seed}; test names):")
    for language, bits in per_language["model"].items():
        print(f"  {language:<11} model {bits:.3f}   ngram {ngram_per_language[language]:.3f}"
              f"   ({counts[language]})")
    bits_by_language_plot(per_language, run.dir / "bits_by_language.png")
    plots.training_curve(best.history.epochs, run.dir / "training_curve.png",
                         keys=["bits_per_char"], log_scale=False, unit="bits per character")


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.hidden_size, cfg.samples = min(cfg.epochs, 2), 32, 5
        cfg.max_order = min(cfg.max_order, 3)
    run = Run(cfg)
    device = run.device
    data = read_data(cfg)
    run.data_checked()  # --preflight ends here, the files read and checked
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        data.encoded[split] for split in ("train", "validation", "test"))

    # Baselines: n-gram models, and how much of the real test names the classifier confirms.
    chosen, ngram_test, ngram_val = ngram_baselines(data, cfg.max_order)
    baselines = {method: {"bits_per_char": bits_per_char(p)} for method, p in ngram_test.items()}
    print("the chosen baselines on test:\n" + comparison_table(baselines, ["bits_per_char"]))
    classify, classifier_note = find_classifier(cfg)
    print(classifier_note)
    if classify is not None:
        baselines["real_names"] = {"language_agreement": agreement(
            classify, names_by_language(data.test))}

    lengths = np.array([len(x) for x in x_train])
    model_config = ModelConfig(cell=cfg.cell, impl=cfg.impl, embedding_dim=cfg.embedding_dim,
                               language_dim=cfg.language_dim, hidden_size=cfg.hidden_size,
                               num_layers=cfg.num_layers, dropout=cfg.dropout)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for rows in length_buckets(lengths, cfg.batch_size):
            yield teacher_forcing_batch([x_train[i] for i in rows],
                                        [y_train[i] for i in rows], device)

    def step(model: NameGenerator, batch: tuple[torch.Tensor, ...], carried: None):
        """One training step's loss: the next character at every position, the true one
        fed in (teacher forcing). The shared loop then does zero_grad, backward,
        clipping, the optimizer's and the schedule's step. Nothing is carried over."""
        x, language, y = batch
        logits = model(x, language)[0]  # (B, T, V); cross_entropy wants (B, V, T)
        return nn.functional.cross_entropy(logits.transpose(1, 2), y,
                                           ignore_index=IGNORE), None

    def validate(model: NameGenerator) -> dict[str, float]:
        return {"bits_per_char": bits_per_char(token_probabilities(model, x_val, y_val))}

    def train_seed(seed: int) -> SeedResult:
        model = NameGenerator(len(data.vocab), len(data.languages), model_config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        steps_per_epoch = -(-len(x_train) // cfg.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, cfg.lr, total_steps=steps_per_epoch * cfg.epochs)
        history = run.fit(model, optimizer, batches, step, validate, seed=seed,
                          about=f"{cfg.cell} ({cfg.impl})", monitor="bits_per_char",
                          clip_norm=cfg.clip_norm, scheduler=scheduler, scheduler_step="batch")
        # Test, once, with the best-on-validation weights.
        p = token_probabilities(model, x_test, y_test)
        samples, sampled = sample_scores(model, data, cfg.samples, seed, classify)
        # The network and the n-gram err in different places: their mixture
        # w P_model + (1 - w) P_ngram, with w chosen on validation, shows how much.
        p_val = token_probabilities(model, x_val, y_val)
        weight = min(MIXTURE_WEIGHTS, key=lambda w: bits_per_char(w * p_val + (1 - w) * ngram_val))
        mixture = {"bits_per_char": bits_per_char(weight * p + (1 - weight) * ngram_test["ngram"]),
                   "model_weight": float(weight)}
        return SeedResult({"model": {"bits_per_char": bits_per_char(p), **sampled},
                           "model+ngram": mixture}, history,
                          {"model": model, "samples": samples,
                           "per_language": bits_by_language(data, p)})

    seeds = run.each_seed(train_seed)

    # The seed best on validation is the one sample.py uses and the report shows.
    best = seeds.best_on_validation()
    best_seed = best.seed
    save_model(run.dir / "model.pt", best.outputs["model"], data.vocab, data.languages,
               seed=best_seed)
    test = {**seeds.test(), **baselines}
    report(run, test, data, best, best_seed, bits_by_language(data, ngram_test["ngram"]),
           seeds.seconds)
    config = {**asdict(cfg), "ngram_chosen": str(chosen["ngram"]),
              "unigram_chosen": str(chosen["unigram"])}
    run.finish(test, seeds.seconds, config=config)
    print(f"wrote {run.dir}/metrics.json, samples.csv, plots; model for sample.py: "
          f"{run.dir / 'model.pt'}")
    return test


if __name__ == "__main__":
    run_main(main)
