"""date_seq2seq: read a date as people write it ("Tue 3 Mar 98", "the third of March
1998") and write it in ISO 8601 (1998-03-03), with an encoder-decoder and attention.

A many-to-many task whose input and output lengths differ: a bidirectional GRU reads the
characters, and a GRU decoder writes the 10 output characters and an end token, attending
over the encoder's outputs at every step (model.py draws it). Decoding is greedy, or a
beam search (--beam).

It never writes a day that does not exist, nor a date for a string that holds none:
- the decoders are constrained to the calendar, so every answer is a real day;
- the model learns what is no date from examples, as it learns dates: every training
  batch also holds impossible days, numbers, words and dates with a part missing
  (dates.py; a share --non-date-share of its dates), whose target is </s> at once;
- the answer's probability is the model's own, unconstrained, so the mass it puts
  outside the calendar (29 February 2023) or on "no date" is lost; predict.py refuses an
  answer whose probability is under a threshold chosen on validation strings only: the
  validation dates and validation non-dates (impossible days included), disjoint from
  the test ones.
Why all three: the constraint alone would answer "29 February 2023" and "hello" with
some real day; a threshold alone means little for inputs unlike every training string
(a network shown dates only was never shown that "hello" holds none, and nothing makes
it unsure of a day for it); and the examples alone would still let the decoder write
2023-02-29. The threshold (choose_threshold) refuses at most --abstain-budget of the
validation dates. A hand-written parser in the model's place would be the other way,
and then there would be no model.
Measured on the test strings: abstain_valid (the share of real dates refused) and
refusal_invalid (the share of non-dates refused), beside exact match.

Data: generated here, no download (dates.py: the format families and the reading rule
that keeps every string unambiguous). Every day from 1900-01-01 to 2099-12-31 belongs to
one of three disjoint sets of calendar days, drawn once with a fixed seed: the test days
(one string each) never appear in training or validation in any format, so the model is
scored on dates it has never read. Training strings are drawn afresh every epoch from the
training days. The strings with no day (dates.py) are split into train, validation and
test by a checksum of their word, impossible day or text; one kind, impossible days with
a misspelt or foreign month ("31 Juni 2020"), is never trained on.
Baselines in the same run: the same encoder-decoder without attention (the decoder starts
from the encoder's final state only; same budget, in seed<N>/no_attention/), and pandas'
parser `pd.to_datetime(text, format="mixed", dayfirst=True)`, a failure counting as wrong
(and as a refusal).
Each seed trains the model, then the network without attention, each in its own epoch
loop (train_seed in main), and scores both on the test strings.

Beside this file: dates.py writes the strings, data.py splits them for a run,
baselines.py holds the metric and pandas' parser, model.py the network and its decoders,
report.py the tables and plots, predict.py answers with a trained run.

    make date_seq2seq                  # python -m tasks.date_seq2seq.train
    python -m tasks.date_seq2seq.train --attention dot --impl core
    python -m tasks.date_seq2seq.predict "3rd of March 1998" "1998/3/3" --plot attention.png

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core import distributed
from core.config import RunConfig, arg, parse, require, run_main
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.train import seed_everything, train_epoch

from .baselines import pandas_scores, scores
from .data import Data, columns, make_data
from .dates import (
    FAMILIES,
    MAX_LENGTH,
    NON_DATE_KINDS,
    TRAINED_NON_DATE_KINDS,
    all_days,
    non_date,
    sample,
)
from .model import (
    NO_DATE,
    OUTPUT_TOKENS,
    DateSeq2Seq,
    ModelConfig,
    TrainedModel,
    encode_inputs,
    encode_targets,
    save_model,
    translate,
)
from .report import report

METRICS = ["exact_match", "exact_match_beam", "char_accuracy", "abstain_valid",
           "refusal_invalid"]


@dataclass
class Config(RunConfig):
    # The sizes, batches and epochs were chosen on validation exact match, within the
    # project's budget of 3 minutes of CPU for both networks; with fewer epochs the
    # attention model fell short of its target on some seeds. --non-date-share and the
    # weights of the kinds of non-date (dates.py) were chosen on validation refusal.
    impl: str = arg("torch", "torch.nn's GRU and GRUCell (fast) or core's cells (same "
                             "weights)", choices=["torch", "core"])
    attention: str = arg("additive", "how the decoder scores the encoder's outputs; none: "
                                     "it starts from the encoder's final state only",
                         choices=["additive", "dot", "none"])
    embedding_dim: int = arg(16, "size of the input and output character embeddings",
                             minimum=1)
    hidden_size: int = arg(32, "encoder units per direction", minimum=1)
    decoder_size: int = arg(64, "decoder units", minimum=1)
    attention_size: int = arg(32, "hidden units of the additive attention's score",
                              minimum=1)
    batch_size: int = arg(128, "dates per batch", minimum=1)
    batches_per_epoch: int = arg(100, "fresh batches drawn per epoch", minimum=1)
    epochs: int = arg(8, "epochs of --batches-per-epoch batches", minimum=1)
    lr: float = arg(1e-2, "peak Adam learning rate of the one-cycle schedule", minimum=0)
    clip_norm: float = arg(1.0, "gradient norm clip (0: none)", minimum=0)
    beam: int = arg(3, "beam width of exact_match_beam and of the refusals (1: greedy)",
                    minimum=1, maximum=len(OUTPUT_TOKENS))
    non_date_share: float = arg(0.4, "strings with no date (impossible days, numbers, "
                                      "words, dates with a part missing) added to each "
                                      "batch, as a share of --batch-size; taught to answer "
                                      "no date", minimum=0, maximum=1)
    abstain_budget: float = arg(0.002, "the refusal threshold may refuse at most this "
                                       "share of the validation dates", minimum=0,
                                maximum=1)
    val_size: int = arg(2000, "validation days, one string each", minimum=1)
    test_size: int = arg(2000, "test days, one string each", minimum=1)
    non_date_size: int = arg(1000, "validation and test strings that hold no day, each",
                             minimum=len(NON_DATE_KINDS))

    def check(self) -> None:
        super().check()
        days = len(all_days())
        require(self.val_size + self.test_size <= days // 2,
                f"--val-size + --test-size may take at most half of the {days} days, so "
                f"that the rest trains; got {self.val_size + self.test_size}")


def model_config(cfg: Config, attention: str) -> ModelConfig:
    return ModelConfig(impl=cfg.impl, attention=attention, embedding_dim=cfg.embedding_dim,
                       hidden_size=cfg.hidden_size, decoder_size=cfg.decoder_size,
                       attention_size=cfg.attention_size, max_length=MAX_LENGTH)


def batch_loss(model: DateSeq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Cross-entropy of every answer token, the decoder fed the true previous token."""
    x, lengths, y = batch
    logits, _ = model(x, lengths, y)  # (B, 11, V)
    return nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())


