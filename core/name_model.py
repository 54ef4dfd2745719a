"""A classifier of short texts by their characters: its text encoding, its network and
its model.pt. In core because two tasks read it: name_classifier trains it (surname ->
language) and answers with it (predict), and name_generator loads the classifier's
model.pt to judge whether its samples sound like the asked class, so neither task
imports the other.

A text becomes a list of token indices, then a bidirectional recurrent layer reads the
padded batch (packed for torch.nn, masked for core's cells) and a linear layer maps
features of the whole text to one score per class:

    "O'Neill" -> <s> O ' N e i l l </s> -> Embedding -> BiGRU --+-- final states (fwd, bwd)
                                                    |           +-- max over steps
                                                    +-- char-CNN (2-, 3-, 4-grams) max
                                                                 -> Linear -> C logits

How a text is read is two named choices of `ModelConfig`, saved with the weights so a
command reads typed input as the model was trained:

    accents  "strip": Müller -> Muller (a name's spelling across languages);
             "keep": ü stays one character, composed whichever way it was typed
    case     "title": texts as written in the data, and typed input in all capitals or
             all lower case read in title case (names are written so: SMITH -> Smith);
             "lower": every text lower-cased, in training and after;
             "keep": every text as written

The course preset uses only the final states, characters by code point and no <s> </s>.
Everything a command needs to rebuild the encoder and the model (vocabulary, labels,
`ModelConfig`) is saved beside the weights, so it never reads the data files.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core import model_file
from core.layers import recurrent
from core.text import PAD, UNK, Vocab, pad_batch

BOS, EOS = "<s>", "</s>"
# The course embeds characters by code point in Embedding(128, 100); code points 0 and 1
# are control characters no text holds, so they serve as padding and unknown.
CODE_POINTS = 128
CONV_WIDTHS = (2, 3, 4)  # character n-grams the CNN branch looks for
CASES = ("title", "lower", "keep")
ACCENTS = ("strip", "keep")


def transliterate(text: str) -> str:
    """Strip surrounding space and accents: NFKD splits "ü" into "u" and a combining mark,
    which is dropped (Müller -> Muller, Nguyễn -> Nguyen). Letters with no decomposition
    (ß, Ø, Ł) stay and the vocabulary maps them to <unk>."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass
class ModelConfig:
    """How texts are read and encoded and the model is built; saved with the weights."""

    code_points: bool  # course vocabulary (ASCII by code point) instead of the data's characters
    boundaries: bool  # wrap each text in <s> ... </s>
    cell: str
    impl: str
    embedding_dim: int
    hidden_size: int
    num_layers: int
    dropout: float
    pooling: str  # "final": the last states only; "final+max": also the max over steps
    conv_channels: int  # per n-gram width of the char-CNN branch; 0: no CNN
    # how a text is read (CASES, ACCENTS; see the module's docstring); the defaults are the
    # surname tasks', and what a model.pt saved before these choices existed was read with
    case: str = "title"
    accents: str = "strip"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise(text: str, config: ModelConfig) -> str:
    """A text as the model reads it, in training and after: surrounding space stripped,
    accents stripped or kept (composed, NFC), lower-cased if config.case is "lower"."""
    text = (transliterate(text) if config.accents == "strip"
            else unicodedata.normalize("NFC", text.strip()))
    return text.lower() if config.case == "lower" else text


def as_trained(text: str, config: ModelConfig) -> str:
    """Typed input -> as the training texts are written, before `encode`. With case
    "title", a text in all capitals or all lower case is read in title case: each word and
    each part after an apostrophe or hyphen starts upper case (O'NEILL -> O'Neill,
    SMITH-JONES -> Smith-Jones), since the model never saw "SMITH"; mixed case is the
    writer's choice (McDonald, DiMaggio) and stays. "lower" and "keep": as typed
    (`normalise` lower-cases for "lower")."""
    if config.case == "title" and (text.isupper() or text.islower()):
        return re.sub(r"[^\W\d_]+", lambda word: word[0].capitalize(), text)
    return text


def build_vocab(texts: list[str], config: ModelConfig) -> Vocab:
    """The course's 128 code points, or every character of the (training) texts."""
    if config.code_points:
        return Vocab([PAD, UNK] + [chr(i) for i in range(2, CODE_POINTS)], pad=True, unk=True)
    specials = [BOS, EOS] if config.boundaries else []
    characters = sorted({ch for text in texts for ch in normalise(text, config)})
    return Vocab(specials + characters, pad=True, unk=True)


