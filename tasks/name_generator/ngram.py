"""Character n-gram language models of names, one per language: the baselines the
network must beat, scored with the same bits per character.

A name is a list of token indices ending with the end token (index 0); the context before
its first character is n-1 end tokens, as if the name followed other names:

    n = 3, "Li":   (<end> <end>) -> L    (<end> L) -> i    (L i) -> <end>

Two smoothings of the counts c(h c) of a language, over V outcomes (every character and
the end token):

- add-k:  P(c | h) = (c(h c) + k) / (c(h) + k V)
- interpolated Kneser-Ney (Chen and Goodman 1998), with one discount D at every order:

      P_n(c | h) = max(c(h c) - D, 0) / c(h) + D N1+(h .) / c(h) * P_{n-1}(c | h')

  h' is h without its first token, N1+(h .) the number of distinct tokens seen after h,
  and below the highest order c counts the distinct tokens seen before (h c) instead of
  its occurrences: a lower order is only asked when the longer context is rare, and then
  what matters is in how many contexts a token occurs. As in KenLM, an n-gram that starts
  at the name's start keeps its plain count (nothing can precede it). P_0 is uniform.
  An unseen context h passes everything to P_{n-1}.

Small languages (Vietnamese has 48 training names) have few counts, so each model may be
mixed with the same model fitted on all languages: lam P_language + (1 - lam) P_all.
Order, k or D, and lam are chosen on validation, from `candidates`.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

END_INDEX = 0  # the end token: the target after a name's last character, and its padding
ALL = None  # the key of the model fitted on every language


def contexts(sequence: Sequence[int], n: int) -> Iterable[tuple[tuple[int, ...], int]]:
    """(context of n-1 tokens, token) for every token of the name (end included)."""
    padded = [END_INDEX] * (n - 1) + list(sequence)
    for i in range(n - 1, len(padded)):
        yield tuple(padded[i - n + 1:i]), padded[i]


@dataclass(frozen=True)
class Smoothing:
    """One baseline's settings: order n, "add-k" with k or "kneser-ney" with discount D
    (both in `value`), and the weight lam of the language's own model."""

    n: int
    method: str
    value: float
    lam: float = 1.0

    def __str__(self) -> str:
        setting = f"k={self.value:g}" if self.method == "add-k" else f"D={self.value:g}"
        mix = "" if self.lam == 1 else f", {self.lam:g} language + {1 - self.lam:g} all"
        return f"{self.n}-gram {self.method} ({setting}{mix})"


class NGramCounts:
    """The counts of every order 1..max_n, per language and over all languages.

    counts[m][(language, h)] is a Counter of the tokens after the m-1 tokens h: plain
    counts (`raw`) and Kneser-Ney's continuation counts (`continuation`, distinct
    preceding tokens; plain counts for n-grams at the name's start)."""

    def __init__(self, names: Sequence[Sequence[int]], languages: Sequence[str],
                 vocab_size: int, max_n: int) -> None:
        self.vocab_size, self.max_n = vocab_size, max_n
        self.raw: list[dict] = [defaultdict(Counter) for _ in range(max_n + 1)]
        left: list[dict] = [defaultdict(set) for _ in range(max_n + 1)]
        starts: list[dict] = [defaultdict(Counter) for _ in range(max_n + 1)]
        for name, language in zip(names, languages, strict=True):
            padded = [END_INDEX] * max_n + list(name)
            for i in range(max_n, len(padded)):
                token = padded[i]
                for m in range(1, max_n + 1):
                    h = tuple(padded[i - m + 1:i])
                    at_start = bool(h) and h[0] == END_INDEX  # h begins before the name
                    for key in (language, ALL):
                        self.raw[m][key, h][token] += 1
                        if at_start:
                            starts[m][key, h][token] += 1
                        else:
                            left[m][key, h, token].add(padded[i - m])
        self.continuation: list[dict] = [defaultdict(Counter) for _ in range(max_n + 1)]
        for m in range(1, max_n + 1):
            for (key, h, token), before in left[m].items():
                self.continuation[m][key, h][token] += len(before)
            for (key, h), counter in starts[m].items():
                self.continuation[m][key, h].update(counter)
        # Totals, and the number of distinct following tokens, of every context.
        self.totals = [{k: (sum(c.values()), len(c)) for k, c in table.items()}
                       for table in self.raw]
        self.continuation_totals = [{k: (sum(c.values()), len(c)) for k, c in table.items()}
                                    for table in self.continuation]

    def add_k(self, key: str | None, h: tuple[int, ...], token: int, k: float) -> float:
        """(c(h c) + k) / (c(h) + k V) with the n = len(h) + 1 counts."""
        m = len(h) + 1
        counter = self.raw[m].get((key, h))
        if counter is None:
            return 1.0 / self.vocab_size
        return (counter[token] + k) / (self.totals[m][key, h][0] + k * self.vocab_size)

    def kneser_ney(self, key: str | None, h: tuple[int, ...], token: int,
                   discount: float, highest: bool = True) -> float:
        """Interpolated Kneser-Ney P(token | h), recursively down to the uniform."""
        m = len(h) + 1
        lower = (self.kneser_ney(key, h[1:], token, discount, highest=False) if m > 1
                 else 1.0 / self.vocab_size)
        table, totals = ((self.raw, self.totals) if highest
                         else (self.continuation, self.continuation_totals))
        counter = table[m].get((key, h))
        if counter is None:
            return lower
        total, types = totals[m][key, h]
        return (max(counter[token] - discount, 0.0) + discount * types * lower) / total

    def probability(self, s: Smoothing, language: str, h: tuple[int, ...],
                    token: int) -> float:
        """P(token | language, the last n-1 tokens h) under the smoothing `s`."""
        def one(key):
            if s.method == "add-k":
                return self.add_k(key, h, token, s.value)
            return self.kneser_ney(key, h, token, s.value)
        p = one(language)
        return p if s.lam == 1 else s.lam * p + (1 - s.lam) * one(ALL)

    def distribution(self, s: Smoothing, language: str, h: tuple[int, ...]) -> np.ndarray:
        """P(. | language, h) over all V tokens."""
        return np.array([self.probability(s, language, h, t) for t in range(self.vocab_size)])

    def token_probabilities(self, s: Smoothing, names: Sequence[Sequence[int]],
                            languages: Sequence[str]) -> np.ndarray:
        """P(token | language, context) of every token of every name, <end> included,
        name after name."""
        return np.array([self.probability(s, language, h, token)
                         for name, language in zip(names, languages, strict=True)
                         for h, token in contexts(name, s.n)])


# The settings tried on validation.
ADD_K = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
DISCOUNTS = (0.6, 0.75, 0.9)
LAMBDAS = (1.0, 0.9, 0.75)


def candidates(max_n: int) -> list[Smoothing]:
    """Every add-k and Kneser-Ney setting up to order max_n, with and without mixing."""
    grid = [Smoothing(n, "add-k", k, lam)
            for n, k, lam in itertools.product(range(1, max_n + 1), ADD_K, LAMBDAS)]
    grid += [Smoothing(n, "kneser-ney", d, lam)
             for n, d, lam in itertools.product(range(2, max_n + 1), DISCOUNTS, LAMBDAS)]
    return grid
