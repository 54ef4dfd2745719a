"""name_classifier's baselines, trained on the same split and scored with the same
metrics as the network: the majority language, and a linear softmax on TF-IDF-weighted
character 1- to 4-grams (the standard strong baseline for short strings), its L2 weight
and its number of L-BFGS iterations chosen on the validation split as the network's epoch
is. Neither draws random numbers, so they are the same in every run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from core import metrics

from .data import Split

NGRAM_MAX = 4  # the n-gram baseline's longest character n-gram
# The n-gram baseline's L2 weights tried on validation (on the mean loss; scikit-learn's
# C is 1 / (L2 * training names)), and its L-BFGS iterations, scored every NGRAM_CHUNK.
NGRAM_L2 = (3e-5, 1e-5, 3e-6, 1e-6, 3e-7)
NGRAM_CHUNK, NGRAM_ITERATIONS = 25, 150


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