def step(model: DateSeq2Seq, batch: tuple[torch.Tensor, ...],
         carried: None) -> tuple[torch.Tensor, None]:
    """One batch's loss (train_epoch then does zero_grad, backward, clip, the optimizer's
    and the one-cycle schedule's step). Nothing is carried over."""
    return batch_loss(model, batch), None


def choose_threshold(dates: list[float], no_days: list[float], budget: float) -> float:
    """The probability under which an answer is refused, from validation strings only:
    the cut that refuses the most non-dates beyond the dates it refuses (refusal minus
    abstention), among the cuts that refuse at most `budget` of the dates; placed
    halfway, in log-probability, between the strings on either side of it."""
    dates_sorted, no_days_sorted = np.sort(dates), np.sort(no_days)
    cuts = np.unique(np.concatenate([dates_sorted, no_days_sorted]))  # refuse p < cut
    abstain = np.searchsorted(dates_sorted, cuts) / len(dates_sorted)
    refusal = np.searchsorted(no_days_sorted, cuts) / len(no_days_sorted)
    gain = np.where(abstain <= budget, refusal - abstain, -np.inf)
    best = int(np.argmax(gain))  # the lowest of the best cuts
    if best == 0:
        return float(cuts[0])  # refuse nothing
    return float(np.sqrt(cuts[best - 1] * cuts[best]))


