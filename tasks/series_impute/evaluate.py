"""series_impute's evaluation, as train.py runs it: the network's fills of a split under
many masks in one batch, and one seed's test scores, for the network and for what fill
would write, each paired draw by draw with the best baseline, with their intervals'
coverage and width."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.run import SeedResult

from . import choose
from .data import PATTERNS, Data
from .interval import LEVEL
from .model import Imputer, impute
from .scores import band_scores, draw_scores, paired_ratios, paired_widths

if TYPE_CHECKING:  # train.py imports this module
    from .train import Config


def impute_split(cfg: Config, imputer: Imputer, data: Data, split: str,
                 masks: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The model's fills of `split` under each {pattern: hidden} of `masks`, all of them
    one batch of len(masks) x 3 sequences."""
    rows = data.parts[split]
    seen = np.stack([data.observed[rows] & ~m[p] for m in masks for p in PATTERNS])
    copies = lambda a: np.stack([a[rows]] * len(seen))  # noqa: E731
    filled = impute(imputer, copies(data.z), seen, copies(data.extra), copies(data.season),
                    data.low, cfg.window, copies(data.times))
    return [dict(zip(PATTERNS, filled[3 * i:3 * i + 3], strict=True))
            for i in range(len(masks))]



def evaluate(cfg: Config, data: Data, imputer: Imputer, seed: int, history, fitted,
             best: dict[str, str], draws: dict) -> SeedResult:
    """One seed's best-on-validation imputer on the test draws, once: the network's
    scores, and those of what fill would write (its check's choice per variable and gap
    kind, choose.on_test), each paired draw by draw with the best baseline; and the
    coverage and width of the interval fill writes, of the same recipe on the network,
    and of the naive one on linear interpolation (outputs["naive"], the linear row's)."""
    truth = data.truth("test")
    filled = impute_split(cfg, imputer, data, "test", data.test_masks)
    scores = (draw_scores(truth, filled, data.test_masks)
              | paired_ratios(filled, best, draws, truth, data.test_masks))
    check, chosen, fallback = choose.on_unseen_rows(imputer, data, cfg.window,
                                                    fitted.median, cfg.mask_seed)
    banded = choose.on_test(imputer, data, cfg.window, fitted.median, fallback,
                            cfg.mask_seed)
    chosen_fills = [{p: by_method["fill"][0] for p, by_method in d.items()} for d in banded]
    fill_scores = (draw_scores(truth, chosen_fills, data.test_masks)
                   | paired_ratios(chosen_fills, best, draws, truth, data.test_masks))
    level = f"{round(100 * LEVEL)}"
    bands = {m: band_scores(truth, [{p: b[m] for p, b in d.items()} for d in banded],
                            data.test_masks, data.low, level) for m in choose.BANDED}
    scores |= bands["model"][0] | paired_widths(bands["model"][1], bands["linear"][1], level)
    fill_scores |= bands["fill"][0] | paired_widths(bands["fill"][1], bands["linear"][1],
                                                    level)
    state = {k: v.detach().cpu().clone() for k, v in imputer.state_dict().items()}
    return SeedResult(seed, {"model": scores, "fill": fill_scores}, history,
                      {"filled": filled, "state": state, "check": check, "chosen": chosen,
                       "fallback": fallback, "naive": bands["linear"][0], "banded": banded})


def rival_scores(data: Data, filled: list, best: dict[str, str], draws: dict) -> dict:
    """A second network's test scores, and its ratio to the best baseline, paired."""
    truth = data.truth("test")
    return (draw_scores(truth, filled, data.test_masks)
            | paired_ratios(filled, best, draws, truth, data.test_masks))


def versus(data: Data, filled: list, other: list, name: str) -> dict[str, float]:
    """The model's MAE over another method's, paired draw by draw: mae@P_vs_<name>."""
    ratios = paired_ratios(filled, dict.fromkeys(PATTERNS, name), {name: other},
                           data.truth("test"), data.test_masks)
    return {key.replace("_ratio", f"_vs_{name}"): value for key, value in ratios.items()}
