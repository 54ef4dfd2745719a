"""Text as tensors: a character vocabulary, one-hot vectors, and padded batches with
their lengths (what `core.layers` and `pack_padded_sequence` take).

    vocab = Vocab.from_texts(["hello"], pad=True)  # tokens <pad>, e, h, l, o
    ids = vocab.encode("hello")                    # [2, 1, 3, 3, 4]
    batch, lengths = pad_batch([ids, ids[:3]], vocab.pad_index)

A padded batch looks like this (pad index 0, B=3, T=5):

    h e l l o        lengths 5
    h e y . .                3
    y o . . .                2
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

PAD = "<pad>"
UNK = "<unk>"


class Vocab:
    """A fixed list of tokens (characters here) and their indices.

    With `pad` the padding token takes index 0; with `unk` unknown tokens map to the
    unknown token instead of raising an error."""

    def __init__(self, tokens: Iterable[str], pad: bool = False, unk: bool = False) -> None:
        specials = ([PAD] if pad else []) + ([UNK] if unk else [])
        self.tokens = specials + [t for t in tokens if t not in specials]
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.pad_index = self.index.get(PAD)
        self.unk_index = self.index.get(UNK)

    @classmethod
    def from_texts(cls, texts: Iterable[str], pad: bool = False, unk: bool = False) -> Vocab:
        """Every distinct character of `texts`, sorted so the indices do not depend on the
        order of the data."""
        return cls(sorted({ch for text in texts for ch in text}), pad=pad, unk=unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order."""
        return list(dict.fromkeys(ch for ch in text if ch not in self.index))

    def encode(self, text: str) -> list[int]:
        """Characters -> indices. Unknown characters map to <unk> when the vocabulary has
        it, else raise ValueError naming them."""
        missing = self.unknown(text)
        if missing and self.unk_index is None:
            raise ValueError(f"characters {missing} of {text!r} are not in the vocabulary "
                             f"{''.join(t for t in self.tokens if len(t) == 1)!r}")
        return [self.index.get(ch, self.unk_index) for ch in text]

    def decode(self, indices: Iterable[int]) -> str:
        """Indices -> text; padding is dropped."""
        return "".join(self.tokens[i] for i in indices if i != self.pad_index)

    def to_dict(self) -> dict[str, list[str]]:
        """A JSON-friendly form; `Vocab.from_dict` restores it exactly."""
        return {"tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Vocab:
        tokens = data["tokens"]
        return cls(tokens, pad=PAD in tokens, unk=UNK in tokens)


def shorten(text: str, limit: int = 40) -> str:
    """`text` quoted for a one-line message: repr(text) when it has at most `limit`
    characters, else the quoted first `limit`, an ellipsis and the full length, so a
    100 kB line in a data file cannot flood the terminal:

        shorten("x" * 100, 5)  ->  'xxxxx'… (100 characters)
    """
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def one_hot(indices: Tensor | Sequence[int], num_classes: int) -> Tensor:
    """Indices (...,) -> float one-hot vectors (..., num_classes)."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    return torch.nn.functional.one_hot(indices, num_classes).float()


def pad_batch(sequences: Sequence[Sequence[int]], pad_index: int) -> tuple[Tensor, Tensor]:
    """Index lists of different lengths -> (B, T) LongTensor padded with `pad_index`,
    and their lengths (B,)."""
    if not sequences or min(len(s) for s in sequences) == 0:
        raise ValueError("pad_batch needs at least one sequence and no empty ones")
    lengths = torch.tensor([len(s) for s in sequences])
    batch = torch.full((len(sequences), int(lengths.max())), pad_index, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return batch, lengths


def length_buckets(lengths: np.ndarray, batch_size: int, window: int = 50) -> list[np.ndarray]:
    """Row indices in shuffled batches of sequences of similar lengths: shuffle, sort each
    run of `window` batches by length, cut into batches, shuffle the batches. Less
    padding, still a random order.

    numpy's global generator, because `Checkpoint` (core.train) saves its state in last.pt
    and restores it on --resume."""
    order = np.random.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * window):
        chunk = order[start:start + batch_size * window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in np.random.permutation(len(batches))]
