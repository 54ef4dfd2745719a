"""The name generator: a character-level language model conditioned on the language, and
what train.py and sample.py share (encoding, bits per character, sampling, model.pt).

At every step the input is the previous character's embedding beside the language's
embedding; the output is a distribution over the next token, a character or <end>:

    input   <end>  K      a      r      p      o      v
    target  K      a      r      p      o      v      <end>

<end> is one token at index 0 with two jobs: the input before a name's first character
(as if the name followed another one) and the target after its last. A batch of names of
different lengths is padded at the end; the network is causal, so padding never changes
the outputs at real steps, and the loss ignores the padded targets (-100).

model.pt holds the weights, the vocabulary, the languages and the `ModelConfig`: tensors,
strings and numbers only, so `torch.load(weights_only=True)` reads it and no code is
pickled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core import model_file
from core.layers import recurrent
from core.text import Vocab

END = "<end>"  # index 0: the input before a name, the target after it
IGNORE = -100  # the target of a padded step: cross_entropy skips it
MAX_LENGTH = 30  # a sample stops here if <end> has not come (training names: at most 19)


@dataclass
class ModelConfig:
    """How the network is built; saved with the weights."""

    cell: str
    impl: str
    embedding_dim: int  # per character
    language_dim: int  # per language
    hidden_size: int
    num_layers: int
    dropout: float


def build_vocab(names: list[str]) -> Vocab:
    """<end>, then every character of the (training) names, sorted."""
    return Vocab([END] + sorted({ch for name in names for ch in name}))


def encode(name: str, vocab: Vocab) -> list[int]:
    """A name -> its targets: "Li" -> [L, i, <end>] (the inputs are [<end>, L, i])."""
    return [*vocab.encode(name), vocab.index[END]]


class NameGenerator(nn.Module):
    """Input tokens (B, T) and languages (B,) -> next-token logits (B, T, V), final state."""

    def __init__(self, vocab_size: int, num_languages: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.char_embedding = nn.Embedding(vocab_size, config.embedding_dim)
        self.language_embedding = nn.Embedding(num_languages, config.language_dim)
        self.dropout = nn.Dropout(config.dropout)
        # torch.nn's layer (nn.GRU for --cell gru), or core's drop-in with --impl core
        self.rnn = recurrent(config.cell, config.impl,
                             config.embedding_dim + config.language_dim, config.hidden_size,
                             num_layers=config.num_layers, batch_first=True,
                             dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.out = nn.Linear(config.hidden_size, vocab_size)

    def forward(self, x: Tensor, language: Tensor, state=None):
        """x (B, T) token indices, language (B,) -> logits (B, T, V), final state (h, or
        (h, c) for the LSTM), which a sampler passes back in to go on one step at a time."""
        steps = x.shape[1]
        chars = self.char_embedding(x)  # (B, T, E)
        lang = self.language_embedding(language)[:, None, :].expand(-1, steps, -1)  # (B, T, L)
        output, state = self.rnn(self.dropout(torch.cat([chars, lang], dim=-1)), state)
        return self.out(self.dropout(output)), state  # (B, T, V)


def teacher_forcing_batch(names: list[list[int]], languages: list[int],
                          device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """Encoded names (each ending with <end>) -> inputs (B, T), languages (B,), targets
    (B, T): inputs are <end> then the name, padded with <end>; targets padded with -100."""
    steps = max(len(n) for n in names)
    x = torch.zeros(len(names), steps, dtype=torch.long)
    y = torch.full((len(names), steps), IGNORE, dtype=torch.long)
    for row, name in enumerate(names):
        y[row, :len(name)] = torch.tensor(name)
        x[row, 1:len(name)] = torch.tensor(name[:-1])
    return x.to(device), torch.tensor(languages).to(device), y.to(device)


def token_probabilities(model: NameGenerator, names: list[list[int]], languages: list[int],
                        batch_size: int = 512) -> np.ndarray:
    """P(target | language, the tokens before it) of every token of every name, <end>
    included, name after name: the same order as `ngram.NGramCounts.token_probabilities`."""
    device = next(model.parameters()).device
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(names), batch_size):
            x, lang, y = teacher_forcing_batch(names[start:start + batch_size],
                                               languages[start:start + batch_size], device)
            log_p = torch.log_softmax(model(x, lang)[0], dim=-1)  # (B, T, V)
            target = log_p.gather(2, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T)
            chunks.append(target[y != IGNORE].cpu().numpy())  # row by row: name after name
    # exp in float64: a probability below float32's range is still above zero.
    return np.exp(np.concatenate(chunks).astype(np.float64))


def bits_per_char(probabilities: np.ndarray) -> float:
    """Mean -log2 P over tokens: what the model, the n-grams and their mixture report."""
    return float(-np.log2(probabilities).mean())


def next_token_probabilities(model: NameGenerator, prefix: list[int],
                             language: int) -> Tensor:
    """P(next token | language, <end> + prefix) over the whole vocabulary (V,)."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        x = torch.tensor([[0, *prefix]], device=device)
        logits = model(x, torch.tensor([language], device=device))[0]
    return torch.softmax(logits[0, -1], dim=-1).cpu()


