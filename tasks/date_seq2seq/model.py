"""The encoder-decoder that reads a date and writes it as YYYY-MM-DD, with its greedy and
beam-search decoders, and the model file; shared by train.py and predict.py.

    "Tue 3 Mar 98" -> Embedding -> BiGRU -> h_1 .. h_S (B, S, 2H), and the final states
                                               |             -> s_0 = tanh(W_b [h_fwd; h_bwd])
    <s> 1 9 9 8 - 0 3 - 0    -> Embedding -> GRUCell, attending over h_1 .. h_S at each step
        1 9 9 8 - 0 3 - 0 3 </s>            (11 output steps: 10 characters, then the end)

One decoder step (Bahdanau et al. 2015), from the previous output y_{t-1} and state s_{t-1}:

    a_t = softmax_s(score(s_{t-1}, h_s))        (B, S)   padding gets -inf, so weight 0
    c_t = sum_s a_ts h_s                        (B, 2H)  the context
    s_t = GRUCell([embed(y_{t-1}); c_t], s_{t-1})
    p(y_t) = softmax(W_o [s_t; c_t] + b_o)

    additive: score = v^T tanh(W_q s_{t-1} + W_k h_s)
    dot:      score = (W_q s_{t-1}) . h_s / sqrt(2H)   (the state projected to h's width)
    none:     no a_t, no c_t: the decoder knows the input only through s_0.

Training feeds the true previous character (teacher forcing); decoding feeds the model's
own. A string that holds no date (dates.py's non-dates) is trained to answer </s> at once
(and </s> after it). Every date has the same length, 10 characters and </s>, so both
decoders run exactly OUTPUT_STEPS steps and no hypothesis ends early:
- greedy takes the most probable token at each step;
- beam search keeps the `width` most probable prefixes (sum of log-probabilities) and
  returns the best after the last step. As all hypotheses have the same length, their
  sums compare without a length penalty.

Both decoders are constrained to the calendar: at each step they may only take a token
that continues the prefix towards a real day from 1900-01-01 to 2099-12-31 (after
"2023-02-2", 0 to 8 but not 9; never </s> first), so the answer is always a day that
exists. An automaton (`calendar_automaton`) holds the 88,074 prefixes of those days.

The answer's probability is the product of the model's own, unconstrained, softmax
probabilities of its tokens: the mass the model puts on tokens the calendar forbids is
lost, not spread over the allowed ones. So "29 February 2023", which the model reads as
2023-02-29 or as no date (it wants </s> first), gets a low probability for whatever
real day it is forced to write, and so does any string the model takes for no date.
train.py chooses the probability under which predict.py refuses to answer, on
validation strings only.
With width 1, beam search is greedy decoding.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core import cells, model_file, plots
from core.config import UserError
from core.layers import recurrent
from core.text import Vocab, pad_batch

from .dates import all_days, alphabet, iso

BOS, EOS = "<s>", "</s>"
OUTPUT_TOKENS = [BOS, EOS, *"-0123456789"]
OUTPUT_INDEX = {token: i for i, token in enumerate(OUTPUT_TOKENS)}
OUTPUT_LENGTH = 10  # YYYY-MM-DD
OUTPUT_STEPS = OUTPUT_LENGTH + 1  # and </s>
NO_DATE = ""  # the answer to a string that holds no date: </s> at once


@dataclass
class ModelConfig:
    """How the model is built; saved with its weights."""

    impl: str  # torch.nn's GRU and GRUCell, or core's
    attention: str  # additive, dot or none
    embedding_dim: int
    hidden_size: int  # encoder units per direction
    decoder_size: int
    attention_size: int  # width of the additive score's hidden layer
    max_length: int  # the longest input the model accepts


def input_vocab() -> Vocab:
    """<pad> and every character the date generator writes."""
    return Vocab(alphabet(), pad=True)


def encode_inputs(texts: list[str], vocab: Vocab) -> tuple[Tensor, Tensor]:
    """Texts -> padded indices (B, S) and lengths (B,)."""
    return pad_batch([vocab.encode(text) for text in texts], vocab.pad_index)


def encode_targets(dates: list[str]) -> Tensor:
    """ISO dates (or NO_DATE) -> (B, OUTPUT_STEPS): their characters, then </s> to the
    end."""
    return torch.tensor([[OUTPUT_INDEX[ch] for ch in date]
                         + [OUTPUT_INDEX[EOS]] * (OUTPUT_STEPS - len(date)) for date in dates])


def decode_outputs(tokens: Tensor) -> list[str]:
    """(B, OUTPUT_STEPS) token indices -> texts, each read up to its first </s>."""
    texts = []
    for row in tokens.tolist():
        words = [OUTPUT_TOKENS[i] for i in row]
        texts.append("".join(words[:words.index(EOS)] if EOS in words else words))
    return texts


@functools.cache
def calendar_automaton() -> Tensor:
    """next_state (P + 2, V): the state a token leads to from each of the P prefixes of a
    real day's ISO string (state 0: nothing written yet). </s> after a whole date leads
    to ACCEPT (P), and a token that leads off the calendar to the last state, DEAD
    (P + 1); neither leads anywhere but DEAD:

        "2023-02-2" --"8"--> "2023-02-28" --</s>--> ACCEPT
                    --"9"--> DEAD                           (2023 is no leap year)
    """
    dates = [iso(day) for day in all_days()]
    prefixes = sorted({date[:n] for date in dates for n in range(OUTPUT_LENGTH + 1)}, key=len)
    index = {prefix: i for i, prefix in enumerate(prefixes)}
    accept = len(prefixes)
    table = torch.full((accept + 2, len(OUTPUT_TOKENS)), accept + 1, dtype=torch.long)
    table[[index[p[:-1]] for p in prefixes[1:]], [OUTPUT_INDEX[p[-1]] for p in prefixes[1:]]] = (
        torch.arange(1, accept))
    table[[index[date] for date in dates], OUTPUT_INDEX[EOS]] = accept
    return table


class Attention(nn.Module):
    """Scores of the decoder state against every encoder output, softmax over the input."""

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int):
        super().__init__()
        self.kind = kind
        if kind == "additive":
            self.query = nn.Linear(query_size, attention_size, bias=False)  # W_q
            self.key = nn.Linear(memory_size, attention_size)  # W_k
            self.v = nn.Linear(attention_size, 1, bias=False)
        elif kind == "dot":
            self.query = nn.Linear(query_size, memory_size, bias=False)
        else:
            raise ValueError(f"attention must be additive or dot, got {kind!r}")

    def keys(self, memory: Tensor) -> Tensor:
        """What the scores read from the encoder outputs, computed once per input:
        W_k h_s (B, S, A) for additive, h_s itself for dot."""
        return self.key(memory) if self.kind == "additive" else memory

    def forward(self, s: Tensor, memory: Tensor, keys: Tensor,
                padding: Tensor) -> tuple[Tensor, Tensor]:
        """s (B, D), memory (B, S, 2H), padding (B, S) True at padded steps ->
        context (B, 2H), weights (B, S) summing to 1 over the real steps."""
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.query(s)[:, None, :] + keys)).squeeze(-1)
        else:
            scores = (keys @ self.query(s)[:, :, None]).squeeze(-1) / math.sqrt(keys.shape[-1])
        weights = torch.softmax(scores.masked_fill(padding, float("-inf")), dim=1)
        return (weights[:, :, None] * memory).sum(dim=1), weights


class DateSeq2Seq(nn.Module):
    """Input indices (B, S) with lengths (B,) -> scores of the 11 output tokens."""

    def __init__(self, num_inputs: int, config: ModelConfig, pad_index: int = 0) -> None:
        super().__init__()
        self.config = config
        c = config
        memory_size = 2 * c.hidden_size
        self.embedding = nn.Embedding(num_inputs, c.embedding_dim, padding_idx=pad_index)
        # torch.nn.GRU (taking lengths, as core's does) or core's drop-in with --impl core
        self.encoder = recurrent("gru", c.impl, c.embedding_dim, c.hidden_size,
                                 batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(memory_size, c.decoder_size)  # W_b
        self.output_embedding = nn.Embedding(len(OUTPUT_TOKENS), c.embedding_dim)
        context_size = memory_size if c.attention != "none" else 0
        cell = cells.GRUCell if c.impl == "core" else nn.GRUCell
        self.decoder = cell(c.embedding_dim + context_size, c.decoder_size)
        self.attention = (Attention(c.attention, c.decoder_size, memory_size, c.attention_size)
                          if c.attention != "none" else None)
        self.out = nn.Linear(c.decoder_size + context_size, len(OUTPUT_TOKENS))  # W_o

    def encode(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """The encoder outputs, their keys, the padding mask and s_0."""
        memory, h = self.encoder(self.embedding(x), lengths=lengths)  # (B, S, 2H), (2, B, H)
        steps = torch.arange(x.shape[1], device=x.device)
        padding = steps[None, :] >= lengths.to(x.device)[:, None]  # (B, S)
        s = torch.tanh(self.bridge(torch.cat([h[0], h[1]], dim=-1)))  # (B, D)
        keys = self.attention.keys(memory) if self.attention is not None else memory
        return {"memory": memory, "keys": keys, "padding": padding, "s": s}

    def step(self, y_prev: Tensor, s: Tensor, encoded: dict[str, Tensor]
             ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One decoder step: previous tokens (B,), state (B, D) -> logits (B, V), new
        state, attention weights (B, S) or None."""
        e = self.output_embedding(y_prev)
        if self.attention is None:
            s = self.decoder(e, s)
            return self.out(s), s, None
        context, weights = self.attention(s, encoded["memory"], encoded["keys"],
                                          encoded["padding"])
        s = self.decoder(torch.cat([e, context], dim=-1), s)
        return self.out(torch.cat([s, context], dim=-1)), s, weights

    def forward(self, x: Tensor, lengths: Tensor, targets: Tensor
                ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: targets (B, 11) -> logits (B, 11, V), weights (B, 11, S)."""
        encoded = self.encode(x, lengths)
        s = encoded["s"]
        start = torch.full_like(targets[:, 0], OUTPUT_INDEX[BOS])
        previous = torch.cat([start[:, None], targets[:, :-1]], dim=1)  # <s>, y_1 .. y_10
        logits, weights = [], []
        for t in range(targets.shape[1]):
            step_logits, s, step_weights = self.step(previous[:, t], s, encoded)
            logits.append(step_logits)
            weights.append(step_weights)
        return torch.stack(logits, 1), (torch.stack(weights, 1) if weights[0] is not None
                                        else None)

    @torch.no_grad()
    def greedy(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """The most probable token the calendar allows at each step: tokens (B, 11),
        weights (B, 11, S), and the answer's log-probability (B,)."""
        encoded = self.encode(x, lengths)
        s = encoded["s"]
        y = torch.full((x.shape[0],), OUTPUT_INDEX[BOS], dtype=torch.long, device=x.device)
        automaton = calendar_automaton().to(x.device)
        dead = automaton.shape[0] - 1
        state = torch.zeros_like(y)
        log_p_answer = torch.zeros(x.shape[0], device=x.device)
        tokens, weights = [], []
        for _ in range(OUTPUT_STEPS):
            logits, s, step_weights = self.step(y, s, encoded)
            log_p = torch.log_softmax(logits, dim=-1)  # the model's own, unconstrained
            y = log_p.masked_fill(automaton[state] == dead, float("-inf")).argmax(dim=-1)
            log_p_answer += log_p.gather(1, y[:, None]).squeeze(1)
            state = automaton[state, y]
            tokens.append(y)
            weights.append(step_weights)
        return (torch.stack(tokens, 1), (torch.stack(weights, 1) if weights[0] is not None
                                         else None), log_p_answer)

    @torch.no_grad()
    def beam_search(self, x: Tensor, lengths: Tensor, width: int
                    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """The most probable of `width` hypotheses the calendar allows, kept at each step
        (see the module's docstring): tokens (B, 11), weights (B, 11, S) and the
        log-probability (B,) of the best hypothesis.

        Each input's K = width hypotheses sit in consecutive rows of a (B*K, ...) batch:

            row 0   input 0, hypothesis 0      scores (B, K): summed log-probabilities
            row 1   input 0, hypothesis 1      at the start only hypothesis 0 is live
            ...                                (the others score -inf), so the first
            row K   input 1, hypothesis 0      step does not pick K copies of one token
        """
        batch, k, vocabulary = x.shape[0], width, len(OUTPUT_TOKENS)
        if not 1 <= k <= vocabulary:
            raise ValueError(f"beam width must be in 1..{vocabulary}, got {k}")
        encoded = {name: value.repeat_interleave(k, dim=0)
                   for name, value in self.encode(x, lengths).items()}
        s = encoded["s"]
        scores = torch.full((batch, k), float("-inf"), device=x.device)
        scores[:, 0] = 0.0
        y = torch.full((batch * k,), OUTPUT_INDEX[BOS], dtype=torch.long, device=x.device)
        tokens = torch.empty(batch * k, 0, dtype=torch.long, device=x.device)
        weights = None if self.attention is None else s.new_empty(batch * k, 0, x.shape[1])
        rows = torch.arange(batch, device=x.device)[:, None] * k  # each input's first row
        automaton = calendar_automaton().to(x.device)
        dead = automaton.shape[0] - 1
        state = torch.zeros_like(y)
        for _ in range(OUTPUT_STEPS):
            logits, s, step_weights = self.step(y, s, encoded)
            log_p = torch.log_softmax(logits, dim=-1)  # the model's own, unconstrained
            log_p = log_p.masked_fill(automaton[state] == dead, float("-inf"))
            total = (scores[:, :, None] + log_p.view(batch, k, vocabulary)).view(batch, -1)
            scores, best = total.topk(k, dim=1)  # (B, K), sorted best first
            parent = (rows + best // vocabulary).view(-1)  # the row each new one extends
            y = (best % vocabulary).view(-1)
            state = automaton[state[parent], y]
            s = s[parent]
            tokens = torch.cat([tokens[parent], y[:, None]], dim=1)
            if weights is not None:
                weights = torch.cat([weights[parent], step_weights[parent][:, None]], dim=1)
        first = rows.view(-1)  # hypothesis 0 of each input: the best
        return tokens[first], (weights[first] if weights is not None else None), scores[:, 0]

    def decode(self, x: Tensor, lengths: Tensor, beam: int = 1
               ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Greedy for beam 1, else beam search."""
        return self.greedy(x, lengths) if beam == 1 else self.beam_search(x, lengths, beam)


def translate(model: DateSeq2Seq, texts: list[str], vocab: Vocab, beam: int = 1,
              batch_size: int = 1000
              ) -> tuple[list[str], list[float], list[Tensor | None]]:
    """Texts (non-empty, of known characters) -> the real days the model writes for them
    as ISO dates, each one's probability, and each one's attention weights (11, its
    length) when the model attends."""
    device = next(model.parameters()).device
    model.eval()
    outputs, probabilities, attention = [], [], []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        x, lengths = encode_inputs(chunk, vocab)
        tokens, weights, log_p = model.decode(x.to(device), lengths.to(device), beam)
        outputs += decode_outputs(tokens.cpu())
        probabilities += log_p.exp().cpu().tolist()
        for row, length in enumerate(lengths.tolist()):
            attention.append(None if weights is None else weights[row, :, :length].cpu())
    return outputs, probabilities, attention


def plot_attention(weights: Tensor, text: str, output: str, path: Path, title: str) -> Path:
    """A heatmap of one string's attention: input characters across, output characters
    (and </s>) down; each row sums to 1."""
    plt = plots.plt
    steps = [*output, EOS]
    fig, ax = plt.subplots(figsize=(1.6 + 0.28 * len(text), 1.4 + 0.28 * len(steps)))
    ax.imshow(weights.numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(text)), [ch if ch != " " else "␣" for ch in text])
    ax.set_yticks(range(len(steps)), steps)
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return plots.save(fig, path)


# ---------------------------------------------------------------- the model file

@dataclass
class TrainedModel:
    """What model.pt holds: the model, its vocabulary, and the probability under which
    its answer is refused, chosen on validation with beam search of width `beam`."""

    model: DateSeq2Seq
    vocab: Vocab
    threshold: float
    beam: int


def save_model(path: Path, trained: TrainedModel, **extra: Any) -> None:
    """Weights, vocabulary, model config and threshold with their checksum
    (core.model_file)."""
    model_file.save(path, trained.model, vocab=trained.vocab.to_dict(),
                    config=asdict(trained.model.config), threshold=trained.threshold,
                    beam=trained.beam, **extra)


def load_model(path: Path) -> TrainedModel:
    """The model `save_model` wrote (in eval mode on the CPU); a missing, unreadable,
    damaged or foreign file is one UserError naming the command that makes one."""
    path = Path(path)
    make = f"python -m {__package__}.train --run-dir {path.parent}"
    if path.is_file():  # core.model_file would call a file it may not open damaged
        try:
            path.open("rb").close()
        except OSError as error:
            raise UserError(f"cannot read {path}: {error.strerror.lower()}; check its "
                            f"permissions, or make a new one with `{make}`") from None
    saved = model_file.load(path, ("vocab", "config", "threshold", "beam"), "a date model",
                            make)
    try:
        vocab = Vocab.from_dict(saved["vocab"])
        model = DateSeq2Seq(len(vocab), ModelConfig(**saved["config"]), vocab.pad_index)
        model.load_state_dict(saved["model"])
        threshold, beam = float(saved["threshold"]), int(saved["beam"])
    except Exception as error:  # another version's model
        raise model_file.rebuild_error(path, error, make) from None
    return TrainedModel(model.eval(), vocab, threshold, beam)
