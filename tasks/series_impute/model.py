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
its own weights walks the rows backwards; the imputation is the mean of the two c_hat.

Kept from BRITS: the history and feature regressions and their learned mix, the decay of
the state and of the mix over the time since a variable was seen, the estimate fed back
into the cell, the two directions and the consistency loss between them, the loss on
every seen entry. Changed: a GRU cell instead of an LSTM; the main loss is on entries
hidden on purpose with fresh masks every epoch (SAITS's "masked imputation task");
optionally each row's place in its day or year (sin, cos) as an extra input (--calendar);
the final imputation is clipped to the training range; no classification head and no
time stamps other than one row per step.

Shapes: B windows, T rows, F variables, H hidden units, E calendar features (0 or 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core import model_file
from core.cells import GRUCell
from core.layers import recurrent


def time_gaps(seen: np.ndarray) -> np.ndarray:
    """seen (B, T, F) bool -> delta (B, T, F): steps since each variable was last seen
    before row t (BRITS's delta_t; 0 at the first row):

        seen     1 0 0 1 1
        delta    0 1 2 3 1
    """
    delta = np.zeros(seen.shape, dtype=np.float32)
    for t in range(1, seen.shape[1]):
        delta[:, t] = 1 + np.where(seen[:, t - 1], 0, delta[:, t - 1])
    return delta


class Direction(nn.Module):
    """One recurrent imputer (RITS) walking its input in the order given."""

    def __init__(self, input_size: int, hidden_size: int, extra_size: int, impl: str) -> None:
        super().__init__()
        features = input_size
        self.decay_h = nn.Linear(features, hidden_size)
        self.decay_x_weight = nn.Parameter(torch.zeros(features))  # diagonal of W_gx
        self.decay_x_bias = nn.Parameter(torch.zeros(features))
        self.history = nn.Linear(hidden_size, features)
        self.feature = nn.Linear(features, features)
        self.register_buffer("off_diagonal", 1 - torch.eye(features), persistent=False)
        self.combine = nn.Linear(2 * features, features)
        cell = nn.GRUCell if impl == "torch" else GRUCell
        self.cell = cell(2 * features + extra_size, hidden_size)

    def forward(self, x: Tensor, m: Tensor, delta: Tensor,
                extra: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x, m, delta (B, T, F), extra (B, T, E) -> x_hat, z_hat, c_hat, each (B, T, F)."""
        # Everything that depends on the gaps and masks only, for all T steps at once.
        gamma_h = torch.exp(-torch.relu(self.decay_h(delta)))                     # (B, T, H)
        gamma_x = torch.exp(-torch.relu(delta * self.decay_x_weight + self.decay_x_bias))
        beta = torch.sigmoid(self.combine(torch.cat([gamma_x, m], dim=-1)))     # (B, T, F)
        weight_z = self.feature.weight * self.off_diagonal  # z_hat[f] never reads x[f]
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        # unbind, not x[:, t]: each index's gradient would be a full (B, T, F) of zeros
        steps = zip(x.unbind(1), m.unbind(1), gamma_h.unbind(1), beta.unbind(1),
                    extra.unbind(1), strict=True)
        x_hats, z_hats, c_hats = [], [], []
        for x_t, m_t, gamma_t, beta_t, extra_t in steps:
            h = h * gamma_t
            x_hat = self.history(h)
            x_c = m_t * x_t + (1 - m_t) * x_hat
            z_hat = nn.functional.linear(x_c, weight_z, self.feature.bias)
            c_hat = beta_t * z_hat + (1 - beta_t) * x_hat
            c_c = m_t * x_t + (1 - m_t) * c_hat
            h = self.cell(torch.cat([c_c, m_t, extra_t], dim=-1), h)
            x_hats.append(x_hat)
            z_hats.append(z_hat)
            c_hats.append(c_hat)
        return torch.stack(x_hats, 1), torch.stack(z_hats, 1), torch.stack(c_hats, 1)


class Imputer(nn.Module):
    """Two RITS, one per direction. forward -> the estimates of every row from each
    direction, and their mean, the imputation."""

    def __init__(self, input_size: int, hidden_size: int, extra_size: int, impl: str) -> None:
        super().__init__()
        self.config = {"input_size": input_size, "hidden_size": hidden_size,
                       "extra_size": extra_size, "impl": impl}
        self.forwards = Direction(input_size, hidden_size, extra_size, impl)
        self.backwards = Direction(input_size, hidden_size, extra_size, impl)

    def forward(self, x: Tensor, m: Tensor, extra: Tensor) -> dict[str, Any]:
        """x (B, T, F) with zeros where not seen, m (B, T, F) 1.0 where seen, extra
        (B, T, E) -> {"forwards": (x_hat, z_hat, c_hat), "backwards": (...), "imputed":
        (B, T, F), the mean of the two c_hat}."""
        seen = m.detach().cpu().numpy() > 0
        delta_f = torch.from_numpy(time_gaps(seen)).to(x.device)
        delta_b = torch.from_numpy(time_gaps(seen[:, ::-1].copy())).to(x.device)
        forwards = self.forwards(x, m, delta_f, extra)
        flip = [1]  # the backward direction reads the rows last to first
        backwards = self.backwards(x.flip(flip), m.flip(flip), delta_b, extra.flip(flip))
        backwards = tuple(e.flip(flip) for e in backwards)
        return {"forwards": forwards, "backwards": backwards,
                "imputed": (forwards[2] + backwards[2]) / 2}


def as_inputs(values: np.ndarray, seen: np.ndarray, extra: np.ndarray,
              device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """values (B, T, F) standardised, seen (B, T, F) bool, extra (B, T, E) -> x, m, extra
    tensors. x is 0 wherever not seen, *chosen* rather than multiplied (m * x would turn
    a NaN or a huge number in a hidden cell into NaN), so the model never reads a hidden
    value."""
    x = np.where(seen, values, 0.0)
    return tuple(torch.tensor(a, dtype=torch.float32, device=device)
                 for a in (x, seen, extra))


def impute(model: Imputer, values: np.ndarray, seen: np.ndarray, extra: np.ndarray,
           low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """values (B, T, F) standardised (anything where not seen) -> the same with every
    unseen entry replaced by the model's estimate, clipped to [low, high] (F,): the
    training range, so no rain below zero."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        estimate = model(*as_inputs(values, seen, extra, device))["imputed"]
    estimate = np.clip(estimate.cpu().numpy().astype(np.float64), low, high)
    return np.where(seen, values, estimate)


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


class Model(nn.Module):
    """What the training loop trains and checkpoints: the imputer, and with --adversarial
    its discriminator (trained in the same loop, on its own loss)."""

    def __init__(self, imputer: Imputer, discriminator: Discriminator | None) -> None:
        super().__init__()
        self.imputer = imputer
        self.discriminator = discriminator


# ---- model.pt: what fill.py needs, tensors, strings and numbers only (no pickled code)

SAVED = ("model", "config", "columns", "date_columns", "step", "calendar", "mean", "std",
         "low", "high")


def save_model(path: Path, imputer: Imputer, **metadata: Any) -> None:
    """The imputer's weights and config, with `metadata`: columns, date_columns, step
    (its label, "1 day"), calendar (bool), the scaler's mean and std and the clipping
    range low and high, as lists; checksummed (core.model_file)."""
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
