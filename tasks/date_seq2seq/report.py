"""date_seq2seq's report on the seed best on validation: exact match per format family,
refusals per kind of non-date, a few mistakes, the training curve and attention maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core import plots
from core.run import SeedResult

from .baselines import pandas_reads
from .data import Data
from .dates import FAMILIES, NON_DATE_KINDS
from .model import plot_attention

# Test strings whose attention is drawn: one of each of these families, and a mistake.
SHOWN_FAMILIES = ["ordinal_words", "month_day_year", "numeric_day_first", "numeric_year_first"]


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


def report(data: Data, best: SeedResult, pandas_answers: list[str], attention: str,
           folder: Path) -> None:
    """The tables, mistakes and plots of `best` (the seed best on validation), written to
    `folder`; `attention`: the model's (none: no attention to draw)."""
    best_seed = best.seed
    mine = best.outputs["model"]
    answers = {"model": mine["greedy"], "model_beam": mine["beam"],
               "no_attention": best.outputs["no_attention"]["greedy"],
               "pandas": pandas_answers}
    table = per_format(data.test_family, data.test_truth, answers)
    table.to_csv(folder / "per_format.csv", index=False)
    print(f"exact match per format family (seed {best_seed}):\n{table.to_string(index=False)}")
    refused = {name: best.outputs[name]["no_day_refused"] for name in ["model", "no_attention"]}
    refused["pandas"] = np.array(pandas_reads(data.test_no_day)) == ""
    kinds = refusal_per_kind(data, refused)
    kinds.to_csv(folder / "refusal_per_kind.csv", index=False)
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
    plots.training_curve(best.history.epochs, folder / "training_curve.png", keys=["loss"])
    if attention != "none":
        shown = [data.test_family.index(f) for f in SHOWN_FAMILIES if f in data.test_family]
        for n, i in enumerate(shown + wrong[:1]):
            plot_attention(mine["attention"][i], data.test_text[i], mine["greedy"][i],
                           folder / f"attention_{n}.png", f"{data.test_text[i]!r} -> "
                           f"{mine['greedy'][i]} (truth {data.test_truth[i]})")
