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
1-gram is method unigram. See ngram.py and baselines.py.

    make name_generator                      # python -m tasks.name_generator.train
    python -m tasks.name_generator.train --cell lstm --impl core
    python -m tasks.name_generator.sample --language Russian --count 10 --temperature 0.8
    python -m tasks.name_generator.sample --language all

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from core import distributed, plots
from core.config import RunConfig, arg, parse, require, run_main
from core.files import atomic_write_text
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.text import length_buckets
from core.train import seed_everything, train_epoch

from .baselines import CLASSIFIER, Classifier, agreement, find_classifier, ngram_baselines
from .data import Data, names_by_language, read_data
from .model import (
    IGNORE,
    ModelConfig,
    NameGenerator,
    bits_per_char,
    sample,
    save_model,
    teacher_forcing_batch,
    token_probabilities,
)

SHOWN = 5  # samples per language printed and shown in the report
MIXTURE_WEIGHTS = np.linspace(0, 1, 21)  # the model's weights tried in model+ngram


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


def bits_by_language(data: Data, p: np.ndarray) -> dict[str, float]:
    """Per-token test probabilities -> bits per character of each test language (the
    tokens of a name are its characters and its <end>)."""
    names, languages = data.encoded["test"]
    token_language = np.repeat(languages, [len(x) for x in names])
    return {data.languages[i]: bits_per_char(p[token_language == i])
            for i in sorted(set(languages))}


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
    data = read_data(cfg.data_dir, cfg.dry_run)
    run.data_checked()  # --preflight ends here, the files read and checked
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        data.encoded[split] for split in ("train", "validation", "test"))

    # Baselines: n-gram models, and how much of the real test names the classifier confirms.
    chosen, ngram_test, ngram_val = ngram_baselines(data, cfg.max_order)
    baselines = {method: {"bits_per_char": bits_per_char(p)} for method, p in ngram_test.items()}
    print("the chosen baselines on test:\n" + comparison_table(baselines, ["bits_per_char"]))
    classify, classifier_note = find_classifier(cfg.classifier)
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
        """One batch's loss: the next character at every position, the true one fed in
        (teacher forcing). train_epoch then does zero_grad, backward, clip, the
        optimizer's and the one-cycle schedule's step. Nothing is carried over."""
        x, language, y = batch
        logits = model(x, language)[0]  # (B, T, V); cross_entropy wants (B, V, T)
        return nn.functional.cross_entropy(logits.transpose(1, 2), y,
                                           ignore_index=IGNORE), None

    def validate(model: NameGenerator) -> dict[str, float]:
        """Bits per character on validation (token_probabilities puts the model in eval
        mode, without dropout, and runs it under no_grad)."""
        return {"bits_per_char": bits_per_char(token_probabilities(model, x_val, y_val))}

    def train_seed(seed: int) -> SeedResult:
        model = NameGenerator(len(data.vocab), len(data.languages), model_config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        steps_per_epoch = -(-len(x_train) // cfg.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, cfg.lr, total_steps=steps_per_epoch * cfg.epochs)
        # best.pt, last.pt and history.csv in seed<N>/; --resume restores all three.
        checkpoint = run.checkpoint(seed, monitor="bits_per_char", model=model,
                                    optimizer=optimizer, scheduler=scheduler)
        trained = distributed.wrap(model)  # under torchrun, DDP averages the gradients
        for epoch in checkpoint.epochs(cfg.epochs):
            # The one-cycle schedule steps after every batch, inside train_epoch.
            loss = train_epoch(trained, optimizer, batches(), step, cfg.clip_norm,
                               scheduler=scheduler)
            checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
        history = checkpoint.load_best()
        # Test, once, with the best-on-validation weights.
        p = token_probabilities(model, x_test, y_test)
        samples, sampled = sample_scores(model, data, cfg.samples, seed, classify)
        # The network and the n-gram err in different places: their mixture
        # w P_model + (1 - w) P_ngram, with w chosen on validation, shows how much.
        p_val = token_probabilities(model, x_val, y_val)
        weight = min(MIXTURE_WEIGHTS, key=lambda w: bits_per_char(w * p_val + (1 - w) * ngram_val))
        mixture = {"bits_per_char": bits_per_char(weight * p + (1 - weight) * ngram_test["ngram"]),
                   "model_weight": float(weight)}
        test = {"model": {"bits_per_char": bits_per_char(p), **sampled},
                "model+ngram": mixture}
        return SeedResult(seed, test, history, {"model": model, "samples": samples,
                                                "per_language": bits_by_language(data, p)})

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return {}  # under torchrun, process 0 alone reports

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
