"""name_classifier: surname -> language with a character-level bidirectional GRU.

Data: names_train.csv (13,374 rows) and names_test.csv (6,700 rows), `Name,Language`, no
header, 18 languages (the PyTorch tutorial's names in a course's split); also the course's
.csv.gz files, or a folder of per-language *.txt files as in the tutorial (`--data-dir`).
Validation is a stratified 10% of the training file; the test file is scored once, with
the weights of the best epoch on validation.

    make name_classifier                      # python -m tasks.name_classifier.train
    python -m tasks.name_classifier.train --preset course    # the course's configuration
    python -m tasks.name_classifier.predict Nguyen Schmidt "O'Neill" --top 3

The default run's numbers, and the command that made them, are in the README's table,
beside a majority-class baseline and a character n-gram linear classifier (fastText-style)
trained in the same run. Most Scottish and Portuguese test names occur in the training file
under another language, which caps what any classifier of the spelling can reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import metrics, plots
from core.config import RunConfig, UserError, arg, parse, run_main
from core.names import SPLIT_SEED, load_names, shrink, stratified_split
from core.report import comparison_table
from core.run import Run, SeedResult
from core.text import Vocab, length_buckets, pad_batch
from core.train import fit, set_threads

from .model import ModelConfig, NameClassifier, build_vocab, encode, logits_for, save_model

VALIDATION_SHARE = 0.1
NGRAM_MAX = 4  # the n-gram baseline's longest character n-gram

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
    ngram_epochs: int = arg(5, "epochs of the n-gram linear baseline", minimum=1)


# ---------------------------------------------------------------- data

# ---------------------------------------------------------------- training

def scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """The three test metrics of the issue, for the model and the baseline alike."""
    return {"accuracy": metrics.accuracy(y_true, y_pred),
            "macro_f1": metrics.macro_f1(y_true, y_pred, num_classes),
            "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred, num_classes)}


def ngrams(name: str) -> list[str]:
    """The character 1- to 4-grams of the name with boundary marks: "Li" -> <, L, i, >,
    <L, Li, i>, <Li, Li>, <Li>."""
    marked = f"<{name}>"
    return [marked[i:i + n] for n in range(1, NGRAM_MAX + 1)
            for i in range(len(marked) - n + 1)]


def train_ngram_linear(train: tuple[list[str], np.ndarray], validation: tuple[list[str],
                       np.ndarray], num_classes: int, epochs: int,
                       batch_size: int) -> Callable[[list[str]], np.ndarray]:
    """The fastText-style baseline: a linear classifier on the bag of the name's character
    1- to 4-grams (an EmbeddingBag of one weight vector per n-gram of the training names,
    averaged), trained with Adam; the epoch is chosen on validation accuracy. Returns a
    function from names to predicted classes."""
    grams = Vocab.from_texts([ngrams(name) for name in train[0]], unk=True)
    model = nn.EmbeddingBag(len(grams), num_classes, mode="mean")
    nn.init.zeros_(model.weight)
    bias = nn.Parameter(torch.zeros(num_classes))
    optimizer = torch.optim.Adam([*model.parameters(), bias], lr=0.05)

    def bags(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [grams.encode(ngrams(name)) for name in names]
        offsets = torch.tensor([0, *np.cumsum([len(i) for i in ids])[:-1]])
        return torch.tensor([i for row in ids for i in row]), offsets

    def predict(names: list[str]) -> np.ndarray:
        with torch.no_grad():
            return (model(*bags(names)) + bias).argmax(1).numpy()

    targets = torch.tensor(train[1])
    best, best_state = -1.0, None
    for _ in range(epochs):
        order = np.random.permutation(len(train[0]))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad()
            logits = model(*bags([train[0][i] for i in rows])) + bias
            nn.functional.cross_entropy(logits, targets[rows]).backward()
            optimizer.step()
        accuracy = metrics.accuracy(validation[1], predict(validation[0]))
        if accuracy > best:
            best = accuracy
            best_state = (model.state_dict(), bias.detach().clone())
    model.load_state_dict(best_state[0])
    bias.data.copy_(best_state[1])
    return predict


# ---------------------------------------------------------------- evaluation and report

def per_language_table(y_true: np.ndarray, y_pred: np.ndarray,
                       labels: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support of each language on test."""
    precision, recall, f1 = metrics.precision_recall_f1(y_true, y_pred, len(labels))
    support = np.bincount(y_true, minlength=len(labels))
    return pd.DataFrame({"language": labels, "precision": precision.round(4),
                         "recall": recall.round(4), "f1": f1.round(4), "support": support})


