"""The bidirectional recurrent imputer (after BRITS, Cao et al. 2018), GAIN's discriminator
for --adversarial, the inputs both read, and model.pt, the file fill.py loads.

One direction (BRITS's "RITS") walks the rows in order. At step t it has the values x_t
(F variables, standardised; 0 where not seen), the mask m_t (1 where seen) and delta_t,
the steps since each variable was last seen. Before reading row t it estimates all of it:

    gamma_h = exp(-relu(W_gh delta_t + b_gh))         the state fades over long gaps
    h       = gamma_h * h
    x_hat   = W_x h + b_x                             history: the estimate from the past
    x_c     = m * x + (1 - m) * x_hat                 seen values where there are some
    z_hat   = W_z x_c + b_z,  diag(W_z) = 0           features: each variable from the
                                                      others at t (never from itself)
    gamma_x = exp(-relu(w_gx * delta_t + b_gx))       per variable (a diagonal W)
    beta    = sigmoid(W_b [gamma_x, m] + b_b)         trust features or history
    c_hat   = beta * z_hat + (1 - beta) * x_hat       the direction's estimate of row t
    c_c     = m * x + (1 - m) * c_hat
    h       = GRUCell([c_c, m, calendar_t], h)        the estimate is fed back

so a recurrent *cell* is stepped in a loop (nn.GRUCell or core.cells.GRUCell, --impl):
a whole-sequence layer cannot feed each step's estimate into the next. A second RITS with
its own weights walks the rows backwards.

At home on any level and trend: each window is normalised by its own seen values before
the cells read it, and the estimates are scaled back on the way out (reversible instance
normalisation, Kim et al. 2022, "RevIN"), and the imputation is a learned *correction* to
a classical fill, never a value from scratch:

    mu, sigma  = mean and std of the window's seen values, per variable
    L          = linear interpolation in time of the seen values
    S          = season + linear interpolation of (x - season): the seasonal fill with
                 its local offset (= L for rows with no cycle, where season = 0)
    imputed    = L + sigma * head([c_hat_f - L, c_hat_b - L, S - L] / sigma, gaps, m)

The head's last layer starts at zero, so a network that has learned nothing gives linear
interpolation, not the mean; and shifting a window by c (or scaling it by a) shifts (or
scales) every estimate alike: a level or a trend the training rows never reached is no
harder than one they did. Nothing is clipped to the training range; a variable never
below zero in the training rows (rain) is kept at zero or above. Once trained, the network
keeps a share k of its correction per variable and gap kind and gives the rest to a
classical fill B, L or S, both chosen on validation (shrink.py): B + k * (imputed - B).

Kept from BRITS: the history and feature regressions and their learned mix, the decay of
the state and of the mix over the time since a variable was seen, the estimate fed back
into the cell, the two directions and the consistency loss between them, the loss on
every seen entry. Changed: a GRU cell instead of an LSTM; the main loss is on entries
hidden on purpose with fresh masks every epoch (SAITS's "masked imputation task");
optionally each row's place in its day or year (sin, cos) as an extra input (--calendar);
the window's own normalisation and the
correction of a classical fill above; no classification head. delta_t and L read each
row's time: its row number in a regular series, its own time in an irregular one (rows at
any times), where --cell also chooses how delta reaches the state (Direction: BRITS's
decay above, none with delta a plain input, or core.cells.GRUICell's decay). A series
longer than the training window is imputed in overlapping windows of that length
(`impute`), as it was trained.

Shapes: B windows, T rows, F variables, H hidden units, E calendar features (0 or 2).
"""

from __future__ import annotations

from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core import model_file
from core.cells import GRUCell, GRUICell
from core.layers import recurrent

from .baselines import fill_linear, fill_seasonal


