"""Which method fills each variable: the network, or the classical fill that does better
on the series at hand. fill.py checks a user's file this way before writing a cell, and
train.py records the same check, made on the validation rows, in metrics.json.

The check hides a share of the series' own observed cells, in the two kinds of gaps a
file has (short ones, like points10; long ones, like the block pattern), under a few
seeded draws, fills them with every method, and scores each on exactly those cells:

    gap kind   hidden like   a missing cell is of this kind when its gap (the run of
    short      points10      missing cells it sits in, in its variable) is shorter than
    long       block         the shortest hidden block (7 rows; 3 for monthly rows)

In an irregular series too, gaps and blocks are counted in rows (readings), not in time.

train.py makes the same check on the validation rows (`on_validation`) and scores the
choice on the test draws (`on_test`). Each variable and kind is then filled by the method
with the lowest MAE there, so what a
user receives is never the network where interpolation did better on the same cells. A
series too short to check is filled by the fallback (the best baseline on the training
run's validation rows, saved in model.pt).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .baselines import fill_constant, fill_linear, fill_locf, fill_seasonal
from .data import PATTERNS, Data, block_rows, hide
from .model import Imputer, impute
from .scores import errors
from .steps import Step

KINDS = {"short": "points10", "long": "block"}  # gap kind: the pattern that checks it
DRAWS = 3            # mask draws of the check
SMALLEST_SEEN = 30   # observed cells a variable needs to be checked
BLOCKS_NEEDED = 4    # the series must hold this many of the longest block


def classical_fills(values: np.ndarray, seen: np.ndarray, median: np.ndarray,
                    season: np.ndarray | None, times: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """{method: filled (T, F)} for every classical fill, standardised; the seasonal ones
    only where the rows have a cycle (`season` (T, F), else None). `times` (T,): each
    row's time (None: rows 0, 1, 2, ...)."""
    width = values.shape[1]
    fills = {"mean": fill_constant(values, seen, np.zeros(width)),
             "median": fill_constant(values, seen, median),
             "locf": fill_locf(values, seen), "linear": fill_linear(values, seen, times)}
    if season is not None:
        fills["seasonal"] = fill_seasonal(values, seen, season, np.zeros(width, bool), times)
        fills["seasonal+offset"] = fill_seasonal(values, seen, season, np.ones(width, bool),
                                                 times)
    return fills


def gap_kinds(seen: np.ndarray, step: Step) -> dict[str, np.ndarray]:
    """{kind: (T, F) bool}: the unseen cells in gaps shorter than the shortest block
    ("short") and the rest ("long")."""
    shortest = block_rows(step)[0]
    length = np.zeros(seen.shape, dtype=int)
    for f in range(seen.shape[1]):
        edges = np.diff(np.concatenate([[0], (~seen[:, f]).astype(int), [0]]))
        for start, end in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0],
                              strict=True):
            length[start:end, f] = end - start
    return {"short": ~seen & (length < shortest), "long": ~seen & (length >= shortest)}


def checkable(observed: np.ndarray, step: Step) -> bool:
    """Long enough to hide blocks in and score every variable on a few dozen cells."""
    return (len(observed) >= BLOCKS_NEEDED * block_rows(step)[1]
            and bool((observed.sum(axis=0) >= SMALLEST_SEEN).all()))