def mistakes(names: list[str], y_true: np.ndarray, y_pred: np.ndarray, labels: list[str],
             count: int = 8) -> list[str]:
    """A few test names the model got wrong, as 'name: true -> predicted', spread evenly
    over the file (which is sorted by language)."""
    wrong = np.flatnonzero(y_true != y_pred)
    if len(wrong) > count:
        wrong = wrong[np.linspace(0, len(wrong) - 1, count).astype(int)]
    return [f"{names[i]}: {labels[y_true[i]]} -> {labels[y_pred[i]]}" for i in wrong]


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.ngram_epochs = min(cfg.epochs, 2), 1
    run = Run(cfg)
    device = run.device

    # Data: the training file gives train and validation, the test file is scored once.
    train_file, test_file, source = load_names(cfg.data_dir)
    if cfg.dry_run:
        train_file, test_file = shrink(train_file, 30), shrink(test_file, 10)
    train, validation = stratified_split(train_file, VALIDATION_SHARE, SPLIT_SEED)
    labels = sorted(train_file["language"].unique())
    unseen = sorted(set(test_file["language"]) - set(labels))
    if unseen:
        raise UserError(f"the test data has languages the training data lacks: {unseen}")
    index = {language: i for i, language in enumerate(labels)}
    print(f"data ({source}): {len(train)} train, {len(validation)} validation, "
          f"{len(test_file)} test names, {len(labels)} languages")

    model_config = ModelConfig(
        code_points=cfg.code_points, boundaries=cfg.boundaries, cell=cfg.cell, impl=cfg.impl,
        embedding_dim=cfg.embedding_dim, hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers, dropout=cfg.dropout, pooling=cfg.pooling,
        conv_channels=cfg.conv_channels)
    vocab = build_vocab(train["name"].tolist(), model_config)

    def encoded(frame: pd.DataFrame) -> tuple[list[list[int]], np.ndarray]:
        return ([encode(name, vocab, model_config) for name in frame["name"]],
                frame["language"].map(index).to_numpy())

    x_train, y_train = encoded(train)
    x_val, y_val = encoded(validation)
    x_test, y_test = encoded(test_file)
    test_names = test_file["name"].tolist()
    # Test names the training file never holds (under any language): what the model
    # makes of a spelling it has not seen, free of names the split leaks.
    unseen_rows = ~test_file["name"].isin(set(train_file["name"])).to_numpy()

    def test_scores(predicted: np.ndarray) -> dict[str, float]:
        return {**scores(y_test, predicted, len(labels)),
                "accuracy_unseen": metrics.accuracy(y_test[unseen_rows],
                                                    predicted[unseen_rows])}

    # Baselines: always the most frequent language, and a character n-gram linear model.
    majority = int(np.bincount(y_train, minlength=len(labels)).argmax())
    ngram_predict = train_ngram_linear((train["name"].tolist(), y_train),
                                       (validation["name"].tolist(), y_val), len(labels),
                                       cfg.ngram_epochs, cfg.batch_size)
    baselines = {"majority": test_scores(np.full_like(y_test, majority)),
                 "ngram_linear": test_scores(ngram_predict(test_names))}
    print(comparison_table(baselines, ["accuracy", "macro_f1", "accuracy_unseen"]))

    lengths = np.array([len(x) for x in x_train])
    targets = torch.tensor(y_train)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for rows in length_buckets(lengths, cfg.batch_size):
            x, x_lengths = pad_batch([x_train[i] for i in rows], vocab.pad_index)
            yield x.to(device), x_lengths, targets[rows].to(device)

    def loss_fn(model: NameClassifier, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, x_lengths, y = batch
        return nn.functional.cross_entropy(model(x, x_lengths), y)

    def validate(model: NameClassifier) -> dict[str, float]:
        logits = logits_for(model, x_val, vocab.pad_index)
        predicted = logits.argmax(1).numpy()
        return {"loss": nn.functional.cross_entropy(logits, torch.tensor(y_val)).item(),
                "accuracy": metrics.accuracy(y_val, predicted),
                "macro_f1": metrics.macro_f1(y_val, predicted, len(labels))}

    def train_seed(seed: int, seed_dir: Path, resume: bool) -> SeedResult:
        model = NameClassifier(len(vocab), len(labels), model_config,
                               vocab.pad_index).to(device)
        set_threads(cfg.threads, model)
        if seed == cfg.seed:
            run.describe(model, f"{cfg.cell} ({cfg.impl})")
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = None
        if cfg.schedule == "onecycle":
            steps_per_epoch = -(-len(x_train) // cfg.batch_size)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, cfg.lr, total_steps=steps_per_epoch * cfg.epochs)
        # The epoch is chosen by validation accuracy, not loss: in the last epochs the loss
        # rises while accuracy still improves, as the model grows sure of names that the
        # data gives several languages (by loss, one seed in three stopped at epoch 8/12).
        history = fit(model, optimizer, batches, loss_fn, validate, epochs=cfg.epochs,
                      run_dir=seed_dir, config=asdict(cfg), monitor="accuracy", mode="max",
                      clip_norm=cfg.clip_norm, scheduler=scheduler, scheduler_step="batch",
                      resume=resume, eval_only=cfg.eval_only, desc=f"{run.task} seed {seed}")
        predicted = logits_for(model, x_test, vocab.pad_index).argmax(1).numpy()
        return SeedResult({"model": test_scores(predicted)}, history,
                          {"predicted": predicted, "model": model})

    seeds = run.each_seed(train_seed)

    # The seed best on validation is the one predict.py uses and the report shows.
    best_index = max(range(len(run.seeds)),
                     key=lambda i: seeds.results[i].history.best_value)
    best_seed, best = run.seeds[best_index], seeds.results[best_index]
    save_model(run.dir / "model.pt", best.outputs["model"], vocab, labels, seed=best_seed)

    test = {**seeds.test(), **baselines}
    print(comparison_table(test, ["accuracy", "macro_f1", "balanced_accuracy",
                                  "accuracy_unseen"]))
    ratio = test["model"]["accuracy"] / test["ngram_linear"]["accuracy"]
    print(f"model / ngram_linear accuracy = {ratio:.3f}"
          + ("" if ratio > 1 else ": the network does not beat the n-gram baseline"))
    predicted = best.outputs["predicted"]
    table = per_language_table(y_test, predicted, labels)
    table.to_csv(run.dir / "per_language.csv", index=False)
    print(f"per language (seed {best_seed}):\n{table.to_string(index=False)}")
    print("some mistakes:", "; ".join(mistakes(test_names, y_test, predicted, labels)))
    counts = metrics.confusion_matrix(y_test, predicted, len(labels))
    plots.confusion(counts, labels, run.dir / "confusion.png",
                    f"test confusion, normalised by row (seed {best_seed})")
    plots.training_curve(best.history.epochs, run.dir / "training_curve.png",
                         keys=["accuracy", "macro_f1"], log_scale=False,
                         unit="accuracy, macro-F1")
    run.finish(test, seeds.seconds)
    print(f"training: {seeds.seconds:.1f} s in all; model for predict.py: "
          f"{run.dir / 'model.pt'}")
    return test


if __name__ == "__main__":
    run_main(main)
