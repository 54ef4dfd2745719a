"""Which method fills each variable: linear interpolation, or the network or classical
fill that does clearly better on the series at hand. fill.py checks a user's file this
way before writing a cell, and train.py makes the same check for its "fill" row.

The check hides a share of the series' own observed cells, in the two kinds of gaps a
file has (short ones, like points10; long ones, like the block pattern), under a few
seeded draws, fills them with every method, and scores each on exactly those cells:

    gap kind   hidden like   a missing cell is of this kind when its gap (the run of
    short      points10      missing cells it sits in, in its variable) is shorter than
    long       block         the shortest hidden block (7 rows; 3 for monthly rows
                             and in a short file: data.block_rows)

In an irregular series too, gaps and blocks are counted in rows (readings), not in time.

Linear interpolation is the default: the simplest honest fill, and what a user gets from
pandas. Another method replaces it for a variable and gap kind only when it wins beyond
the check's own noise, by either of two tests over the draws (each draw one pair: a hard
draw is hard for both): it has the lower MAE in every draw and by MARGIN on their mean,
or the paired 95% interval of its MAE over linear's (a t interval of the log ratio) lies
wholly below 1 - MARGIN. Among such winners, the lowest mean MAE fills. A challenger that
wins by a hair on the check can lose on the cells that matter (a series that shifts level
after the part it was checked on), so a hair is not enough; one that wins by a lot in most
draws but not all (a seasonal fill on a short seasonal file) wins. A short file gets more
draws (draws()), so its interval is narrow enough to see such a win. A series too short
to check is filled by the fallback: the one baseline that wins so over all the variables
on the training run's validation rows (saved in model.pt).

The check's hidden cells also calibrate fill's interval (interval.py): the errors of what
fill writes, on cells it hid, bound the errors on the cells it fills.

train.py's "fill" row is what fill would write on the rows the network never trained on
(validation and test) under each test draw: the check hides more of the cells that draw
leaves seen, exactly as fill does on a file, and never reads a hidden test value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from . import interval
from .baselines import fill_constant, fill_linear, fill_locf, fill_seasonal
from .data import PATTERNS, Data, hide
from .model import Imputer, impute
from .scores import errors, t_quantile_975

KINDS = {"short": "points10", "long": "block"}  # gap kind: the pattern that checks it
DRAWS = 5            # mask draws of the check, at least
DRAW_ROWS = 2000     # more draws for a shorter file: about this many rows in all ...
MOST_DRAWS = 20      # ... up to this many draws
MARGIN = 0.02        # a challenger beats linear by this share of its MAE, or linear stays
SMALLEST_SEEN = 30   # observed cells a variable needs to be checked
BLOCKS_NEEDED = 4    # the series must hold this many of the longest block


def classical_fills(values: np.ndarray, seen: np.ndarray, median: np.ndarray,
                    season: np.ndarray | None, times: np.ndarray | None = None,
                    methods: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """{method: filled (T, F)} for every classical fill (or only those of `methods`),
    standardised; the seasonal ones only where the rows have a cycle (`season` (T, F),
    else None). `times` (T,): each row's time (None: rows 0, 1, 2, ...)."""
    width = values.shape[1]
    fills: dict[str, Callable[[], np.ndarray]] = {
        "mean": lambda: fill_constant(values, seen, np.zeros(width)),
        "median": lambda: fill_constant(values, seen, median),
        "locf": lambda: fill_locf(values, seen),
        "linear": lambda: fill_linear(values, seen, times)}
    if season is not None:
        fills["seasonal"] = lambda: fill_seasonal(values, seen, season,
                                                  np.zeros(width, bool), times)
        fills["seasonal+offset"] = lambda: fill_seasonal(values, seen, season,
                                                         np.ones(width, bool), times)
    return {m: fill() for m, fill in fills.items() if methods is None or m in methods}


