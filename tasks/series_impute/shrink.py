"""How much of its correction of linear interpolation the trained network keeps, per
variable and gap kind, chosen on the validation rows: on a file where the correction does
not help (a short file, a noise no window can learn), the network gives interpolation back
rather than a worse fill.

The network imputes linear + kept * sigma * correction (model.py), where kept is 1 while
it trains. After training, the validation rows are hidden under several draws of the three
patterns; the network fills them with all of its correction and with none (linear
interpolation, as the window sees it), and for each variable and gap kind (short or long,
as fill's check counts them: choose.gap_kinds) the kept share in SHARES whose blend has
the lowest MAE on those cells is the one the network keeps, in the test scores, in
model.pt and in fill. A variable and kind with no hidden cell keep all of it.
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

SHARES = np.linspace(0.0, 1.0, 11)  # the kept shares tried: 0 (linear) to 1 (the network)
SEED_OFFSET = 1000  # the draws' mask seeds: --mask-seed + this + d, none the test's


def fit_shrink(cfg: Config, data: Data, imputer: Imputer) -> np.ndarray:
    """Set the imputer's kept shares (2, F) (short, long gaps) from the validation rows,
    and return them."""
    rows = data.parts["val"]
    masks = [fixed_masks(data.observed[rows], "val", data.sizes.blocks,
                         cfg.mask_seed + SEED_OFFSET + d) for d in range(draws(len(rows)))]
    imputer.short_gap.fill_(data.sizes.blocks[0])
    filled = {}
    for share in (1.0, 0.0):
        imputer.shrink.fill_(share)
        filled[share] = impute_split(cfg, imputer, data, "val", masks)
    truth, observed = data.truth("val"), data.observed[rows]
    network = [by_pattern[p] for by_pattern in filled[1.0] for p in PATTERNS]
    linear = [by_pattern[p] for by_pattern in filled[0.0] for p in PATTERNS]
    hidden = [mask[p] for mask in masks for p in PATTERNS]
    kept = np.ones((len(KINDS), truth.shape[1]))
    for k, kind in enumerate(KINDS):
        cells = [h & gap_kinds(observed & ~h, data.sizes.blocks)[kind] for h in hidden]
        for f in range(truth.shape[1]):
            # on those cells: linear's error, and how far the network moves from it
            pairs = list(zip(network, linear, cells, strict=True))
            error = np.concatenate([(a - truth)[c[:, f], f] for _, a, c in pairs])
            move = np.concatenate([(n - a)[c[:, f], f] for n, a, c in pairs])
            if len(error):
                kept[k, f] = SHARES[np.argmin([np.abs(error + share * move).mean()
                                               for share in SHARES])]
    imputer.shrink.copy_(torch.tensor(kept, dtype=imputer.shrink.dtype))
    return kept
