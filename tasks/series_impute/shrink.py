"""How much of its correction the trained network keeps, and toward which classical fill it
gives up the rest, per variable and gap kind, chosen on the validation rows: on a file
where the correction does not help (a short file, a noise no window can learn), the
network gives back linear interpolation or the seasonal fill, whichever does better there,
rather than a worse fill of its own.

The network imputes linear + correction (model.py). After training it can keep a share k
of that correction and give the rest to a classical fill B, linear interpolation L or the
seasonal fill with its local offset S (the same as the baselines'):

    imputed = B + k * (network - B)            k in SHARES, B in {L, S}

The validation rows are hidden under several draws of the three patterns; the network
fills them, and so do L and S (the network with k = 0), and for each variable and gap kind
(short or long, as fill's check counts them: choose.gap_kinds) the (B, k) whose blend has
the lowest MAE on those cells is what the network keeps, in the test scores, in model.pt
and in fill. L comes first, so S replaces it only where it is better. A variable and kind
with no hidden cell keep all of the correction, and a network that gives a value that is
not finite keeps none. A gap is short below the training file's shortest hidden block
(model.pt keeps it); fill's check and table count with the blocks of the file it fills,
which differ from it when that file is under or over data.SHORT_ROWS and the training one
is not, but what the check scores is what the network writes either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .choose import KINDS, draws, gap_kinds
from .data import PATTERNS, Data, fixed_masks
from .evaluate import impute_split
from .model import Imputer

if TYPE_CHECKING:  # train.py imports this module
    from .train import Config

SHARES = np.linspace(0.0, 1.0, 11)  # the kept shares tried: 0 (the classical fill) to 1
SEED_OFFSET = 1000  # the draws' mask seeds, --mask-seed + this + d: not the epoch's draw


def fit_shrink(cfg: Config, data: Data, imputer: Imputer) -> tuple[np.ndarray, np.ndarray]:
    """Set the imputer's kept shares and classical fills (each (2, F): short, long gaps;
    toward 0 linear, 1 seasonal) from the validation rows, and the gap from which one is
    long (the shortest hidden block); return the shares and fills."""
    rows = data.parts["val"]
    masks = [fixed_masks(data.observed[rows], "val", data.sizes.blocks,
                         cfg.mask_seed + SEED_OFFSET + d) for d in range(draws(len(rows)))]
    imputer.short_gap.fill_(data.sizes.blocks[0])
    bases = (0.0, 1.0) if data.profile is not None else (0.0,)  # no cycle: S is L
    filled = {}
    for share, base in [(1.0, 0.0), *((0.0, b) for b in bases)]:
        imputer.shrink.fill_(share)
        imputer.toward.fill_(base)
        by_draw = impute_split(cfg, imputer, data, "val", masks)
        filled[share, base] = [d[p] for d in by_draw for p in PATTERNS]
    truth, observed = data.truth("val"), data.observed[rows]
    hidden = [mask[p] for mask in masks for p in PATTERNS]
    kept, toward = np.ones((len(KINDS), truth.shape[1])), np.zeros((len(KINDS), truth.shape[1]))
    for k, kind in enumerate(KINDS):
        cells = [h & gap_kinds(observed & ~h, data.sizes.blocks)[kind] for h in hidden]
        for f in range(truth.shape[1]):
            network = on_cells(filled[1.0, 0.0], cells, f)
            truths = on_cells([truth] * len(cells), cells, f)
            best = np.inf
            shares = SHARES if np.isfinite(network).all() else SHARES[:1]
            for base in bases if len(network) else ():
                classical = on_cells(filled[0.0, base], cells, f)
                for share in shares:  # the blend B + share * (network - B)
                    blend = classical + share * (network - classical) if share else classical
                    mae = np.abs(blend - truths).mean()
                    if mae < best:
                        best, kept[k, f], toward[k, f] = mae, share, base
    imputer.shrink.copy_(torch.tensor(kept, dtype=imputer.shrink.dtype))
    imputer.toward.copy_(torch.tensor(toward, dtype=imputer.toward.dtype))
    return kept, toward


def on_cells(fills: list[np.ndarray], cells: list[np.ndarray], f: int) -> np.ndarray:
    """Variable f's values of each fill (T, F) on its cells (T, F), end to end."""
    return np.concatenate([a[c[:, f], f] for a, c in zip(fills, cells, strict=True)])


def describe_kept(columns: list[str], kept: np.ndarray, toward: np.ndarray) -> str:
    """One line, "a short 0.3 (rest linear), long 1.0; b ..." for variables a, b, ..."""
    return "; ".join(f"{column} " + ", ".join(
        f"{kind} {kept[k, f]:.1f}" + (f" (rest {('linear', 'seasonal')[int(toward[k, f])]})"
                                      if kept[k, f] < 1 else "")
        for k, kind in enumerate(KINDS)) for f, column in enumerate(columns))


def as_json(columns: list[str], kept: np.ndarray, toward: np.ndarray) -> dict:
    """{column: {kind: {"kept": share, "rest": "linear", "seasonal" or "none"}}} for
    metrics.json."""
    return {column: {kind: {"kept": round(float(kept[k, f]), 2),
                            "rest": ("linear", "seasonal")[int(toward[k, f])]
                            if kept[k, f] < 1 else "none"}
                     for k, kind in enumerate(KINDS)} for f, column in enumerate(columns)}