def every_fill(imputer: Imputer, z: np.ndarray, seen: np.ndarray, extra: np.ndarray,
               season: np.ndarray | None, low: np.ndarray, window: int,
               times: np.ndarray | None, median: np.ndarray,
               methods: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """{method: filled (B, T, F)}: every method's fill (or only those of `methods`: what
    fill writes needs only the chosen ones, and the network is the slowest) of the series
    z (T, F) under each of B masks, seen (B, T, F); the network first, all B in one
    batch. extra (T, E), season (T, F) or None (no cycle), times (T,) or None (rows 0, 1,
    2, ...)."""
    def repeat(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (len(seen), *a.shape))
    out = {}
    if methods is None or "model" in methods:
        cycle = season if season is not None else np.zeros(z.shape)
        out["model"] = impute(imputer, repeat(z), seen, repeat(extra), repeat(cycle), low,
                              window, None if times is None else repeat(times))
    classical = [classical_fills(z, s, median, season, times, methods) for s in seen]
    # pop: each method's fills freed as they are stacked (a long file's memory)
    return out | {m: np.stack([c.pop(m) for c in classical]) for m in list(classical[0])}


def gap_kinds(seen: np.ndarray, blocks: tuple[int, int]) -> dict[str, np.ndarray]:
    """{kind: (T, F) bool}: the unseen cells in gaps shorter than the shortest block
    (blocks: data.block_rows) ("short") and the rest ("long")."""
    shortest = blocks[0]
    length = np.zeros(seen.shape, dtype=int)
    for f in range(seen.shape[1]):
        edges = np.diff(np.concatenate([[0], (~seen[:, f]).astype(int), [0]]))
        for start, end in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0],
                              strict=True):
            length[start:end, f] = end - start
    return {"short": ~seen & (length < shortest), "long": ~seen & (length >= shortest)}


def checkable(observed: np.ndarray, blocks: tuple[int, int]) -> bool:
    """Long enough to hide blocks in and score every variable on a few dozen cells."""
    return (len(observed) >= BLOCKS_NEEDED * blocks[1]
            and bool((observed.sum(axis=0) >= SMALLEST_SEEN).all()))


def draws(rows: int) -> int:
    """How many mask draws the check makes of a file of `rows` rows: DRAWS, more for a
    short file (about DRAW_ROWS rows in all, at most MOST_DRAWS), where each draw hides
    few cells and one draw's MAE is noisy."""
    return min(MOST_DRAWS, max(DRAWS, math.ceil(DRAW_ROWS / max(rows, 1))))


@dataclass
class Check:
    """What the check hid and how every method filled it: `masks` (kind, hidden (T, F))
    per draw and kind, `seen` (len(masks), T, F) what each left seen, `filled` {method:
    (len(masks), T, F)}, and `scores` {kind: {method: MAE (draws, F)}} (NaN: a draw that
    hid none of a variable)."""
    masks: list[tuple[str, np.ndarray]]
    seen: np.ndarray
    filled: dict[str, np.ndarray]
    scores: dict[str, dict[str, np.ndarray]]


def check(fills: Callable[[np.ndarray], dict[str, np.ndarray]], values: np.ndarray,
          observed: np.ndarray, blocks: tuple[int, int], seed: int) -> Check:
    """Each method's error on observed cells hidden like each gap kind, under draws(T)
    draws. `fills(seen)` gives every method's fill of `values` under each mask of seen
    (B, T, F): all draws in one call."""
    hidden = [(kind, hide(observed, pattern, blocks, np.random.default_rng([seed, d, k])))
              for d in range(draws(len(values))) for k, (kind, pattern) in
              enumerate(KINDS.items())]
    seen = np.stack([observed & ~mask for _, mask in hidden])
    filled = fills(seen)
    scores: dict[str, dict[str, list[np.ndarray]]] = {kind: {} for kind in KINDS}
    for i, (kind, mask) in enumerate(hidden):
        for method, by_mask in filled.items():
            scores[kind].setdefault(method, []).append(errors(values, by_mask[i], mask)[0])
    return Check(hidden, seen, filled, {kind: {m: np.stack(v) for m, v in by_method.items()}
                                  for kind, by_method in scores.items()})


def mean_over_draws(mae: np.ndarray) -> np.ndarray:
    """(draws, F) -> (F,): the mean over the draws that scored each variable (NaN: none)."""
    scored = np.isfinite(mae)
    return np.where(scored.any(0), np.where(scored, mae, 0).sum(0) / scored.sum(0).clip(1),
                    np.nan)


