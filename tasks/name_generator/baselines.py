"""name_generator's baselines and its judge of samples. The n-gram models of ngram.py,
fitted on the same training names, every setting scored on validation with the network's
bits per character; and a trained name_classifier as a function from names to languages,
which scores language_agreement (of the samples, and of the real test names: method
real_names, the most the classifier can confirm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.config import UserError
from core.name_model import encode as classifier_encode
from core.name_model import load_model as load_classifier
from core.name_model import logits_for

from . import ngram
from .data import Data
from .model import bits_per_char

CLASSIFIER = Path("runs") / "name_classifier" / "model.pt"  # the optional scorer


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


def find_classifier(path: str) -> tuple[Classifier | None, str]:
    """The classifier at `path` (--classifier), or else at CLASSIFIER if there is a usable
    one: (classifier or None, a line saying which one, or why there is none)."""
    if path:
        return Classifier(Path(path)), f"language_agreement by {path}"
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