def sample(model: NameGenerator, vocab: Vocab, language: int, count: int,
           temperature: float = 1.0, top_k: int = 0, start: str = "",
           generator: torch.Generator | None = None) -> list[str]:
    """`count` names of the language, each `start` followed by sampled characters until
    <end> (or MAX_LENGTH characters). Logits are divided by `temperature` (0: always the
    most likely token); `top_k` > 0 keeps only the k most likely tokens."""
    model.eval()
    device = next(model.parameters()).device
    prefix = vocab.encode(start)
    x = torch.tensor([[0, *prefix]] * count, device=device)  # (count, 1 + len(start))
    lang = torch.full((count,), language, device=device)
    tokens: list[list[int]] = [[] for _ in range(count)]
    done = torch.zeros(count, dtype=torch.bool)
    state = None
    with torch.no_grad():
        while not done.all() and len(start) + len(tokens[0]) < MAX_LENGTH:
            logits, state = model(x, lang, state)
            logits = logits[:, -1].cpu()  # (count, V)
            if top_k > 0:
                kth = logits.topk(min(top_k, logits.shape[1]), dim=1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if temperature == 0:
                chosen = logits.argmax(dim=1)
            else:
                # Less the largest logit first, and in float64 (float32 rounds 1e-300 to 0):
                # dividing by a tiny temperature then gives 0 for the most likely tokens and
                # -inf for the others, never inf - inf (nan), so a temperature towards 0
                # tends to the argmax, as 0 is.
                shifted = (logits - logits.amax(dim=1, keepdim=True)).double()
                probabilities = torch.softmax(shifted / temperature, dim=1)
                chosen = torch.multinomial(probabilities, 1, generator=generator)[:, 0]
            for row, token in enumerate(chosen.tolist()):
                tokens[row].append(token)
            done |= chosen == 0
            x = chosen[:, None].to(device)
    names = []
    for row in tokens:
        body = row[:row.index(0)] if 0 in row else row
        names.append(start + vocab.decode(body))
    return names


def save_model(path: Path, model: NameGenerator, vocab: Vocab, languages: list[str],
               **extra: Any) -> None:
    """Weights, vocabulary, languages and model config with their checksum
    (core.model_file)."""
    model_file.save(path, model, vocab=vocab.to_dict(), languages=list(languages),
                    config=asdict(model.config), **extra)


def load_model(path: Path, make: str) -> tuple[NameGenerator, Vocab, list[str]]:
    """The generator `save_model` wrote (in eval mode, on the CPU), its vocabulary and
    languages. Any way the file can be wrong is one UserError naming `make`, the command
    that writes a new one."""
    saved = model_file.load(path, ("vocab", "languages", "config"), "a name-generator model",
                            make)
    try:
        vocab = Vocab.from_dict(saved["vocab"])
        model = NameGenerator(len(vocab), len(saved["languages"]),
                              ModelConfig(**saved["config"]))
        model.load_state_dict(saved["model"])
    except Exception as error:  # intact, but not what this version of the code builds
        raise model_file.rebuild_error(Path(path), error, make) from None
    return model.eval(), vocab, list(saved["languages"])