def clear_win(mae: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """(draws, F) each -> (F,) bool: beyond the noise of the draws that scored both,
    either test: lower than linear's MAE in every draw (a sign test: 1 in 32 by chance
    over 5 draws), or the paired 95% interval of mae / linear (a t interval of the log
    ratio) wholly below 1; and in both cases by at least MARGIN on the mean (the
    interval's high end, for the second). Fewer than two such draws: linear stays."""
    scored = np.isfinite(mae) & np.isfinite(linear)
    tiny = np.finfo(float).tiny  # an exact fill (MAE 0) is a huge log ratio, not a NaN
    log_ratio = np.log(np.maximum(np.where(scored, mae, 1), tiny)
                       / np.maximum(np.where(scored, linear, 1), tiny))
    wins = np.zeros(mae.shape[1], bool)
    for f in range(mae.shape[1]):
        r, a, b = log_ratio[scored[:, f], f], mae[scored[:, f], f], linear[scored[:, f], f]
        if len(r) < 2:
            continue
        half = t_quantile_975(len(r) - 1) * r.std(ddof=1) / math.sqrt(len(r))
        every = bool((a < b).all()) and a.mean() <= (1 - MARGIN) * b.mean()
        wins[f] = every or r.mean() + half < math.log(1 - MARGIN)
    return wins


def choose(scores: dict[str, dict[str, np.ndarray]],
           network: bool = True) -> dict[str, list[str]]:
    """{kind: [method per variable]}: linear, unless others win beyond the noise
    (clear_win); then the one of them with the lowest mean MAE. `network` False:
    baselines only, judged on the MAE over all the variables, one choice for every
    variable (what a series too short to check gets: one choice from all its cells,
    less noisy than one a variable)."""
    out = {}
    for kind, by_method in scores.items():
        width = by_method["linear"].shape[1]
        if not network:
            by_method = {m: np.nanmean(v, axis=1, keepdims=True)
                         for m, v in by_method.items() if m != "model"}
        linear = by_method["linear"]
        means = {m: mean_over_draws(v) for m, v in by_method.items()}
        wins = {m: clear_win(v, linear) for m, v in by_method.items() if m != "linear"}
        picks = [min((m for m in wins if wins[m][f]), key=lambda m, f=f: means[m][f],
                     default="linear") for f in range(len(linear[0]))]
        out[kind] = picks if network else picks * width
    return out


def combine(fills: dict[str, np.ndarray], chosen: dict[str, list[str]],
            kinds: dict[str, np.ndarray]) -> np.ndarray:
    """One fill (T, F): each missing cell from the method chosen for its variable and
    its gap's kind; seen cells as they are (every fill keeps them)."""
    out = fills["linear"].copy()
    for kind, where in kinds.items():
        for f, method in enumerate(chosen[kind]):
            out[where[:, f], f] = fills[method][where[:, f], f]
    return out


def check_errors(result: Check, values: np.ndarray, chosen: dict[str, list[str]],
                 blocks: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """What fill would write with `chosen` on each of the check's masks, scored on the
    cells it hid: their absolute errors, variables, whether their gap is long, and their
    distances to the nearest seen value, (N,) each, pooled over every draw and kind;
    interval.calibrate's arguments."""
    out: list[tuple[np.ndarray, ...]] = []
    for i, (_, hidden) in enumerate(result.masks):
        seen, kinds = result.seen[i], gap_kinds(result.seen[i], blocks)
        filled = combine({m: f[i] for m, f in result.filled.items()}, chosen, kinds)
        rows, variables = np.nonzero(hidden)
        out.append((np.abs(filled - values)[rows, variables], variables,
                    kinds["long"][rows, variables], interval.distance(seen)[rows, variables]))
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def table(scores: dict[str, dict[str, np.ndarray]], chosen: dict[str, list[str]],
          columns: list[str], std: np.ndarray, gaps: dict[str, np.ndarray] | None = None
          ) -> str:
    """The short table of what fills each variable and kind, its MAE on the check (in the
    data's units) and by how much it won: over linear interpolation and over the runner
    up. `gaps` (kind: (T, F) bool) adds how many missing cells each row fills, and leaves
    out the rows that fill none."""
    lines = [f"{'variable':<16} {'gaps':<6}{'' if gaps is None else ' cells'}  {'uses':<16} "
             f"{'MAE':>10}  {'/ linear':>8}  runner-up"]
    for kind, by_method in scores.items():
        for f, name in enumerate(columns):
            cells = "" if gaps is None else f"{int(gaps[kind][:, f].sum()):>6}"
            if cells.strip() == "0":
                continue
            used = chosen[kind][f]
            mae = {m: mean_over_draws(v)[f] * std[f] for m, v in by_method.items()}
            second = min((m for m in mae if m != used), key=mae.get)
            lines.append(f"{name[:16]:<16} {kind:<6}{cells}  {used:<16} {mae[used]:>10.4g}"
                         f"  {mae[used] / mae['linear']:>8.3f}  {second} {mae[second]:.4g}")
    return "\n".join(lines)


def as_json(scores: dict[str, dict[str, np.ndarray]], chosen: dict[str, list[str]],
            columns: list[str]) -> dict:
    """{variable: {kind: {"method": chosen, "mae": {method: standardised MAE, the mean
    over the draws}}}}."""
    return {name: {kind: {"method": chosen[kind][f],
                          "mae": {m: float(mean_over_draws(v)[f])
                                  for m, v in scores[kind].items()}}
                   for kind in scores}
            for f, name in enumerate(columns)}


# ---- the check train.py makes: on the rows the network never trained on

def fills_of(imputer: Imputer, data: Data, window: int, rows: np.ndarray,
             median: np.ndarray) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """seen (B, T, F) -> every_fill of data's `rows` under each mask."""
    season = data.season[rows] if data.profile is not None else None

    def fills(seen: np.ndarray) -> dict[str, np.ndarray]:
        return every_fill(imputer, data.z[rows], seen, data.extra[rows], season, data.low,
                          window, data.times[rows], median)
    return fills


def check_rows(imputer: Imputer, data: Data, window: int, median: np.ndarray,
               rows: np.ndarray, seen: np.ndarray, seed: int) -> Check:
    """check() on data's `rows`, seeing only `seen` of them."""
    return check(fills_of(imputer, data, window, rows, median), data.z[rows], seen,
                 data.sizes.blocks, seed)


def on_unseen_rows(imputer: Imputer, data: Data, window: int, median: np.ndarray,
                   seed: int) -> tuple[dict, dict[str, list[str]], dict[str, list[str]]]:
    """-> (scores, chosen, fallback): the check fill makes on the validation and test rows
    as the file has them (what metrics.json records; the fallback where they are too few
    to check, as fill does), and the fallback for a file too short to check, judged on
    the validation rows alone (the test draws may use it)."""
    val, rows = data.parts["val"], np.concatenate([data.parts["val"], data.parts["test"]])
    fallback = choose(check_rows(imputer, data, window, median, val, data.observed[val],
                                 seed).scores, network=False)
    scores = check_rows(imputer, data, window, median, rows, data.observed[rows], seed).scores
    checked = checkable(data.observed[rows], data.sizes.blocks)
    return scores, choose(scores) if checked else fallback, fallback


BANDED = ("fill", "model", "linear")  # what on_test gives an interval: fill's, and the
# same recipe on the network alone and on linear interpolation (the naive interval)


def on_test(imputer: Imputer, data: Data, window: int, median: np.ndarray,
            fallback: dict[str, list[str]], seed: int
            ) -> list[dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """What fill would write on the test rows under each draw, and its interval at
    interval.LEVEL, beside the network's and linear interpolation's by the same recipe:
    [{pattern: {method (BANDED): (filled, half-width) (T_test, F) each}}]. All checked on
    the validation rows and the test cells the draw leaves seen: fill's choice per
    variable and gap kind (the fallback where those are too few to check), and each
    interval calibrated on that check's hidden cells, never on a hidden test value."""
    val, test = data.parts["val"], data.parts["test"]
    rows, blocks, out = np.concatenate([val, test]), data.sizes.blocks, []
    width = data.z.shape[1]
    for masks in data.test_masks:
        by_pattern = {}
        for p in PATTERNS:
            seen_test = data.observed[test] & ~masks[p]
            seen = np.concatenate([data.observed[val], seen_test])
            result = check_rows(imputer, data, window, median, rows, seen, seed)
            choices = {"fill": choose(result.scores) if checkable(seen, blocks) else fallback,
                       "model": dict.fromkeys(KINDS, ["model"] * width),
                       "linear": dict.fromkeys(KINDS, ["linear"] * width)}
            fills = fills_of(imputer, data, window, test, median)(seen_test[None])
            kinds = gap_kinds(seen_test, blocks)
            by_pattern[p] = {}
            for method, chosen in choices.items():
                calibration = interval.calibrate(
                    *check_errors(result, data.z[rows], chosen, blocks), width, interval.LEVEL)
                by_pattern[p][method] = (
                    combine({m: f[0] for m, f in fills.items()}, chosen, kinds),
                    interval.half_width(calibration, seen_test, kinds["long"])[0])
        out.append(by_pattern)
    return out
