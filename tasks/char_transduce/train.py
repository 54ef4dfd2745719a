"""char_transduce: learn a same-length string mapping, one character out per character in.

The classic first RNN exercise: "hello" -> "ohlol". Each input character is read in turn
and the network emits the target character at the same position. Training stops as soon
as every character is right, and the run is repeated over several seeds because whether
a tiny RNN gets there in a few steps depends on its initial weights.

The vocabulary is the set of characters of the source strings, sorted ("hello" gives
e, h, l, o), as in the seeds' code; targets are written in that same alphabet, so a target
character that no source uses is an error. Inputs are one-hot vectors (or an embedding
with --model embed) and a Linear head reads logits off a hidden state larger than the
vocabulary: the seeds' design that used the hidden state itself as the logits caps its
confidence at tanh's range and often fails to converge. --model tutorial trains the RNN of
PyTorch's char-RNN tutorial (core.cells.TutorialRNNCell), whose output comes from the
combined [x, h] beside the new state rather than from it, and is itself the logits.

    python -m tasks.char_transduce.train                     # 20 seeds, --model rnn
    python -m tasks.char_transduce.train --model cell --src abcde --tgt edcba
    python -m tasks.char_transduce.train --model tutorial    # how often does it solve?
    python -m tasks.char_transduce.train --pairs my_pairs.tsv   # src<TAB>tgt per line

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from core import cells, distributed, plots
from core.config import RunConfig, UserError, arg, parse, run_main
from core.layers import recurrent
from core.report import comparison_table, median_over_seeds
from core.run import Run, SeedResult, Seeds
from core.text import Vocab, one_hot, pad_batch, shorten
from core.train import seed_everything, train_epoch


@dataclass
class Config(RunConfig):
    src: str = arg("hello", "source string")
    tgt: str = arg("ohlol", "target string, as long as the source")
    pairs: str = arg("", "file of src<TAB>tgt lines; replaces --src/--tgt")
    model: str = arg("rnn", "cell: an RNNCell stepped in a Python loop; rnn: one "
                            "whole-sequence RNN call; embed: Embedding -> RNN -> Linear; "
                            "tutorial: the char-RNN tutorial's cell stepped in a loop, its "
                            "output the logits",
                     choices=["cell", "rnn", "embed", "tutorial"])
    impl: str = arg("torch", "torch.nn's modules or core's hand-written cells (--model "
                             "tutorial always runs and records core: torch.nn has no such "
                             "class)",
                    choices=["torch", "core"])
    hidden_size: int = arg(16, "hidden units (larger than the vocabulary)", minimum=1)
    embedding_size: int = arg(8, "embedding width for --model embed", minimum=1)
    lr: float = arg(0.05, "Adam learning rate", minimum=0)
    epochs: int = arg(15, "most optimisation steps on the whole set of pairs", minimum=1)
    seeds: int = arg(20, "how many seeds to train: --seed, --seed + 1, ...", minimum=1,
                     maximum=1000)

    def check(self) -> None:
        super().check()
        if self.model == "tutorial":
            self.impl = "core"  # the cell that runs, so the report and metrics.json say so


def read_pairs(cfg: Config) -> list[tuple[str, str]]:
    """The (source, target) pairs from --pairs or --src/--tgt, checked.

    Text is normalised to NFC, so "é" typed as e + a combining accent is one character,
    as it is when typed precomposed; a byte-order mark (Windows editors) is dropped."""
    import unicodedata

    from core.text import shorten

    if cfg.pairs:
        path = Path(cfg.pairs)
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--pairs {path} is not a readable UTF-8 text file: {error}") from None
        pairs = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise UserError(f"{path}:{number}: expected src<TAB>tgt, got {shorten(line)}")
            pairs.append((parts[0], parts[1]))
        if not pairs:
            raise UserError(f"{path} holds no src<TAB>tgt lines")
    else:
        pairs = [(cfg.src, cfg.tgt)]
    pairs = [(unicodedata.normalize("NFC", src), unicodedata.normalize("NFC", tgt))
             for src, tgt in pairs]
    for src, tgt in pairs:
        if not src or not tgt:
            raise UserError(f"empty string in pair {shorten(src)} -> {shorten(tgt)}; both "
                            "need characters")
        if len(src) != len(tgt):
            raise UserError(f"source {shorten(src)} has {len(src)} characters but target "
                            f"{shorten(tgt)} has {len(tgt)}; this task maps strings of the "
                            "same length")
    return pairs


class Transducer(nn.Module):
    """Characters in, one logit vector per character out: (B, T) -> (B, T, V)."""

    def __init__(self, kind: str, impl: str, vocab_size: int, hidden_size: int,
                 embedding_size: int) -> None:
        super().__init__()
        self.kind, self.vocab_size = kind, vocab_size
        if kind == "tutorial":  # no head: the cell's output y (B, V) is the logits
            self.cell = cells.TutorialRNNCell(vocab_size, hidden_size, vocab_size)
            return
        if kind == "cell":
            self.cell = cells.RNNCell(vocab_size, hidden_size) if impl == "core" else \
                nn.RNNCell(vocab_size, hidden_size)
        elif kind == "rnn":
            # torch.nn.RNN, or core's drop-in with --impl core
            self.rnn = recurrent("rnn", impl, vocab_size, hidden_size, batch_first=True)
        else:
            self.embed = nn.Embedding(vocab_size, embedding_size)
            self.rnn = recurrent("rnn", impl, embedding_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.kind == "tutorial":  # the tutorial's loop: output read beside the new state
            h, outputs = None, []
            for x in one_hot(ids, self.vocab_size).unbind(1):  # T tensors (B, V)
                y, h = self.cell(x, h)
                outputs.append(y)
            return torch.stack(outputs, dim=1)  # (B, T, V)
        if self.kind == "cell":  # the seeds' loop: one character at a time
            h, outputs = None, []
            for x in one_hot(ids, self.vocab_size).unbind(1):  # T tensors (B, V)
                h = self.cell(x, h)
                outputs.append(h)
            hidden = torch.stack(outputs, dim=1)  # (B, T, H)
        elif self.kind == "rnn":
            hidden, _ = self.rnn(one_hot(ids, self.vocab_size))
        else:
            hidden, _ = self.rnn(self.embed(ids))
        return self.head(hidden)


def plot_predictions(pairs: list[tuple[str, str]], outputs: dict[int, list[str]],
                     path: Path) -> Path:
    """A table: one column per pair (source -> target on top), one row per seed with what
    its best weights write, green where exactly right, red where not."""
    shown = list(outputs.items())[:20]
    fig, ax = plots.plt.subplots(figsize=(max(4.0, 1.2 + 1.6 * len(pairs)),
                                          0.9 + 0.28 * len(shown)))
    ax.set_axis_off()
    ax.set_xlim(-0.9, len(pairs) - 0.4)
    ax.set_ylim(len(shown), -1.4)
    for column, (src, tgt) in enumerate(pairs):
        ax.text(column, -1, f"{src}\n-> {tgt}", ha="center", va="center", fontsize=8,
                fontweight="bold", family="monospace")
        for row, (_, words) in enumerate(shown):
            ax.text(column, row, words[column], ha="center", va="center", fontsize=8,
                    family="monospace", color="tab:green" if words[column] == tgt
                    else "tab:red")
    for row, (seed, _) in enumerate(shown):
        ax.text(-0.85, row, f"seed {seed}", va="center", fontsize=7, color="grey")
    ax.set_title("each seed's output (green: exactly the target)", fontsize=9)
    fig.tight_layout()
    return plots.save(fig, path)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a rate: unlike p +- z sqrt(p(1-p)/n), it does not
    shrink to nothing at 20 of 20."""
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (
        1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv: list[str] | None = None) -> None:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.seeds = 2, 2
    pairs = read_pairs(cfg)
    vocab = Vocab.from_texts((src for src, _ in pairs), pad=True)
    for _, tgt in pairs:
        if vocab.unknown(tgt):
            raise UserError(f"target {shorten(tgt)!r} uses {vocab.unknown(tgt)}, which no "
                            f"source string contains; the vocabulary is the sources' "
                            f"characters {vocab.tokens[1:]}")
    run = Run(cfg)
    # the pairs are read and checked above; --preflight ends here, and a resume refuses
    # pairs edited since
    run.data_checked(pairs_sha256=hashlib.sha256(repr(pairs).encode()).hexdigest())
    device = run.device

    # Data: the pairs as padded index batches; padded target positions are ignored (-100).
    inputs, lengths = pad_batch([vocab.encode(src) for src, _ in pairs], vocab.pad_index)
    targets, _ = pad_batch([vocab.encode(tgt) for _, tgt in pairs], vocab.pad_index)
    mask = torch.arange(inputs.shape[1])[None, :] < lengths[:, None]
    targets[~mask] = -100
    inputs, targets, mask = inputs.to(device), targets.to(device), mask.to(device)
    print(f"{len(pairs)} pair(s), vocabulary {shorten(''.join(vocab.tokens[1:]))!r}, model "
          f"{cfg.model} ({cfg.impl}), {cfg.seeds} seed(s), up to {cfg.epochs} epochs each")

    # Baseline: always emit the most frequent target character.
    counts = torch.bincount(targets[mask], minlength=len(vocab))
    majority = {"accuracy": (counts.max() / mask.sum()).item()}
    loss_of = nn.CrossEntropyLoss(ignore_index=-100)

    def step(model: Transducer, batch: tuple[torch.Tensor, ...], carried: None):
        """One batch's loss: cross-entropy of every target character (padding ignored).
        train_epoch then does zero_grad, backward and the optimizer's step."""
        x, y = batch
        return loss_of(model(x).flatten(0, 1), y.flatten()), None

    def validate(model: Transducer, show: bool = False) -> dict[str, float]:
        with torch.no_grad():
            logits = model(inputs)
        predicted = logits.argmax(-1)
        accuracy = (predicted == targets)[mask].float().mean().item()
        if show:  # the first seed shows its strings as they form
            words = [shorten(vocab.decode(row[m].tolist()))
                     for row, m in zip(predicted, mask, strict=True)]
            tqdm.write(f"  predicted {' '.join(words)!r:<24} char accuracy {accuracy:.2f}")
        return {"accuracy": accuracy,
                "loss": loss_of(logits.flatten(0, 1), targets.flatten()).item()}

    def train_seed(seed: int) -> SeedResult:
        """Train one seed until every character is right."""
        model = Transducer(cfg.model, cfg.impl, len(vocab), cfg.hidden_size,
                           cfg.embedding_size).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        show = seed == cfg.seed and len(pairs) <= 3
        # best.pt, last.pt and history.csv in seed<N>/; --resume restores them
        checkpoint = run.checkpoint(seed, monitor="accuracy", mode="max", model=model,
                                    optimizer=optimizer)
        trained = distributed.wrap(model)  # under torchrun, DDP averages the gradients
        batches = [(inputs, targets)]  # the whole set of pairs is one batch, every epoch
        for epoch in checkpoint.epochs(cfg.epochs):
            loss = train_epoch(trained, optimizer, batches, step)
            metrics = validate(model, show)
            # solved: nothing left to learn, so the seed stops (and --resume will not go on)
            checkpoint.save(epoch, {"train_loss": loss, **metrics},
                            stop=metrics["accuracy"] == 1.0)
            if checkpoint.stopped:
                break
        history = checkpoint.load_best()
        accuracy = history.best_value
        with torch.no_grad():
            predicted = model(inputs).argmax(-1)
        words = [vocab.decode(row[m].tolist()) for row, m in zip(predicted, mask, strict=True)]
        exact = accuracy == 1.0
        scores = {"accuracy": accuracy, "solved": float(exact),
                  "epochs_to_solve": history.best_epoch + 1 if exact else float("nan")}
        return SeedResult(seed, {"model": scores}, history, words)

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return  # under torchrun, process 0 alone reports
    solved = [r for r in seeds.results if r.test["model"]["solved"]]
    model_scores = median_over_seeds([{"accuracy": r.test["model"]["accuracy"]}
                                      for r in seeds.results])
    model_scores["solved_fraction"] = len(solved) / len(seeds.results)
    # 20 seeds say little about a rate near 1: its 95% interval (Wilson's score interval)
    low, high = wilson_interval(len(solved), len(seeds.results))
    model_scores["solved_fraction_lo"], model_scores["solved_fraction_hi"] = low, high
    if solved:
        model_scores["epochs_to_solve"] = statistics.median(
            r.test["model"]["epochs_to_solve"] for r in solved)
    test = {"model": model_scores, "majority": majority}
    print(comparison_table(test, ["accuracy", "solved_fraction"]))
    print(f"{len(solved)}/{len(seeds.results)} seeds reached the exact target within "
          f"{cfg.epochs} epochs (95% interval of the rate {low:.2f}-{high:.2f})")

    run.finish(test, seeds.seconds)
    plots.training_curve(seeds.results[0].history.epochs, run.dir / "training_curve.png",
                         keys=["accuracy"], log_scale=False, unit="character accuracy")
    plot_predictions(pairs, {r.seed: r.outputs for r in seeds.results},
                     run.dir / "predictions.png")
    print(f"wrote {run.dir}/metrics.json, seed*/best.pt, training_curve.png and "
          "predictions.png")


if __name__ == "__main__":
    run_main(main)