def evaluate(model: DateSeq2Seq, data: Data, beam: int, budget: float
             ) -> tuple[dict[str, float], dict]:
    """The best-on-validation weights: the threshold from the validation strings, then
    the test strings scored once."""
    vocab = data.vocab
    threshold = choose_threshold(translate(model, data.val_text, vocab, beam)[1],
                                 translate(model, data.val_no_day, vocab, beam)[1], budget)
    greedy, _, attention = translate(model, data.test_text, vocab)
    beams, p_dates, _ = translate(model, data.test_text, vocab, beam)
    no_day_answers, p_no_days, _ = translate(model, data.test_no_day, vocab, beam)
    refused = np.array(p_no_days) < threshold
    results = {**scores(greedy, data.test_truth),
               "exact_match_beam": scores(beams, data.test_truth)["exact_match"],
               "abstain_valid": float(np.mean(np.array(p_dates) < threshold)),
               "refusal_invalid": float(np.mean(refused)), "threshold": threshold}
    return results, {"model": model, "greedy": greedy, "attention": attention,
                     "beam": beams, "threshold": threshold, "no_day_refused": refused,
                     "no_day_answers": no_day_answers, "no_day_p": p_no_days}


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.batch_size = 2, 3, 32
        cfg.val_size, cfg.test_size, cfg.non_date_size = 60, 60, 60
    run = Run(cfg)

    # Data: disjoint train, validation and test days; validation and test strings fixed.
    data = make_data(cfg.val_size, cfg.test_size, cfg.non_date_size)
    run.data_checked()  # --preflight ends here
    print(f"days: {len(data.train_days)} train, {len(data.val_text)} validation, "
          f"{len(data.test_text)} test; {len(FAMILIES)} format families; "
          f"{len(data.vocab) - 1} input characters; {len(data.val_no_day)} validation and "
          f"{len(data.test_no_day)} test strings with no day")
    print("some test strings:", "; ".join(f"{t} -> {d}" for t, d in
                                          zip(data.test_text[:4], data.test_truth,
                                              strict=False)),
          "; and with no day:", "; ".join(map(repr, data.test_no_day[:4])))

    # Baseline that needs no training, on exactly the test strings.
    pandas_test, pandas_answers = pandas_scores(data)
    baselines = {"pandas": pandas_test}
    print(comparison_table(baselines, METRICS[:1] + METRICS[2:]))

    no_dates = round(cfg.batch_size * cfg.non_date_share)

    def batches():
        """Fresh strings every epoch: --batch-size dates of the training days, and a
        --non-date-share of that many non-dates of the train part. Their generator is
        seeded from numpy's global one, which last.pt saves, so --resume draws the same."""
        rng = random.Random(int(np.random.randint(2**31)))
        for _ in range(cfg.batches_per_epoch):
            texts, truth, _ = columns(sample(data.train_days, cfg.batch_size, rng))
            texts += [non_date(rng.choice(TRAINED_NON_DATE_KINDS), "train", rng)
                      for _ in range(no_dates)]
            x, lengths = encode_inputs(texts, data.vocab)
            y = encode_targets(truth + [NO_DATE] * no_dates)
            yield x.to(run.device), lengths.to(run.device), y.to(run.device)

    def validate(model: DateSeq2Seq) -> dict[str, float]:
        """Loss and scores on the validation dates, greedy."""
        x, lengths = encode_inputs(data.val_text, data.vocab)
        y = encode_targets(data.val_truth)
        model.eval()
        with torch.no_grad():
            value = batch_loss(model, (x.to(run.device), lengths.to(run.device), y.to(run.device)))
        answers, _, _ = translate(model, data.val_text, data.vocab)
        return {"loss": value.item(), **scores(answers, data.val_truth)}

    def train_seed(seed: int) -> SeedResult:
        """The model, then the same network without attention (in seed<N>/no_attention/),
        each trained and then scored on the test strings."""
        results, outputs, histories = {}, {}, {}
        for name, attention in [("model", cfg.attention), ("no_attention", "none")]:
            model = DateSeq2Seq(len(data.vocab), model_config(cfg, attention),
                                data.vocab.pad_index).to(run.device)
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, cfg.lr, total_steps=cfg.epochs * cfg.batches_per_epoch)
            # best.pt, last.pt and history.csv in seed<N>/ (seed<N>/no_attention/)
            checkpoint = run.checkpoint(seed, "" if name == "model" else name,
                                        monitor="loss", model=model, optimizer=optimizer,
                                        scheduler=scheduler)
            trained = distributed.wrap(model)  # under torchrun, DDP averages the gradients
            for epoch in checkpoint.epochs(cfg.epochs):
                # the one-cycle schedule steps after every batch
                loss = train_epoch(trained, optimizer, batches(), step, cfg.clip_norm,
                                   scheduler=scheduler)
                checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
            histories[name] = checkpoint.load_best()
            # The best-on-validation weights: the threshold, then the test strings once.
            results[name], outputs[name] = evaluate(model, data, cfg.beam,
                                                    cfg.abstain_budget)
        history = histories["model"]
        history.seconds += histories["no_attention"].seconds  # the time both took
        return SeedResult(seed, results, history, outputs)

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return {}  # under torchrun, process 0 alone reports

    # Report: the model (median over seeds) beside both baselines.
    test = {**seeds.test(), **baselines}
    print(comparison_table(test, METRICS))
    print(f"training: {seeds.seconds:.1f} s in all (both networks, {len(run.seeds)} "
          f"seed(s)); beam width {cfg.beam}; refusal threshold (chosen on validation) "
          f"{seeds.results[0].outputs['model']['threshold']:.4g} for seed {run.seeds[0]}")
    run.finish(test, seeds.seconds)

    # The seed best on validation is the one predict.py uses and the tables show.
    best = seeds.best_on_validation()
    mine = best.outputs["model"]
    save_model(run.dir / "model.pt", TrainedModel(mine["model"], data.vocab,
                                                  mine["threshold"], cfg.beam),
               seed=best.seed)
    report(data, best, pandas_answers, cfg.attention, run.dir)
    print(f"wrote {run.dir}/metrics.json, per_format.csv, refusal_per_kind.csv, model.pt, "
          f"seed*/best.pt and plots; try: python -m {__package__}.predict --run-dir "
          f"{run.dir} \"3rd of March 1998\"")
    return test


if __name__ == "__main__":
    run_main(main)
