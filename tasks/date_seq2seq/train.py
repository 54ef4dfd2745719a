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

    make date_seq2seq                  # python -m tasks.date_seq2seq.train
    python -m tasks.date_seq2seq.train --attention dot --impl core
    python -m tasks.date_seq2seq.predict "3rd of March 1998" "1998/3/3" --plot attention.png

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import plots
from core.config import RunConfig, arg, parse, require, run_main
from core.report import comparison_table
from core.run import Run, SeedResult
from core.text import Vocab
from core.train import History

from .dates import (
    FAMILIES,
    MAX_LENGTH,
    NON_DATE_KINDS,
    TRAINED_NON_DATE_KINDS,
    all_days,
    non_date,
    non_dates,
    sample,
    split_days,
    written_once,
)
from .model import (
    NO_DATE,
    OUTPUT_LENGTH,
    OUTPUT_TOKENS,
    DateSeq2Seq,
    ModelConfig,
    TrainedModel,
    encode_inputs,
    encode_targets,
    input_vocab,
    plot_attention,
    save_model,
    translate,
)

VAL_SEED, TEST_SEED = 1, 2  # the formats of the fixed validation and test strings
# Test strings whose attention is drawn: one of each of these families, and a mistake.
SHOWN_FAMILIES = ["ordinal_words", "month_day_year", "numeric_day_first", "numeric_year_first"]
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


@dataclass
class Data:
    """The strings of a run: training days, and the fixed validation and test strings,
    dates (text, ISO truth, family) and strings that hold no day (text, kind)."""

    vocab: Vocab
    train_days: list[date]
    val_text: list[str]
    val_truth: list[str]
    test_text: list[str]
    test_truth: list[str]
    test_family: list[str]
    val_no_day: list[str]
    test_no_day: list[str]
    test_no_day_kind: list[str]


def model_config(cfg: Config, attention: str) -> ModelConfig:
    return ModelConfig(impl=cfg.impl, attention=attention, embedding_dim=cfg.embedding_dim,
                       hidden_size=cfg.hidden_size, decoder_size=cfg.decoder_size,
                       attention_size=cfg.attention_size, max_length=MAX_LENGTH)


def columns(rows: list[tuple[str, ...]]) -> tuple[list[str], ...]:
    """[(text, ISO date, family), ...] -> texts, ISO dates, families (any width)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def make_data(cfg: Config) -> Data:
    train_days, val_days, test_days = split_days(cfg.val_size, cfg.test_size)
    val_text, val_truth, _ = columns(written_once(val_days, VAL_SEED))
    val_no_day, _ = columns(non_dates("validation", cfg.non_date_size, VAL_SEED))
    test_no_day, test_no_day_kind = columns(non_dates("test", cfg.non_date_size, TEST_SEED))
    return Data(input_vocab(), train_days, val_text, val_truth,
                *columns(written_once(test_days, TEST_SEED)), val_no_day, test_no_day,
                test_no_day_kind)


def scores(predicted: list[str], truth: list[str]) -> dict[str, float]:
    """exact_match: the share of strings read right; char_accuracy: the share of the 10
    output positions right (a missing character is wrong)."""
    exact = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    chars = np.mean([sum(a == b for a, b in zip(p, t, strict=False)) / OUTPUT_LENGTH
                     for p, t in zip(predicted, truth, strict=True)])
    return {"exact_match": float(exact), "char_accuracy": float(chars)}


def pandas_reads(texts: list[str]) -> list[str]:
    """pandas' guess for each string as YYYY-MM-DD, or "" where it raises."""
    answers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" on every string
        for text in texts:
            try:
                answers.append(pd.to_datetime(text, format="mixed", dayfirst=True)
                               .strftime("%Y-%m-%d"))
            except (ValueError, OverflowError):
                answers.append("")
    return answers


def pandas_scores(data: Data) -> tuple[dict[str, float], list[str]]:
    """The baseline's scores on exactly the model's test strings, a failure to parse
    counting as a refusal; and its answers to the test dates."""
    answers = pandas_reads(data.test_text)
    refused = [answer == "" for answer in pandas_reads(data.test_no_day)]
    return {**scores(answers, data.test_truth),
            "abstain_valid": float(np.mean([answer == "" for answer in answers])),
            "refusal_invalid": float(np.mean(refused))}, answers


