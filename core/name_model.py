"""The surname classifier: its name encoding, its network and its model.pt. In core
because two tasks read it: name_classifier trains it and answers with it (predict), and
name_generator loads the classifier's model.pt to judge whether its samples sound like
the asked language, so neither task imports the other.

A name becomes a list of token indices, then a bidirectional recurrent layer reads the
padded batch (packed for torch.nn, masked for core's cells) and a linear layer maps
features of the whole name to one score per language:

    "O'Neill" -> <s> O ' N e i l l </s> -> Embedding -> BiGRU --+-- final states (fwd, bwd)
                                                    |           +-- max over steps
                                                    +-- char-CNN (2-, 3-, 4-grams) max
                                                                 -> Linear -> 18 logits

The course preset uses only the final states, characters by code point and no <s> </s>.
Everything a command needs to rebuild the encoder and the model (vocabulary, labels,
`ModelConfig`) is saved beside the weights, so it never reads the data files.
"""

from __future__ import annotations

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
# are control characters no name holds, so they serve as padding and unknown.
CODE_POINTS = 128
CONV_WIDTHS = (2, 3, 4)  # character n-grams the CNN branch looks for


def transliterate(name: str) -> str:
    """Strip surrounding space and accents: NFKD splits "ü" into "u" and a combining mark,
    which is dropped (Müller -> Muller, Nguyễn -> Nguyen). Letters with no decomposition
    (ß, Ø, Ł) stay and the vocabulary maps them to <unk>."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass
class ModelConfig:
    """How names are encoded and the model is built; saved with the weights."""

    code_points: bool  # course vocabulary (ASCII by code point) instead of the data's characters
    boundaries: bool  # wrap each name in <s> ... </s>
    cell: str
    impl: str
    embedding_dim: int
    hidden_size: int
    num_layers: int
    dropout: float
    pooling: str  # "final": the last states only; "final+max": also the max over steps
    conv_channels: int  # per n-gram width of the char-CNN branch; 0: no CNN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_vocab(names: list[str], config: ModelConfig) -> Vocab:
    """The course's 128 code points, or every character of the (training) names."""
    if config.code_points:
        return Vocab([PAD, UNK] + [chr(i) for i in range(2, CODE_POINTS)], pad=True, unk=True)
    specials = [BOS, EOS] if config.boundaries else []
    characters = sorted({ch for name in names for ch in transliterate(name)})
    return Vocab(specials + characters, pad=True, unk=True)


def encode(name: str, vocab: Vocab, config: ModelConfig) -> list[int]:
    """A name -> token indices; characters outside the vocabulary become <unk>."""
    indices = vocab.encode(transliterate(name))
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


def logits_for(model: NameClassifier, names: list[list[int]], pad_index: int,
               batch_size: int = 1024) -> Tensor:
    """Logits (N, C) for encoded names, in their order; batches are padded to the longest."""
    device = next(model.parameters()).device
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(names), batch_size):
            x, lengths = pad_batch(names[start:start + batch_size], pad_index)
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
