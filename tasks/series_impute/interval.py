"""How far each filled cell can be trusted: a split-conformal interval, calibrated on
fill's own check (choose.py).

The check hides observed cells of the file and fills them as fill would; the absolute
errors there are the calibration scores. A filled cell's interval is its value plus or
minus the conformal quantile of the scores of its group: its variable, its gap's kind
(short or long, as choose.gap_kinds: a cell beside a reading at the edge of a long gap is
harder than a lone missing one), and its distance in rows to the nearest observed value
of that variable (the middle of a long gap is harder than its edge):

    distance   1   2-3   4-7   8+ rows          (BINS: each bin's least distance)

With n scores in a group, the quantile is the ceil((n + 1) * level)-th smallest, the
finite-sample correction that makes the interval cover a new cell with probability at
least `level`, if that cell and the group's check cells are exchangeable (Vovk et al.
2005; Lei et al. 2018), within each group (Mondrian conformal). That is a marginal
promise, over the cells of a group, not one for each cell. It does not hold where the
real gaps differ from what the check hid: gaps longer than any hidden block (those cells
get the widest group's quantile and a warning, since it may be too narrow), or a series
that changes regime where the gaps are. A group with fewer than FEWEST scores borrows
those of harder cells of its variable (farther, then in long gaps too: wider, so still
safe), then all of its variable's, then the same of every variable's (the scores are in
standardised units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.config import UserError

LEVEL = 0.9            # the level train.py measures the interval's coverage at
BINS = (1, 2, 4, 8)    # distance bins: 1, 2-3, 4-7, 8+ rows to the nearest observed value
FEWEST = 30            # a group's scores, at least, or it borrows (see the docstring)


def distance(seen: np.ndarray) -> np.ndarray:
    """seen (T, F) bool -> (T, F): rows to the nearest seen row of the same variable (0
    where seen; T where the variable has none)."""
    rows = len(seen)
    t = np.arange(rows)[:, None]
    last = np.maximum.accumulate(np.where(seen, t, -rows), axis=0)
    following = np.minimum.accumulate(np.where(seen, t, 2 * rows)[::-1], axis=0)[::-1]
    return np.minimum(np.minimum(t - last, following - t), rows)


def bin_of(d: np.ndarray) -> np.ndarray:
    """Each distance's bin, 0 .. len(BINS) - 1."""
    return np.searchsorted(BINS, d, side="right") - 1


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest of n scores; inf where n is too few."""
    k = math.ceil((len(scores) + 1) * level)
    return float(np.sort(scores)[k - 1]) if k <= len(scores) else math.inf


@dataclass
class Calibration:
    """Per variable, gap kind (short, long) and distance bin, the quantile of the
    absolute errors (F, 2, len(BINS)), standardised; `reach` (F,): the farthest distance a
    check cell had."""
    quantile: np.ndarray
    reach: np.ndarray


def calibrate(errors: np.ndarray, variable: np.ndarray, long: np.ndarray, d: np.ndarray,
              width: int, level: float) -> Calibration:
    """errors, variable, long, d (N,): the check cells' absolute errors, their variable,
    whether their gap is long, and their distance -> each group's quantile, a group with
    fewer than FEWEST scores (or too few for `level`) borrowing as the module's
    docstring says."""
    fewest = max(FEWEST, math.ceil(level / (1 - level)))
    if len(errors) < fewest:
        raise UserError(f"--interval {level:g} needs {fewest} check cells to calibrate on; "
                        f"the check hid only {len(errors)}: lower the level")
    errors = np.where(np.isnan(errors), math.inf, errors)  # no finite value: no bound
    bins, kind = bin_of(d), long.astype(int)
    quantile = np.full((width, 2, len(BINS)), math.inf)
    for f in range(width):
        for k in range(2):
            for b in range(len(BINS)):
                harder = [(kind == k) & (bins == b), (kind == k) & (bins >= b),
                          (kind >= k) & (bins >= b), np.ones(len(errors), bool)]
                for where in [(variable == f) & h for h in harder] + harder:
                    if where.sum() >= fewest:
                        quantile[f, k, b] = conformal_quantile(errors[where], level)
                        break
    # a variable with no check cell of its own reaches as far as the others' did
    reach = np.array([d[variable == f].max() if (variable == f).any() else d.max(initial=0)
                      for f in range(width)])
    return Calibration(quantile, reach)


def half_width(calibration: Calibration, seen: np.ndarray, long: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """seen, long (T, F): seen cells, and unseen ones in long gaps -> the interval's
    half-width at every unseen cell (T, F), standardised (0 where seen), and the unseen
    cells farther from a seen value than any the check hid (given their variable's
    widest quantile)."""
    d = distance(seen)
    f = np.broadcast_to(np.arange(seen.shape[1]), seen.shape)
    half = calibration.quantile[f, long.astype(int), bin_of(np.maximum(d, 1))]
    beyond = ~seen & (d > calibration.reach)
    half = np.where(beyond, calibration.quantile.max(axis=(1, 2))[None, :], half)
    return np.where(seen, 0.0, half), beyond