def training_batches(cfg: Config, data: Data, device: torch.device
                     ) -> Callable[[], Iterator[tuple[torch.Tensor, ...]]]:
    """Fresh strings every epoch: --batch-size dates of the training days, and a
    --non-date-share of that many non-dates of the train part. Their generator is seeded
    from numpy's global one, which the checkpoints save, so --resume draws the same
    strings."""
    no_dates = round(cfg.batch_size * cfg.non_date_share)

    def batches() -> Iterator[tuple[torch.Tensor, ...]]:
        rng = random.Random(int(np.random.randint(2**31)))
        for _ in range(cfg.batches_per_epoch):
            texts, truth, _ = columns(sample(data.train_days, cfg.batch_size, rng))
            texts += [non_date(rng.choice(TRAINED_NON_DATE_KINDS), "train", rng)
                      for _ in range(no_dates)]
            x, lengths = encode_inputs(texts, data.vocab)
            y = encode_targets(truth + [NO_DATE] * no_dates)
            yield x.to(device), lengths.to(device), y.to(device)
    return batches


def loss(model: DateSeq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Cross-entropy of every answer token, the decoder fed the true previous token."""
    x, lengths, y = batch
    logits, _ = model(x, lengths, y)  # (B, 11, V)
    return nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())


def step(model: DateSeq2Seq, batch: tuple[torch.Tensor, ...],
         carried: None) -> tuple[torch.Tensor, None]:
    """One training step's loss; the shared loop then does zero_grad, backward, clipping,
    the optimizer's and the one-cycle schedule's step. Nothing is carried over."""
    return loss(model, batch), None


def validate(model: DateSeq2Seq, data: Data, device: torch.device) -> dict[str, float]:
    """Loss and scores on the validation dates, greedy."""
    x, lengths = encode_inputs(data.val_text, data.vocab)
    y = encode_targets(data.val_truth)
    value = loss(model, (x.to(device), lengths.to(device), y.to(device)))
    answers, _, _ = translate(model, data.val_text, data.vocab)
    return {"loss": value.item(), **scores(answers, data.val_truth)}


def train_one(cfg: Config, run: Run, data: Data, attention: str, seed: int,
              name: str) -> tuple[DateSeq2Seq, History]:
    """Train one network of the seed (name "": the model; else a baseline network in
    seed<N>/<name>/)."""
    model = DateSeq2Seq(len(data.vocab), model_config(cfg, attention), data.vocab.pad_index)
    model = model.to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, cfg.lr, total_steps=cfg.epochs * cfg.batches_per_epoch)
    history = run.fit(model, optimizer, training_batches(cfg, data, run.device), step,
                      partial(validate, data=data, device=run.device), seed=seed, name=name,
                      about=f"attention {attention} ({cfg.impl})", monitor="loss",
                      clip_norm=cfg.clip_norm, scheduler=scheduler, scheduler_step="batch")
    return model, history


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


def per_format(families: list[str], truth: list[str],
               answers: dict[str, list[str]]) -> pd.DataFrame:
    """Exact match of every method in each format family of the test strings."""
    frame = pd.DataFrame({"family": families, "truth": truth})
    for method, predicted in answers.items():
        frame[method] = np.array(predicted) == np.array(truth)
    table = frame.groupby("family").agg(strings=("truth", "size"),
                                        **{m: (m, "mean") for m in answers})
    return table.reindex([f for f in FAMILIES if f in table.index]).round(4).reset_index()


def refusal_per_kind(data: Data, refused: dict[str, np.ndarray]) -> pd.DataFrame:
    """The share of the test non-dates each method refuses, per kind of non-date."""
    frame = pd.DataFrame({"kind": data.test_no_day_kind, **refused})
    table = frame.groupby("kind").agg(strings=("kind", "size"),
                                      **{m: (m, "mean") for m in refused})
    return table.reindex(NON_DATE_KINDS).round(4).reset_index()


def report(cfg: Config, run: Run, data: Data, best_seed: int, best: SeedResult,
           pandas_answers: list[str]) -> None:
    """The best seed's tables, mistakes and plots."""
    mine = best.outputs["model"]
    answers = {"model": mine["greedy"], "model_beam": mine["beam"],
               "no_attention": best.outputs["no_attention"]["greedy"],
               "pandas": pandas_answers}
    table = per_format(data.test_family, data.test_truth, answers)
    table.to_csv(run.dir / "per_format.csv", index=False)
    print(f"exact match per format family (seed {best_seed}):\n{table.to_string(index=False)}")
    refused = {name: best.outputs[name]["no_day_refused"] for name in ["model", "no_attention"]}
    refused["pandas"] = np.array(pandas_reads(data.test_no_day)) == ""
    kinds = refusal_per_kind(data, refused)
    kinds.to_csv(run.dir / "refusal_per_kind.csv", index=False)
    print(f"test non-dates refused, per kind (seed {best_seed}):\n{kinds.to_string(index=False)}")
    accepted = np.flatnonzero(~mine["no_day_refused"])
    print(f"{len(accepted)} test non-dates answered" + (": " if len(accepted) else "")
          + "; ".join(f"{data.test_no_day[i]!r} -> {mine['no_day_answers'][i]} "
                      f"(p {mine['no_day_p'][i]:.3f})" for i in accepted[:8]))
    wrong = [i for i, (p, t) in enumerate(zip(mine["greedy"], data.test_truth, strict=True))
             if p != t]
    print(f"{len(wrong)} test mistakes" + (": " if wrong else "") + "; ".join(
        f"{data.test_text[i]!r} -> {mine['greedy'][i]} (not {data.test_truth[i]})"
        for i in wrong[:8]))
    plots.training_curve(best.history.epochs, run.dir / "training_curve.png", keys=["loss"])
    if cfg.attention != "none":
        shown = [data.test_family.index(f) for f in SHOWN_FAMILIES if f in data.test_family]
        for n, i in enumerate(shown + wrong[:1]):
            plot_attention(mine["attention"][i], data.test_text[i], mine["greedy"][i],
                           run.dir / f"attention_{n}.png", f"{data.test_text[i]!r} -> "
                           f"{mine['greedy'][i]} (truth {data.test_truth[i]})")


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.batch_size = 2, 3, 32
        cfg.val_size, cfg.test_size, cfg.non_date_size = 60, 60, 60
    run = Run(cfg)

    # Data: disjoint train, validation and test days; validation and test strings fixed.
    data = make_data(cfg)
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

    def train_seed(seed: int) -> SeedResult:
        results, outputs, histories = {}, {}, {}
        for name, attention in [("model", cfg.attention), ("no_attention", "none")]:
            model, histories[name] = train_one(cfg, run, data, attention, seed,
                                               "" if name == "model" else name)
            results[name], outputs[name] = evaluate(model, data, cfg.beam,
                                                    cfg.abstain_budget)
        history = histories["model"]
        history.seconds += histories["no_attention"].seconds  # the time both took
        return SeedResult(results, history, outputs)

    seeds = run.each_seed(train_seed)

    # Report: the model (median over seeds) beside both baselines.
    test = {**seeds.test(), **baselines}
    print(comparison_table(test, METRICS))
    print(f"training: {seeds.seconds:.1f} s in all (both networks, {len(run.seeds)} "
          f"seed(s)); beam width {cfg.beam}; refusal threshold (chosen on validation) "
          f"{seeds.results[0].outputs['model']['threshold']:.4g} for seed {run.seeds[0]}")
    run.finish(test, seeds.seconds)

    # The seed best on validation is the one predict.py uses and the tables show.
    best = seeds.best_on_validation()
    best_seed = best.seed
    mine = best.outputs["model"]
    save_model(run.dir / "model.pt", TrainedModel(mine["model"], data.vocab,
                                                  mine["threshold"], cfg.beam),
               seed=best_seed)
    report(cfg, run, data, best_seed, best, pandas_answers)
    print(f"wrote {run.dir}/metrics.json, per_format.csv, refusal_per_kind.csv, model.pt, "
          f"seed*/best.pt and plots; try: python -m {__package__}.predict --run-dir "
          f"{run.dir} \"3rd of March 1998\"")
    return test


if __name__ == "__main__":
    run_main(main)
