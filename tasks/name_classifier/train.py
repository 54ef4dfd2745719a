"""name_classifier: surname -> language with a character-level bidirectional GRU.

Data: names_train.csv (13,374 rows) and names_test.csv (6,700 rows), `Name,Language`, no
header, 18 languages (the PyTorch tutorial's names in a course's split); also the course's
.csv.gz files, or a folder of per-language *.txt files as in the tutorial (`--data-dir`).
Validation is a stratified 10% of the training file; the test file is scored once, with
the weights of the best epoch on validation.

    make name_classifier                      # python -m tasks.name_classifier.train
    python -m tasks.name_classifier.train --preset course    # the course's configuration
    python -m tasks.name_classifier.predict Papadopoulos Yoshida Lewandowski --top 3

Baselines, trained in the same run on the same split and scored with the same metrics:
the majority language, and a linear softmax on TF-IDF-weighted character 1- to 4-grams
(the standard strong baseline for short strings), its L2 weight and its number of L-BFGS
iterations chosen on the validation split as the network's epoch is (baselines.py).
Neither draws random numbers, so they are the same in every run. The default run's
numbers, and the command that made them, are in the README's table. Most Scottish and
Portuguese test names occur in the training file under another language, which caps what
any classifier of the spelling can reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import distributed, metrics, plots
from core.config import RunConfig, arg, parse, require, run_main
from core.name_model import (
    ACCENTS,
    CASES,
    ModelConfig,
    NameClassifier,
    build_vocab,
    encode,
    logits_for,
    save_model,
)
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.text import length_buckets, pad_batch
from core.train import seed_everything, train_epoch

from .baselines import baselines
from .data import Split, read_data


@dataclass
class Config(RunConfig):
    # The seeds' classifier (the course: Adam at a fixed rate, no clipping) and the best of
    # what was measured on validation. A preset sets the defaults of the flags below it;
    # a flag given on the command line wins.
    PRESETS: ClassVar[dict[str, dict]] = {
        "course": dict(code_points=True, boundaries=False, embedding_dim=100, hidden_size=100,
                       num_layers=2, dropout=0.0, pooling="final", conv_channels=0,
                       epochs=20, batch_size=256, lr=1e-3, schedule="constant",
                       clip_norm=0.0),
        "default": dict(code_points=False, boundaries=True, embedding_dim=64,
                        hidden_size=128, num_layers=1, dropout=0.2, pooling="final+max",
                        conv_channels=64, epochs=12, batch_size=128, lr=5e-3,
                        schedule="onecycle", clip_norm=1.0),
    }

    data_dir: str = arg("", "folder with names_train.csv and names_test.csv (or .csv.gz), "
                            "or with one <Language>.txt per language; empty: fetch the data")
    preset: str = arg("default", "default: the measured best; course: the seeds' classifier "
                                 "(2-layer BiGRU, code points, Adam 1e-3, batch 256); sets "
                                 "the defaults of the flags below", choices=["default", "course"])
    cell: str = arg("gru", "recurrent cell", choices=["rnn", "lstm", "gru"])
    impl: str = arg("torch", "torch.nn's layers (fast) or core's cells (same weights)",
                    choices=["torch", "core"])
    code_points: bool = arg(False, "embed characters by code point (the course) instead of "
                                   "a vocabulary of the training names' characters")
    boundaries: bool = arg(True, "add <s> and </s> around each name")
    case: str = arg("title", "title: names as written, and predict reads SMITH or smith as "
                             "Smith; lower: every name lower-cased; keep: as written",
                    choices=list(CASES))
    accents: str = arg("strip", "strip: Müller is read as Muller; keep: ü stays a character",
                       choices=list(ACCENTS))
    embedding_dim: int = arg(64, "character embedding size", minimum=1)
    hidden_size: int = arg(128, "hidden units per direction", minimum=1)
    num_layers: int = arg(1, "stacked recurrent layers", minimum=1)
    dropout: float = arg(0.2, "dropout on embeddings and features", minimum=0, maximum=0.99)
    pooling: str = arg("final+max", "features of the name: the final states, or those and "
                                    "the max over steps", choices=["final", "final+max"])
    conv_channels: int = arg(64, "channels of the char-CNN branch (0: none)", minimum=0)
    epochs: int = arg(12, "training epochs", minimum=1)
    batch_size: int = arg(128, "names per batch", minimum=1)
    lr: float = arg(5e-3, "peak learning rate", minimum=0)
    schedule: str = arg("onecycle", "learning-rate schedule", choices=["onecycle", "constant"])
    clip_norm: float = arg(1.0, "clip the gradient norm to this (0: no clipping)", minimum=0)

    def check(self) -> None:
        super().check()
        # code points are ASCII (the course's 128): ü would be read as <unk> all the same
        require(not (self.code_points and self.accents == "keep"),
                "--accents keep needs a vocabulary of the data's characters: drop "
                "--code-points (--preset course sets it)")


def scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """The project's three test metrics, for the model and the baselines alike."""
    return {"accuracy": metrics.accuracy(y_true, y_pred),
            "macro_f1": metrics.macro_f1(y_true, y_pred, num_classes),
            "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred, num_classes)}


def test_scores(test: Split, unseen_rows: np.ndarray, predicted: np.ndarray,
                num_classes: int) -> dict[str, float]:
    """`scores` on the test file, and the accuracy on its names the training file lacks."""
    return {**scores(test.y, predicted, num_classes),
            "accuracy_unseen": metrics.accuracy(test.y[unseen_rows], predicted[unseen_rows])}


def per_language_table(y_true: np.ndarray, predicted: dict[str, np.ndarray],
                       labels: list[str]) -> pd.DataFrame:
    """Support and each method's precision, recall (the language's accuracy) and F1 on
    test, one row per language."""
    table = pd.DataFrame({"language": labels,
                          "support": np.bincount(y_true, minlength=len(labels))})
    for method, y_pred in predicted.items():
        precision, recall, f1 = metrics.precision_recall_f1(y_true, y_pred, len(labels))
        prefix = "" if method == "model" else f"{method}_"
        table[f"{prefix}precision"] = precision.round(4)
        table[f"{prefix}recall"] = recall.round(4)
        table[f"{prefix}f1"] = f1.round(4)
    return table


def mistakes(names: list[str], y_true: np.ndarray, y_pred: np.ndarray, labels: list[str],
             count: int = 8) -> list[str]:
    """A few test names the model got wrong, as 'name: true -> predicted', spread evenly
    over the file (which is sorted by language)."""
    wrong = np.flatnonzero(y_true != y_pred)
    if len(wrong) > count:
        wrong = wrong[np.linspace(0, len(wrong) - 1, count).astype(int)]
    return [f"{names[i]}: {labels[y_true[i]]} -> {labels[y_pred[i]]}" for i in wrong]


def report(run: Run, test: dict[str, dict[str, Any]], splits: dict[str, Split],
           predicted: dict[str, np.ndarray], labels: list[str], best: SeedResult,
           best_seed: int) -> None:
    """The comparison table, model vs baseline, per-language scores and some mistakes;
    per_language.csv, confusion.png and training_curve.png."""
    print(comparison_table(test, ["accuracy", "macro_f1", "balanced_accuracy",
                                  "accuracy_unseen"]))
    ratio = test["model"]["accuracy"] / test["ngram_linear"]["accuracy"]
    print(f"model / ngram_linear accuracy = {ratio:.3f}"
          + ("" if ratio > 1 else ": the network does not beat the n-gram baseline"))
    y_test = splits["test"].y
    table = per_language_table(y_test, predicted, labels)
    table.to_csv(run.dir / "per_language.csv", index=False)
    shown = table[["language", "support", "recall", "f1", "ngram_linear_recall",
                   "ngram_linear_f1"]]
    print(f"per language on test (model: seed {best_seed}; recall is the language's "
          f"accuracy):\n{shown.to_string(index=False)}")
    print("some mistakes:", "; ".join(mistakes(splits["test"].names, y_test,
                                               predicted["model"], labels)))
    counts = metrics.confusion_matrix(y_test, predicted["model"], len(labels))
    plots.confusion(counts, labels, run.dir / "confusion.png",
                    f"test confusion, normalised by row (seed {best_seed})")
    plots.training_curve(best.history.epochs, run.dir / "training_curve.png",
                         keys=["accuracy", "macro_f1"], log_scale=False,
                         unit="accuracy, macro-F1")

def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs = min(cfg.epochs, 2)
    run = Run(cfg)
    device = run.device

    # Data: the training file gives train and validation, the test file is scored once.
    splits, labels, unseen_rows = read_data(cfg.data_dir, cfg.dry_run)
    run.data_checked()  # --preflight ends here, the files read and checked
    model_config = ModelConfig(
        code_points=cfg.code_points, boundaries=cfg.boundaries, cell=cfg.cell, impl=cfg.impl,
        embedding_dim=cfg.embedding_dim, hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers, dropout=cfg.dropout, pooling=cfg.pooling,
        conv_channels=cfg.conv_channels, case=cfg.case, accents=cfg.accents)
    vocab = build_vocab(splits["train"].names, model_config)
    x_train, x_val, x_test = ([encode(name, vocab, model_config) for name in splits[s].names]
                              for s in ("train", "validation", "test"))
    y_train, y_val = splits["train"].y, splits["validation"].y

    # Baselines: always the most frequent language, and a character n-gram linear model.
    # Its steps are small sparse products, which more threads only slow down.
    torch.set_num_threads(cfg.threads or 1)
    predicted, ngram_chosen = baselines(splits, labels)
    baseline_scores = {method: test_scores(splits["test"], unseen_rows, p, len(labels))
                       for method, p in predicted.items()}
    print(comparison_table(baseline_scores, ["accuracy", "macro_f1", "accuracy_unseen"]))

    lengths = np.array([len(x) for x in x_train])
    targets = torch.tensor(y_train)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for rows in length_buckets(lengths, cfg.batch_size):
            x, x_lengths = pad_batch([x_train[i] for i in rows], vocab.pad_index)
            yield x.to(device), x_lengths, targets[rows].to(device)

    def step(model: NameClassifier, batch: tuple[torch.Tensor, ...], carried: None):
        """One batch's loss (train_epoch then does zero_grad, backward, clip, the
        optimizer's and any one-cycle schedule's step). Nothing is carried over."""
        x, x_lengths, y = batch
        return nn.functional.cross_entropy(model(x, x_lengths), y), None

    def validate(model: NameClassifier) -> dict[str, float]:
        """Loss, accuracy and macro-F1 on validation (logits_for puts the model in eval
        mode, without dropout, and runs it under no_grad)."""
        logits = logits_for(model, x_val, vocab.pad_index)
        predicted = logits.argmax(1).numpy()
        return {"loss": nn.functional.cross_entropy(logits, torch.tensor(y_val)).item(),
                "accuracy": metrics.accuracy(y_val, predicted),
                "macro_f1": metrics.macro_f1(y_val, predicted, len(labels))}

    def train_seed(seed: int) -> SeedResult:
        model = NameClassifier(len(vocab), len(labels), model_config,
                               vocab.pad_index).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = None
        if cfg.schedule == "onecycle":
            steps_per_epoch = -(-len(x_train) // cfg.batch_size)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, cfg.lr, total_steps=steps_per_epoch * cfg.epochs)
        # best.pt, last.pt and history.csv in seed<N>/; --resume restores all three.
        # The epoch is chosen by validation accuracy, not loss: in the last epochs the loss
        # rises while accuracy still improves, as the model grows sure of names that the
        # data gives several languages (by loss, one seed in three stopped at epoch 8/12).
        checkpoint = run.checkpoint(seed, monitor="accuracy", mode="max", model=model,
                                    optimizer=optimizer, scheduler=scheduler)
        trained = distributed.wrap(model)  # under torchrun, DDP averages the gradients
        for epoch in checkpoint.epochs(cfg.epochs):
            # The one-cycle schedule (if any) steps after every batch, inside train_epoch.
            loss = train_epoch(trained, optimizer, batches(), step, cfg.clip_norm,
                               scheduler=scheduler)
            checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
        history = checkpoint.load_best()
        # Test, once, with the best-on-validation weights.
        predicted = logits_for(model, x_test, vocab.pad_index).argmax(1).numpy()
        return SeedResult(seed, {"model": test_scores(splits["test"], unseen_rows, predicted,
                                                      len(labels))}, history,
                          {"predicted": predicted, "model": model})

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return {}  # under torchrun, process 0 alone reports

    # The seed best on validation is the one predict.py uses and the report shows.
    best = seeds.best_on_validation()
    best_seed = best.seed
    save_model(run.dir / "model.pt", best.outputs["model"], vocab, labels, seed=best_seed)

    test = {**seeds.test(), **baseline_scores}
    report(run, test, splits, {"model": best.outputs["predicted"],
                               "ngram_linear": predicted["ngram_linear"]}, labels, best, best_seed)
    run.finish(test, seeds.seconds, config={**asdict(cfg), "ngram_linear_chosen": ngram_chosen})
    print(f"training: {seeds.seconds:.1f} s in all; model for predict.py: "
          f"{run.dir / 'model.pt'}")
    return test


if __name__ == "__main__":
    run_main(main)