def time_gaps(seen: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """seen (B, T, F) bool, times (B, T) rising (None: rows 0, 1, 2, ...) -> delta
    (B, T, F): the time since each variable was last seen before row t (BRITS's delta_t;
    0 at the first row). BRITS's example, rows at times 0, 2, 7, 9, 14:

        seen     1 0 0 1 1        rows (times None)    0 1 2 3 1
                                  times 0 2 7 9 14     0 2 7 9 5
    """
    step = (np.ones(seen.shape[:2]) if times is None
            else np.diff(times, axis=1, prepend=times[:, :1]))         # (B, T): t - (t-1)
    step = step[..., None].astype(np.float32)
    delta = np.zeros(seen.shape, dtype=np.float32)
    for t in range(1, seen.shape[1]):
        delta[:, t] = step[:, t] + np.where(seen[:, t - 1], 0, delta[:, t - 1])
    return delta


def interpolate(values: np.ndarray, seen: np.ndarray, times: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """values, seen (B, T, F), times (B, T) rising (None: rows 0, 1, 2, ...) -> linear
    interpolation in time between the nearest seen rows (flat beyond the first and last,
    0 where a variable is never seen), and each row's time since the nearest seen row
    before it and until the one after it (the window's span plus one row's worth, T for
    rows, where there is none):

        times     0 1 2 3       seen 1 0 0 1     values 1 . . 4
        filled    1 2 3 4       before 0 1 2 0   after 0 2 1 0
        times     0 1 4 6       filled 1 1.5 3 4
    """
    rows = values.shape[1]
    t = np.arange(rows)[None, :, None]
    clock = t if times is None else np.asarray(times, dtype=np.float64)[..., None]
    clock = np.broadcast_to(clock, values.shape)                                # (B, T, F)
    values = np.where(seen, values, 0.0)
    last = np.maximum.accumulate(np.where(seen, t, -1), axis=1)
    following = np.minimum.accumulate(np.where(seen, t, rows)[:, ::-1], axis=1)[:, ::-1]
    has_last, has_next = last >= 0, following < rows
    before = np.take_along_axis(values, np.clip(last, 0, rows - 1), 1)
    after = np.take_along_axis(values, np.clip(following, 0, rows - 1), 1)
    if times is None:  # the rows' own arithmetic, so a regular series keeps its numbers
        share = (t - last) / np.maximum(following - last, 1)
        since, until, span = t - last, following - t, rows
    else:
        at_last = np.take_along_axis(clock, np.clip(last, 0, rows - 1), 1)
        at_next = np.take_along_axis(clock, np.clip(following, 0, rows - 1), 1)
        # between two seen rows only (never 0 / 0 where a variable has none)
        share = (clock - at_last) / np.where(has_last & has_next & (following > last),
                                             at_next - at_last, 1.0)
        since, until = clock - at_last, at_next - clock
        # T rows' worth of time: the first to the last row, and one mean gap more
        span = ((clock[:, -1:] - clock[:, :1]) * rows / (rows - 1) if rows > 1
                else np.ones(clock[:, :1].shape))
    filled = np.where(has_last & has_next, before + share * (after - before),
                      np.where(has_last, before, np.where(has_next, after, 0.0)))
    return (filled, np.where(has_last, since, span).astype(np.float64),
            np.where(has_next, until, span).astype(np.float64))


def gap_rows(seen: np.ndarray) -> np.ndarray:
    """seen (B, T, F) bool -> (B, T, F): the rows of the run of unseen cells each unseen
    cell sits in, cut at the window's ends (-1 where seen):

        seen  0 0 1 0 1 0 0 0     rows  2 2 -1 1 -1 3 3 3
    """
    t = np.arange(seen.shape[1])[None, :, None]
    last = np.maximum.accumulate(np.where(seen, t, -1), axis=1)
    following = np.minimum.accumulate(np.where(seen, t, seen.shape[1])[:, ::-1], axis=1)
    return following[:, ::-1] - last - 1


CELLS = ("brits", "gru", "grui")  # how the time since a variable was seen reaches the state


class Direction(nn.Module):
    """One recurrent imputer (RITS) walking its input in the order given. `cell` says how
    the time since each variable was seen, delta, reaches the recurrent state:

        brits  BRITS's decay of the state before each step, h <- gamma_h * h (so the
               history regression reads the decayed state), then a GRU cell on
               [c_c, m, calendar] (the network of a regular series, unchanged)
        gru    no decay: a GRU cell on [c_c, m, log(1 + delta), calendar], the gaps a
               plain input like any other
        grui   core.cells.GRUICell on [c_c, m, calendar]: the cell decays the state by
               delta before its GRU step (Luo et al. 2018); each input's delta is its
               variable's (a calendar feature is always seen: 0)

    In all three, delta also sets how far the step trusts the feature regression over the
    history regression (gamma_x, beta below): that is the mix, not the state.
    """

    def __init__(self, input_size: int, hidden_size: int, extra_size: int, impl: str,
                 cell: str = "brits") -> None:
        super().__init__()
        features = input_size
        self.kind = cell
        if cell == "brits":
            self.decay_h = nn.Linear(features, hidden_size)
        self.decay_x_weight = nn.Parameter(torch.zeros(features))  # diagonal of W_gx
        self.decay_x_bias = nn.Parameter(torch.zeros(features))
        self.history = nn.Linear(hidden_size, features)
        self.feature = nn.Linear(features, features)
        self.register_buffer("off_diagonal", 1 - torch.eye(features), persistent=False)
        self.combine = nn.Linear(2 * features, features)
        if cell == "grui":  # torch has no GRUI: core's, whatever --impl says
            self.cell = GRUICell(2 * features + extra_size, hidden_size)
        else:
            gru = nn.GRUCell if impl == "torch" else GRUCell
            gaps = features if cell == "gru" else 0
            self.cell = gru(2 * features + gaps + extra_size, hidden_size)

    def forward(self, x: Tensor, m: Tensor, delta: Tensor,
                extra: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x, m, delta (B, T, F), extra (B, T, E) -> x_hat, z_hat, c_hat, each (B, T, F)."""
        # Everything that depends on the gaps and masks only, for all T steps at once.
        T = x.shape[1]
        gamma_h = (torch.exp(-torch.relu(self.decay_h(delta))).unbind(1)      # (B, T, H)
                   if self.kind == "brits" else [None] * T)  # the others: no decay here
        gamma_x = torch.exp(-torch.relu(delta * self.decay_x_weight + self.decay_x_bias))
        beta = torch.sigmoid(self.combine(torch.cat([gamma_x, m], dim=-1)))     # (B, T, F)
        # grui: each input's time since seen (B, T, 2F + E): c_c's and m's the variable's,
        # the calendar's 0 (always known)
        cell_delta = (torch.cat([delta, delta, torch.zeros_like(extra)], dim=-1).unbind(1)
                      if self.kind == "grui" else [None] * T)
        if self.kind == "gru":  # the gaps a plain input, beside the values and the mask
            extra = torch.cat([torch.log1p(delta), extra], dim=-1)           # (B, T, F + E)
        weight_z = self.feature.weight * self.off_diagonal  # z_hat[f] never reads x[f]
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        # unbind, not x[:, t]: each index's gradient would be a full (B, T, F) of zeros
        steps = zip(x.unbind(1), m.unbind(1), gamma_h, beta.unbind(1), extra.unbind(1),
                    cell_delta, strict=True)
        x_hats, z_hats, c_hats = [], [], []
        for x_t, m_t, gamma_t, beta_t, extra_t, delta_t in steps:
            if gamma_t is not None:
                h = h * gamma_t
            x_hat = self.history(h)
            x_c = m_t * x_t + (1 - m_t) * x_hat
            z_hat = nn.functional.linear(x_c, weight_z, self.feature.bias)
            c_hat = beta_t * z_hat + (1 - beta_t) * x_hat
            c_c = m_t * x_t + (1 - m_t) * c_hat
            step_input = torch.cat([c_c, m_t, extra_t], dim=-1)
            h = (self.cell(step_input, h) if delta_t is None
                 else self.cell(step_input, delta_t, h))
            x_hats.append(x_hat)
            z_hats.append(z_hat)
            c_hats.append(c_hat)
        return torch.stack(x_hats, 1), torch.stack(z_hats, 1), torch.stack(c_hats, 1)


HEAD_SIZE = 32     # hidden units of the correction head
SMALLEST_STD = 1e-3  # a window's sigma floor (standardised units): one seen value, or flat


class Imputer(nn.Module):
    """Two RITS, one per direction, on the window normalised by its own seen values, and
    the head that corrects the classical fill from their estimates. forward -> every
    estimate and the imputation, in the units of the input. `cell`: how the gaps reach
    the state (Direction; a model.pt saved before there was a choice is "brits")."""

    def __init__(self, input_size: int, hidden_size: int, extra_size: int, impl: str,
                 cell: str = "brits") -> None:
        super().__init__()
        self.config = {"input_size": input_size, "hidden_size": hidden_size,
                       "extra_size": extra_size, "impl": impl, "cell": cell}
        self.forwards = Direction(input_size, hidden_size, extra_size, impl, cell)
        self.backwards = Direction(input_size, hidden_size, extra_size, impl, cell)
        self.head = nn.Sequential(nn.Linear(6 * input_size, HEAD_SIZE), nn.ReLU(),
                                  nn.Linear(HEAD_SIZE, input_size))
        nn.init.zeros_(self.head[2].weight)  # untrained: the classical fill itself
        nn.init.zeros_(self.head[2].bias)
        # per gap kind (short, long) and variable: how much of the network's correction is
        # kept (1 while training), the classical fill the rest goes to (0: linear
        # interpolation, 1: the seasonal fill), and the gap (in rows) from which one is
        # long; chosen on the validation rows (shrink.py), saved in model.pt
        self.register_buffer("shrink", torch.ones(2, input_size))
        self.register_buffer("toward", torch.zeros(2, input_size))
        self.register_buffer("short_gap", torch.tensor(1))

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True,
                        assign: bool = False) -> Any:
        """torch's, but a state saved before the shrink (a model.pt, a checkpoint) keeps
        all of its correction: the buffers it lacks stay as they are."""
        kept = {name: getattr(self, name) for name in ("shrink", "toward", "short_gap")}
        return super().load_state_dict({**kept, **state_dict}, strict, assign)

    def forward(self, x: Tensor, m: Tensor, extra: Tensor, season: Tensor,
                times: Tensor | None = None) -> dict[str, Any]:
        """x (B, T, F) with zeros where not seen, m (B, T, F) 1.0 where seen, extra
        (B, T, E), season (B, T, F) the training season at each row (zeros: none), times
        (B, T) each row's time, rising (None: rows 0, 1, 2, ..., a regular series) ->
        {"forwards": (x_hat, z_hat, c_hat), "backwards": (...), "imputed": (B, T, F),
        "correction": (B, T, F) the network's kept correction, "mix": (B, T, F) the
        seasonal fill's share of the rest}: imputed = (1 - mix) * L + mix * S + correction."""
        seen = m.detach().cpu().numpy() > 0
        data = x.detach().cpu().numpy().astype(np.float64)
        cycle = season.detach().cpu().numpy().astype(np.float64)
        clock = None if times is None else times.detach().cpu().numpy().astype(np.float64)
        linear, before, after = interpolate(data, seen, clock)
        seasonal = cycle + interpolate(data - cycle, seen, clock)[0]
        as_tensor = partial(torch.tensor, dtype=x.dtype, device=x.device)
        linear, seasonal = as_tensor(linear), as_tensor(seasonal)
        gaps = torch.log1p(as_tensor(np.concatenate([before, after], axis=-1)))

        # RevIN: each window and variable by the mean and std of its seen values
        count = m.sum(1, keepdim=True)                                       # (B, 1, F)
        mu = (m * x).sum(1, keepdim=True) / count.clamp(min=1)
        sigma = ((m * (x - mu) ** 2).sum(1, keepdim=True) / count.clamp(min=1)).sqrt()
        sigma = sigma.clamp(min=SMALLEST_STD)
        x_n = m * (x - mu) / sigma

        # the backward direction's times run from its first row (the last) onwards
        backward_clock = None if clock is None else clock[:, -1:] - clock[:, ::-1]
        delta_f = torch.from_numpy(time_gaps(seen, clock)).to(x.device)
        delta_b = torch.from_numpy(time_gaps(seen[:, ::-1].copy(), backward_clock)).to(x.device)
        forwards = self.forwards(x_n, m, delta_f, extra)
        flip = [1]  # the backward direction reads the rows last to first
        backwards = self.backwards(x_n.flip(flip), m.flip(flip), delta_b, extra.flip(flip))
        backwards = tuple(e.flip(flip) for e in backwards)
        linear_n, seasonal_n = (linear - mu) / sigma, (seasonal - mu) / sigma
        correction = self.head(torch.cat([forwards[2] - linear_n, backwards[2] - linear_n,
                                          seasonal_n - linear_n, gaps, m], dim=-1))
        # a short gap (a run of unseen cells, counted in rows, as choose.gap_kinds counts
        # them) takes row 0 of shrink and toward, a long one row 1
        short = torch.from_numpy(gap_rows(seen) < self.short_gap.item()).to(x.device)
        kept = torch.where(short, self.shrink[0], self.shrink[1])
        mix = (1 - kept) * torch.where(short, self.toward[0], self.toward[1])
        correction = kept * sigma * correction
        back = lambda e: e * sigma + mu  # noqa: E731  (the window's own units again)
        return {"forwards": tuple(map(back, forwards)),
                "backwards": tuple(map(back, backwards)),
                "imputed": linear + mix * (seasonal - linear) + correction,
                "correction": correction, "mix": mix}


def as_inputs(values: np.ndarray, seen: np.ndarray, extra: np.ndarray, season: np.ndarray,
              device: torch.device | str = "cpu") -> tuple[Tensor, ...]:
    """values (B, T, F) standardised, seen (B, T, F) bool, extra (B, T, E), season
    (B, T, F) -> x, m, extra, season tensors. x is 0 wherever not seen, *chosen* rather
    than multiplied (m * x would turn a NaN or a huge number in a hidden cell into NaN),
    so the model never reads a hidden value."""
    x = np.where(seen, values, 0.0)
    return tuple(torch.tensor(a, dtype=torch.float32, device=device)
                 for a in (x, seen, extra, season))


def windows(rows: int, window: int) -> list[tuple[int, int, int, int]]:
    """Cover `rows` with windows of `window` rows, half overlapping: (start, end, keep
    from, keep to) each, where the kept parts tile 0..rows and each sits at least a
    quarter window from its window's inner edges:

        window 0  [0 ........ 8)          keeps 0..6
        window 1       [4 ........ 12)    keeps 6..12
    """
    if rows <= window:
        return [(0, rows, 0, rows)]
    starts = [*range(0, rows - window, window // 2), rows - window]
    cuts = [0, *((a + b + window) // 2 for a, b in pairwise(starts)), rows]
    return [(s, s + window, cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


IMPUTE_BATCH = 512  # windows per forward pass of impute: its memory, whatever the length


def impute(model: Imputer, values: np.ndarray, seen: np.ndarray, extra: np.ndarray,
           season: np.ndarray, low: np.ndarray, window: int,
           times: np.ndarray | None = None) -> np.ndarray:
    """values (B, T, F) standardised (anything where not seen) -> the same with every
    unseen entry replaced by the model's estimate, at least `low` (F,): -inf, or zero in
    standardised units for a variable never negative in training. A series longer than
    `window` rows is imputed in overlapping windows of that length, as the model trained;
    each row's estimate comes from the window where it sits most central. The B x windows
    pass through the network IMPUTE_BATCH at a time, so memory stays bounded however long
    the series. `times` (B, T): each row's time (None: a regular series, rows 0, 1, ...)."""
    device = next(model.parameters()).device
    model.eval()
    parts = windows(values.shape[1], window)
    pairs = [(b, part) for part in parts for b in range(values.shape[0])]
    whole = np.empty(values.shape)
    for first in range(0, len(pairs), IMPUTE_BATCH):
        chunk = pairs[first:first + IMPUTE_BATCH]
        inputs = [np.stack([a[b, start:end] for b, (start, end, _, _) in chunk])
                  for a in (values, seen, extra, season)]           # (chunk, T_w, ...)
        clock = None if times is None else torch.tensor(
            np.stack([times[b, start:end] for b, (start, end, _, _) in chunk]), device=device)
        with torch.no_grad():
            out = model(*as_inputs(*inputs, device=device), clock)
        # the baselines' own linear and seasonal fills of the values (float64), so a
        # network that keeps none of its correction (shrink.py) gives exactly one of them
        mix = out["mix"].cpu().numpy().astype(np.float64)
        estimate = out["correction"].cpu().numpy().astype(np.float64)   # (chunk, T_w, F)
        for i, (v, s, cycle, (b, (start, end, _, _))) in enumerate(
                zip(*inputs[:2], inputs[3], chunk, strict=True)):
            at = None if times is None else times[b, start:end]
            base = fill_linear(v, s, at)
            if mix[i].any():
                seasonal = fill_seasonal(v, s, cycle, np.ones(v.shape[1], bool), at)
                base = (1 - mix[i]) * base + mix[i] * seasonal
            estimate[i] += base
        for (b, (start, _, keep, stop)), rows in zip(chunk, estimate, strict=True):
            whole[b, keep:stop] = rows[keep - start:stop - start]
    # in place: on a long series, one (B, T, F) array rather than three at once
    np.maximum(whole, low, out=whole)
    np.copyto(whole, values, where=seen)
    return whole


class Discriminator(nn.Module):
    """GAIN's discriminator, recurrent: from the imputed series and the hint, the logit
    that each entry was seen (rather than imputed). (B, T, F) x 2 -> (B, T, F)."""

    def __init__(self, input_size: int, hidden_size: int, impl: str) -> None:
        super().__init__()
        self.rnn = recurrent("gru", impl, 2 * input_size, hidden_size, batch_first=True,
                             bidirectional=True)
        self.head = nn.Linear(2 * hidden_size, input_size)

    def forward(self, imputed: Tensor, hint: Tensor) -> Tensor:
        output, _ = self.rnn(torch.cat([imputed, hint], dim=-1))  # (B, T, 2H)
        return self.head(output)


def masked_mae(estimate: Tensor, target: Tensor, where: Tensor) -> Tensor:
    """The mean absolute error over the entries `where` of each window, then the mean
    over the windows: a mean over rows of the batch, so under torchrun the processes'
    slices average to the whole batch's loss exactly (core.distributed.shard)."""
    per_window = ((estimate - target).abs() * where).sum((1, 2))
    return (per_window / where.sum((1, 2)).clamp(min=1)).mean()


# ---- model.pt: what fill.py needs, tensors, strings and numbers only (no pickled code)

SAVED = ("model", "config", "columns", "date_columns", "step", "calendar", "mean", "std",
         "median", "nonnegative", "season", "window", "fallback")


def save_model(path: Path, imputer: Imputer, **metadata: Any) -> None:
    """The imputer's weights and config, with `metadata`: columns, date_columns, step
    (its label, "1 day"), calendar (bool), the scaler's mean and std, the training
    median (standardised), nonnegative (per variable: never below zero in training),
    season (the training profile, standardised, (period, F) as lists; [] for none) and
    window (rows per window the model reads) and fallback ({gap kind: [baseline per
    variable]}, what fill uses on a file too short to check); checksummed."""
    model_file.save(path, imputer, config=dict(imputer.config), **metadata)


def load_model(path: Path, train_command: str) -> tuple[Imputer, dict[str, Any]]:
    """The imputer save_model wrote (eval mode) and its metadata; a missing, changed or
    foreign file is one UserError naming `train_command`, which makes a new one."""
    saved = model_file.load(path, [k for k in SAVED if k != "model"],
                            "this task's model.pt", train_command)
    try:
        imputer = Imputer(**saved["config"])
        imputer.load_state_dict(saved["model"])
    except Exception as error:  # intact, but not what this version of the code builds
        raise model_file.rebuild_error(Path(path), error, train_command) from None
    return imputer.eval(), saved
