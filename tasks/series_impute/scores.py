"""How every method is scored, alike: standardised errors over the hidden entries, their
spread over the test draws, and the model's ratio to the best baseline, paired draw by
draw."""

from __future__ import annotations

import math
import statistics

import numpy as np

from .data import PATTERNS


def errors(truth: np.ndarray, filled: np.ndarray, hidden: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """MAE and RMSE (F,) of each variable over its hidden entries (NaN if it has none)."""
    mae, rmse = np.full(truth.shape[1], np.nan), np.full(truth.shape[1], np.nan)
    for f in range(truth.shape[1]):
        d = (filled - truth)[hidden[:, f], f]
        if len(d):
            mae[f], rmse[f] = np.abs(d).mean(), np.sqrt((d ** 2).mean())
    return mae, rmse


def pattern_scores(truth: np.ndarray, filled: dict[str, np.ndarray],
                   hidden: dict[str, np.ndarray]) -> dict[str, float]:
    """{"mae@points10": ..., "rmse@block": ...}: standardised errors, mean over variables."""
    scores = {}
    for p in PATTERNS:
        mae, rmse = errors(truth, filled[p], hidden[p])
        scores[f"mae@{p}"], scores[f"rmse@{p}"] = float(np.nanmean(mae)), float(np.nanmean(rmse))
    return scores


def t_quantile_975(df: int) -> float:
    """Student's t at 0.975 (the half-width of a 95% interval, in standard errors), by the
    Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5): within 0.01 of the tables
    from 4 degrees of freedom, 2.262 at 9."""
    z = statistics.NormalDist().inv_cdf(0.975)
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def spread(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, standard deviation and the 95% interval (low, high) of the mean of draws;
    nan where a draw's value is not finite (a baseline that is exact on a tiny file makes
    a ratio infinite), which metrics.json writes as null."""
    if not np.all(np.isfinite(values)):
        return (float("nan"),) * 4
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    half = t_quantile_975(len(values) - 1) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


def draw_scores(truth: np.ndarray, draws: list[dict[str, np.ndarray]],
                masks: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """One method's fills under every test draw -> {metric: mean over the draws,
    metric_std, metric_ci95_low, metric_ci95_high}."""
    per_draw = [pattern_scores(truth, f, m) for f, m in zip(draws, masks, strict=True)]
    out = {}
    for key in per_draw[0]:
        mean, std, low, high = spread([d[key] for d in per_draw])
        out |= {key: mean, f"{key}_std": std, f"{key}_ci95_low": low,
                f"{key}_ci95_high": high}
    return out


def ratio_spread(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Two methods' scores over the same draws -> the ratio of their means, mean(a) /
    mean(b), and its 95% interval from the draws (the ratio estimator's delta-method
    standard error, from the spread of a - ratio * b); nan where a score is not finite.
    Unlike the mean of the draws' own ratios, one draw where b is nearly exact (a short
    test part that hides two cells) cannot blow it up; equal scores give [1, 1]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or b.mean() <= 0:
        return (float("nan"),) * 3
    ratio = a.mean() / b.mean()
    half = (t_quantile_975(len(a) - 1) * np.std(a - ratio * b, ddof=1)
            / (math.sqrt(len(a)) * b.mean()))
    return float(ratio), float(ratio - half), float(ratio + half)


def paired_ratios(model: list[dict[str, np.ndarray]], best: dict[str, str],
                  draws: dict[str, list[dict[str, np.ndarray]]], truth: np.ndarray,
                  masks: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """The model's MAE over the best baseline's (`best`: pattern -> method), paired on the
    same masks -> {"mae@p_ratio": the ratio of their means over the draws,
    _ratio_ci95_low, _ratio_ci95_high}. Pairing removes what the draws share (a hard draw
    is hard for both), so this interval is narrower than the two methods' own."""
    out = {}
    for p in PATTERNS:
        maes = [[float(np.nanmean(errors(truth, fills[p], hidden[p])[0]))
                 for fills, hidden in zip(method, masks, strict=True)]
                for method in (model, draws[best[p]])]
        ratio, low, high = ratio_spread(*maes)
        out |= {f"mae@{p}_ratio": ratio, f"mae@{p}_ratio_ci95_low": low,
                f"mae@{p}_ratio_ci95_high": high}
    return out


def band(filled: np.ndarray, half: np.ndarray, low: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """An interval's (lower, upper) bounds: filled +- half, never below `low` (F,), the
    least value the variable takes (a rain total is never negative)."""
    return np.maximum(filled - half, low), filled + half


def band_scores(truth: np.ndarray, draws: list[dict[str, tuple[np.ndarray, np.ndarray]]],
                masks: list[dict[str, np.ndarray]], low: np.ndarray, name: str
                ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """One method's intervals (filled, half-width) under every test draw -> ({coverage<L>@p:
    share of the hidden cells inside their interval, width<L>@p: its mean width over the
    variable's training std, mean over the variables; each with _std and _ci95 over the
    draws}, and each draw's widths for paired_widths). `name` L: the level, as 90."""
    per_draw = []
    for by_pattern, hidden in zip(draws, masks, strict=True):
        scores = {}
        for p in PATTERNS:
            lower, upper = band(*by_pattern[p], low)
            inside = ((lower <= truth) & (truth <= upper))[hidden[p]]
            widths = [(upper - lower)[hidden[p][:, f], f].mean()
                      for f in range(truth.shape[1]) if hidden[p][:, f].any()]
            scores |= {f"coverage{name}@{p}": float(inside.mean()),
                       f"width{name}@{p}": float(np.mean(widths))}
        per_draw.append(scores)
    out = {}
    for key in per_draw[0]:
        mean, std, low_, high = spread([d[key] for d in per_draw])
        out |= {key: mean, f"{key}_std": std, f"{key}_ci95_low": low_,
                f"{key}_ci95_high": high}
    return out, per_draw


def paired_widths(method: list[dict[str, float]], naive: list[dict[str, float]],
                  name: str) -> dict[str, float]:
    """A method's interval width over the naive interval's (linear interpolation's), paired
    over the draws -> {width<L>@p_vs_linear: the ratio of the means, _ci95_low, _ci95_high}."""
    out = {}
    for p in PATTERNS:
        key = f"width{name}@{p}"
        ratio, low, high = ratio_spread([m[key] for m in method], [n[key] for n in naive])
        out |= {f"{key}_vs_linear": ratio, f"{key}_vs_linear_ci95_low": low,
                f"{key}_vs_linear_ci95_high": high}
    return out
