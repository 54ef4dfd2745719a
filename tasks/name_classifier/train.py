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
iterations chosen on the validation split as the network's epoch is. Neither draws random
numbers, so they are the same in every run. The default run's numbers, and the command
that made them, are in the README's table. Most Scottish and Portuguese test names occur
in the training file under another language, which caps what any classifier of the
spelling can reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import metrics, plots
from core.config import RunConfig, UserError, arg, parse, run_main
from core.name_model import ModelConfig, NameClassifier, build_vocab, encode, logits_for, save_model
from core.names import SPLIT_SEED, load_names, shrink, stratified_split
from core.report import comparison_table
from core.run import Run, SeedResult
from core.text import length_buckets, pad_batch

VALIDATION_SHARE = 0.1
NGRAM_MAX = 4  # the n-gram baseline's longest character n-gram
# The n-gram baseline's L2 weights tried on validation (on the mean loss; scikit-learn's
# C is 1 / (L2 * training names)), and its L-BFGS iterations, scored every NGRAM_CHUNK.
NGRAM_L2 = (3e-5, 1e-5, 3e-6, 1e-6, 3e-7)
NGRAM_CHUNK, NGRAM_ITERATIONS = 25, 150

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


def scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """The project's three test metrics, for the model and the baselines alike."""
    return {"accuracy": metrics.accuracy(y_true, y_pred),
            "macro_f1": metrics.macro_f1(y_true, y_pred, num_classes),
            "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred, num_classes)}


@dataclass
class Split:
    """One split's names and their languages' indices."""

    names: list[str]
    y: np.ndarray


def read_data(cfg: Config) -> tuple[dict[str, Split], list[str], np.ndarray]:
    """The train, validation and test splits, the sorted languages, and which test names
    the training file never holds (under any language): what a classifier makes of a
    spelling it has not seen, free of the names the course's split leaks."""
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
    splits = {split: Split(frame["name"].tolist(), frame["language"].map(index).to_numpy())
              for split, frame in [("train", train), ("validation", validation),
                                   ("test", test_file)]}
    unseen_rows = ~test_file["name"].isin(set(train_file["name"])).to_numpy()
    return splits, labels, unseen_rows


def ngrams(name: str) -> list[str]:
    """The character 1- to 4-grams of the name with boundary marks: "Li" -> <, L, i, >,
    <L, Li, i>, <Li, Li>, <Li>."""
    marked = f"<{name}>"
    return [marked[i:i + n] for n in range(1, NGRAM_MAX + 1)
            for i in range(len(marked) - n + 1)]


class TfidfGrams:
    """The n-gram baseline's features: a name -> the TF-IDF weights of its n-grams, as
    (n-gram ids, offsets, weights) for an EmbeddingBag in "sum" mode.

        weight(g, name) = (1 + ln count(g in name)) * idf(g),
        idf(g) = ln((1 + N) / (1 + names of the N training names holding g)) + 1,

    each name's weights scaled to unit length (scikit-learn's TfidfVectorizer with
    sublinear_tf). Only the training names' n-grams have ids; others are left out."""

    def __init__(self, names: list[str]) -> None:
        held = [set(ngrams(name)) for name in names]
        self.index = {g: i for i, g in enumerate(sorted(set().union(*held)))}
        holding = np.zeros(len(self.index))
        for grams in held:
            holding[[self.index[g] for g in grams]] += 1
        self.idf = np.log((1 + len(names)) / (1 + holding)) + 1

    def __call__(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids, offsets, weights = [], [], []
        for name in names:
            known = [self.index[g] for g in ngrams(name) if g in self.index]
            grams, counts = np.unique(known, return_counts=True)
            w = (1 + np.log(counts)) * self.idf[grams]
            offsets.append(len(ids))
            ids += grams.tolist()
            weights += (w / np.linalg.norm(w)).tolist()
        return (torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long),
                torch.tensor(weights, dtype=torch.float32))


Bags = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (n-gram ids, offsets, weights)


def linear_logits(bags: Bags, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """W x + b for the TF-IDF vectors x of a batch of names: (B, num_classes)."""
    ids, offsets, weights = bags
    return nn.functional.embedding_bag(ids, weight, offsets, mode="sum",
                                       per_sample_weights=weights) + bias


def lbfgs_path(bags: Bags, targets: torch.Tensor, num_features: int, num_classes: int,
               l2: float) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(iterations, W, b) every NGRAM_CHUNK full-batch L-BFGS iterations, up to
    NGRAM_ITERATIONS, minimising the mean cross-entropy + l2 / 2 * |W|^2 from zero
    weights: a convex problem, so no random numbers and the same path in every run."""
    weight = torch.zeros(num_features, num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=NGRAM_CHUNK, history_size=20,
                                  line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = (nn.functional.cross_entropy(linear_logits(bags, weight, bias), targets)
                 + l2 / 2 * weight.pow(2).sum())
        value.backward()
        return value

    for iterations in range(NGRAM_CHUNK, NGRAM_ITERATIONS + 1, NGRAM_CHUNK):
        optimizer.step(loss)
        yield iterations, weight.detach().clone(), bias.detach().clone()


def train_ngram_linear(train: Split, validation: Split, num_classes: int
                       ) -> tuple[Callable[[list[str]], np.ndarray], dict[str, Any]]:
    """The linear baseline, softmax(W x + b) on the TF-IDF n-grams x: every L2 weight of
    NGRAM_L2 along its L-BFGS path, scored on validation; the best (L2, iterations) by
    validation accuracy is kept, the first of ties. Returns a function from names to
    predicted classes, and the chosen setting."""
    features = TfidfGrams(train.names)
    x_train, x_val = features(train.names), features(validation.names)
    best: dict[str, Any] = {"validation_accuracy": -1.0}
    for l2 in NGRAM_L2:
        for iterations, weight, bias in lbfgs_path(x_train, torch.tensor(train.y),
                                                   len(features.index), num_classes, l2):
            predicted = linear_logits(x_val, weight, bias).argmax(1).numpy()
            accuracy = metrics.accuracy(validation.y, predicted)
            if accuracy > best["validation_accuracy"]:
                best = {"l2": l2, "iterations": iterations, "validation_accuracy": accuracy,
                        "weights": (weight, bias)}
    weight, bias = best.pop("weights")

    def predict(names: list[str]) -> np.ndarray:
        return linear_logits(features(names), weight, bias).argmax(1).numpy()

    return predict, best


def test_scores(test: Split, unseen_rows: np.ndarray, predicted: np.ndarray,
                num_classes: int) -> dict[str, float]:
    """`scores` on the test file, and the accuracy on its names the training file lacks."""
    return {**scores(test.y, predicted, num_classes),
            "accuracy_unseen": metrics.accuracy(test.y[unseen_rows], predicted[unseen_rows])}


def baselines(splits: dict[str, Split], labels: list[str]
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Test predictions of the majority language and of the n-gram linear model, and the
    latter's setting chosen on validation."""
    majority = int(np.bincount(splits["train"].y, minlength=len(labels)).argmax())
    ngram_predict, chosen = train_ngram_linear(splits["train"], splits["validation"],
                                               len(labels))
    print(f"ngram_linear: L2 {chosen['l2']:g}, {chosen['iterations']} L-BFGS iterations "
          f"(validation accuracy {chosen['validation_accuracy']:.4f}, the best of "
          f"{len(NGRAM_L2)} L2 weights x {NGRAM_ITERATIONS // NGRAM_CHUNK} lengths)")
    test = splits["test"]
    return {"majority": np.full_like(test.y, majority),
            "ngram_linear": ngram_predict(test.names)}, chosen


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
    splits, labels, unseen_rows = read_data(cfg)
    run.data_checked()  # --preflight ends here, the files read and checked
    model_config = ModelConfig(
        code_points=cfg.code_points, boundaries=cfg.boundaries, cell=cfg.cell, impl=cfg.impl,
        embedding_dim=cfg.embedding_dim, hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers, dropout=cfg.dropout, pooling=cfg.pooling,
        conv_channels=cfg.conv_channels)
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
        """One training step's loss; the shared loop then does zero_grad, backward,
        clipping, the optimizer's and the schedule's step. Nothing is carried over."""
        x, x_lengths, y = batch
        return nn.functional.cross_entropy(model(x, x_lengths), y), None

    def validate(model: NameClassifier) -> dict[str, float]:
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
        # The epoch is chosen by validation accuracy, not loss: in the last epochs the loss
        # rises while accuracy still improves, as the model grows sure of names that the
        # data gives several languages (by loss, one seed in three stopped at epoch 8/12).
        history = run.fit(model, optimizer, batches, step, validate, seed=seed,
                          about=f"{cfg.cell} ({cfg.impl})", monitor="accuracy", mode="max",
                          clip_norm=cfg.clip_norm, scheduler=scheduler, scheduler_step="batch")
        predicted = logits_for(model, x_test, vocab.pad_index).argmax(1).numpy()
        return SeedResult({"model": test_scores(splits["test"], unseen_rows, predicted,
                                                len(labels))}, history,
                          {"predicted": predicted, "model": model})

    seeds = run.each_seed(train_seed)

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