def check(fills: Callable[[np.ndarray], dict[str, np.ndarray]], values: np.ndarray,
          observed: np.ndarray, step: Step, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """{kind: {method: MAE (F,)}}: each method's error on observed cells hidden like
    `kind`, mean over DRAWS draws. `fills(seen)` gives every method's fill of `values`
    seeing only `seen`."""
    scores: dict[str, dict[str, list[np.ndarray]]] = {kind: {} for kind in KINDS}
    for d in range(DRAWS):
        for k, (kind, pattern) in enumerate(KINDS.items()):
            hidden = hide(observed, pattern, step, np.random.default_rng([seed, d, k]))
            for method, filled in fills(observed & ~hidden).items():
                scores[kind].setdefault(method, []).append(errors(values, filled, hidden)[0])
    return {kind: {m: np.nanmean(np.stack(v), axis=0) for m, v in by_method.items()}
            for kind, by_method in scores.items()}


def choose(scores: dict[str, dict[str, np.ndarray]],
           network: bool = True) -> dict[str, list[str]]:
    """{kind: [the method with the lowest MAE, per variable]} (the first of a tie, in the
    order the methods were scored: the network first). `network` False: the baseline
    with the lowest MAE over all the variables, for every variable (what a series too
    short to check gets: one choice from all its cells, less noisy than one a variable)."""
    out = {}
    for kind, by_method in scores.items():
        width = len(next(iter(by_method.values())))
        if network:
            out[kind] = [min(by_method, key=lambda m, f=f: by_method[m][f])
                         for f in range(width)]
        else:
            best = min((m for m in by_method if m != "model"),
                       key=lambda m: float(np.nanmean(by_method[m])))
            out[kind] = [best] * width
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


def table(scores: dict[str, dict[str, np.ndarray]], chosen: dict[str, list[str]],
          columns: list[str], std: np.ndarray, gaps: dict[str, np.ndarray] | None = None
          ) -> str:
    """The short table of what fills each variable and kind, its MAE on the check (in the
    data's units) and by how much it won: over linear interpolation and over the runner
    up. `gaps` (kind: (T, F) bool) adds how many missing cells each row fills."""
    lines = [f"{'variable':<16} {'gaps':<6} {'cells':>6}  {'uses':<16} {'MAE':>10}  "
             f"{'/ linear':>8}  runner-up"]
    for kind, by_method in scores.items():
        for f, name in enumerate(columns):
            used = chosen[kind][f]
            mae = {m: v[f] * std[f] for m, v in by_method.items()}
            second = min((m for m in mae if m != used), key=mae.get)
            cells = "" if gaps is None else str(int(gaps[kind][:, f].sum()))
            lines.append(f"{name[:16]:<16} {kind:<6} {cells:>6}  {used:<16} {mae[used]:>10.4g}"
                         f"  {mae[used] / mae['linear']:>8.3f}  {second} {mae[second]:.4g}")
    return "\n".join(lines)


def as_json(scores: dict[str, dict[str, np.ndarray]], chosen: dict[str, list[str]],
            columns: list[str]) -> dict:
    """{variable: {kind: {"method": chosen, "mae": {method: standardised MAE}}}}."""
    return {name: {kind: {"method": chosen[kind][f],
                          "mae": {m: float(v[f]) for m, v in scores[kind].items()}}
                   for kind in scores}
            for f, name in enumerate(columns)}


# ---- the check train.py records: made on the validation rows, scored on the test draws

def every_fill(imputer: Imputer, data: Data, window: int, rows: np.ndarray,
               median: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
    """{method: filled (T, F)} of data's `rows` seeing only `seen`: the network first,
    then every classical fill."""
    z, times = data.z[rows], data.times[rows]
    season = data.season[rows] if data.profile is not None else None
    model = impute(imputer, z[None], seen[None], data.extra[rows][None],
                   data.season[rows][None], data.low, window, times[None])[0]
    return {"model": model, **classical_fills(z, seen, median, season, times)}


def on_validation(imputer: Imputer, data: Data, window: int, median: np.ndarray,
                  seed: int) -> tuple[dict, dict[str, list[str]], dict[str, list[str]]]:
    """The check on the validation rows -> (scores, chosen, fallback), as fill.py makes
    it: rows too few to check get the best baseline, as a short file does."""
    rows = data.parts["val"]

    def fills(seen: np.ndarray) -> dict[str, np.ndarray]:
        return every_fill(imputer, data, window, rows, median, seen)

    scores = check(fills, data.z[rows], data.observed[rows], data.table.step, seed)
    fallback = choose(scores, network=False)
    if not checkable(data.observed[rows], data.table.step):
        print(f"fill's check: the {len(rows)} validation rows are too few to check on; "
              "fill falls back to the best baseline, as on a short file")
        return scores, fallback, fallback
    return scores, choose(scores), fallback


def on_test(imputer: Imputer, data: Data, window: int, median: np.ndarray,
            chosen: dict[str, list[str]]) -> list[dict[str, np.ndarray]]:
    """What fill.py would write on the test rows under each draw: the chosen method per
    variable and gap kind."""
    rows, out = data.parts["test"], []
    for masks in data.test_masks:
        by_pattern = {}
        for p in PATTERNS:
            seen = data.observed[rows] & ~masks[p]
            fills = every_fill(imputer, data, window, rows, median, seen)
            by_pattern[p] = combine(fills, chosen, gap_kinds(seen, data.table.step))
        out.append(by_pattern)
    return out