def encode(text: str, vocab: Vocab, config: ModelConfig) -> list[int]:
    """A text -> token indices; characters outside the vocabulary become <unk>."""
    indices = vocab.encode(normalise(text, config))
    if config.boundaries:
        indices = [vocab.index[BOS], *indices, vocab.index[EOS]]
    return indices


class NameClassifier(nn.Module):
    """Token indices (B, T) with lengths (B,) -> logits (B, num_classes)."""

    def __init__(self, num_tokens: int, num_classes: int, config: ModelConfig,
                 pad_index: int = 0) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(num_tokens, config.embedding_dim, padding_idx=pad_index)
        self.dropout = nn.Dropout(config.dropout)
        # torch.nn's layer (taking lengths, as core's does), or core's drop-in (--impl core)
        self.rnn = recurrent(config.cell, config.impl, config.embedding_dim, config.hidden_size,
                             num_layers=config.num_layers, batch_first=True, bidirectional=True,
                             dropout=config.dropout if config.num_layers > 1 else 0.0)
        features = 2 * config.hidden_size * (2 if config.pooling == "final+max" else 1)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.conv_channels, width, padding=width - 1)
            for width in CONV_WIDTHS) if config.conv_channels else nn.ModuleList()
        features += len(self.convs) * config.conv_channels
        self.out = nn.Linear(features, num_classes)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        e = self.dropout(self.embedding(x))  # (B, T, E)
        output, state = self.rnn(e, lengths=lengths)  # output (B, T, 2H), zero at padding
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        features = [h[-2], h[-1]]  # last layer, forward and backward: (B, H) each
        if self.config.pooling == "final+max":
            steps = torch.arange(x.shape[1], device=x.device)
            padded = (steps[None, :] >= lengths.to(x.device)[:, None]).unsqueeze(-1)
            features.append(output.masked_fill(padded, float("-inf")).amax(dim=1))
        if len(self.convs):
            # A window that covers only padding would still output relu(bias), so it is
            # zeroed; as ReLU outputs are >= 0, a zero never changes the max over steps.
            # Output step j of a width-k conv covers inputs j-k+1..j: real while
            # j < length + k - 1.
            channels = e.transpose(1, 2)  # (B, E, T)
            for conv, width in zip(self.convs, CONV_WIDTHS, strict=True):
                grams = torch.relu(conv(channels))  # (B, C, T + width - 1)
                steps = torch.arange(grams.shape[2], device=x.device)
                real = steps[None, :] < lengths.to(x.device)[:, None] + width - 1
                features.append(grams.masked_fill(~real.unsqueeze(1), 0.0).amax(dim=2))
        return self.out(self.dropout(torch.cat(features, dim=-1)))


def logits_for(model: NameClassifier, texts: list[list[int]], pad_index: int,
               batch_size: int = 1024) -> Tensor:
    """Logits (N, C) for encoded texts, in their order; batches are padded to the longest."""
    device = next(model.parameters()).device
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            x, lengths = pad_batch(texts[start:start + batch_size], pad_index)
            chunks.append(model(x.to(device), lengths).cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, model.out.out_features)


def save_model(path: Path, model: NameClassifier, vocab: Vocab, labels: list[str],
               **extra: Any) -> None:
    """Weights, vocabulary, labels and model config with their checksum (core.model_file)."""
    model_file.save(path, model, vocab=vocab.to_dict(), labels=list(labels),
                    config=model.config.to_dict(), **extra)


def load_model(path: Path, make: str) -> tuple[NameClassifier, Vocab, list[str]]:
    """The classifier `save_model` wrote (in eval mode), its vocabulary and labels; every
    way the file can be wrong is one UserError naming `make`, the command that writes a
    new one."""
    saved = model_file.load(path, ("vocab", "labels", "config"), "a name-classifier model",
                            make)
    try:
        vocab = Vocab.from_dict(saved["vocab"])
        model = NameClassifier(len(vocab), len(saved["labels"]), ModelConfig(**saved["config"]),
                               vocab.pad_index)
        model.load_state_dict(saved["model"])
    except Exception as error:  # intact, but not what this version of the code builds
        raise model_file.rebuild_error(Path(path), error, make) from None
    return model.eval(), vocab, list(saved["labels"])
