"""Recurrent cells written out in plain PyTorch: RNNCell, LSTMCell, GRUCell.

They keep torch.nn's parameter names, shapes, gate order, initialisation and call
signature, so `cell.load_state_dict(torch.nn.GRUCell(...).state_dict())` works and the
tests can check them against torch to 1e-5.

Each cell is split in two, because a layer runs many steps:
- the input projection `x W_ih^T + b_ih` does not depend on the previous state, so a
  layer computes it for every time step in one matmul (`project_input`);
- the `*_step` functions below take that projection for one step and apply the update
  equations with the recurrent weights.

core.layers runs the GRU and RNN layers on these steps; its LSTM layer runs the same
equations in `LSTMThroughTime`, whose backward through time is written out for speed.

Shapes: B batch, I input size, H hidden size, G gates * H.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def project_input(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None,
                  bias_hh: Tensor | None = None) -> Tensor:
    """x (..., I) -> x W_ih^T + b_ih (+ b_hh) (..., G), for all steps at once.

    Pass b_hh where it is only added to the pre-activation (RNN, LSTM): it is then added
    once for the whole sequence instead of at every step, and its gradient is one sum over
    all steps instead of one per step. The GRU keeps b_hh for its step (r multiplies b_hn).
    """
    bias = bias_ih if bias_ih is None or bias_hh is None else bias_ih + bias_hh
    return nn.functional.linear(x, weight_ih, bias)


# The step functions take W_hh^T (H, G), transposed once by the caller: a `.t()` inside a
# step would add an autograd node, and a gradient transpose, to every step.


def rnn_step(gi: Tensor, h: Tensor, weight_hh_t: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """One Elman RNN step from gi = x W_ih^T + b_ih + b_hh (B, H)."""
    pre = torch.addmm(gi, h, weight_hh_t)  # W_ih x + b_ih + b_hh + W_hh h, one kernel
    # h' = tanh(W_ih x + b_ih + W_hh h + b_hh)   (or relu)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(gi: Tensor, h: Tensor, c: Tensor, weight_hh_t: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step from gi = x W_ih^T + b_ih + b_hh (B, 4H); torch's gate order i, f, g, o."""
    i, f, g, o = torch.addmm(gi, h, weight_hh_t).chunk(4, dim=1)
    i = torch.sigmoid(i)  # i = σ(W_ii x + b_ii + W_hi h + b_hi)   input gate
    f = torch.sigmoid(f)  # f = σ(W_if x + b_if + W_hf h + b_hf)   forget gate
    g = torch.tanh(g)     # g = tanh(W_ig x + b_ig + W_hg h + b_hg) candidate cell
    o = torch.sigmoid(o)  # o = σ(W_io x + b_io + W_ho h + b_ho)   output gate
    c = f * c + i * g     # c' = f ⊙ c + i ⊙ g
    h = o * torch.tanh(c)  # h' = o ⊙ tanh(c')
    return h, c


def gru_step(gi: Tensor, h: Tensor, weight_hh_t: Tensor, bias_hh: Tensor | None) -> Tensor:
    """One GRU step from gi = x W_ih^T + b_ih (B, 3H); torch's gate order r, z, n."""
    gh = h @ weight_hh_t if bias_hh is None else torch.addmm(bias_hh, h, weight_hh_t)
    size = h.shape[1]
    # r and z in one sigmoid over their 2H columns: fewer, larger kernels per step.
    # r = σ(W_ir x + b_ir + W_hr h + b_hr)   reset gate
    # z = σ(W_iz x + b_iz + W_hz h + b_hz)   update gate
    r, z = torch.sigmoid(gi[:, : 2 * size] + gh[:, : 2 * size]).chunk(2, dim=1)
    i_n, h_n = gi[:, 2 * size:], gh[:, 2 * size:]
    # n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)). The trap: r multiplies the recurrent
    # term *with* its bias b_hn, not W_hn (r ⊙ h) as in the original GRU paper.
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)  # h' = (1 - z) ⊙ n + z ⊙ h


GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def init_uniform(module: nn.Module, hidden_size: int) -> None:
    """torch.nn's initialisation for recurrent weights: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    for weight in module.parameters():
        nn.init.uniform_(weight, -bound, bound)


class _Cell(nn.Module):
    """Parameters shared by the three cells, named and shaped as in torch.nn."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = GATES[self.kind] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size))   # (G, I)
        self.weight_hh = nn.Parameter(torch.empty(gates, hidden_size))  # (G, H)
        self.bias_ih = nn.Parameter(torch.empty(gates)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(gates)) if bias else None
        init_uniform(self, hidden_size)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input (B, {self.input_size}), "
                             f"got {tuple(x.shape)}")

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)


class RNNCell(_Cell):
    """Elman cell, h' = tanh(W_ih x + b_ih + W_hh h + b_hh); `nonlinearity="relu"` too."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        """x (B, I), hx (B, H) or None for zeros -> h' (B, H)."""
        self._check(x)
        h = self._zeros(x) if hx is None else hx
        gi = project_input(x, self.weight_ih, self.bias_ih, self.bias_hh)
        return rnn_step(gi, h, self.weight_hh.t(), self.nonlinearity)


class LSTMCell(_Cell):
    """Long short-term memory cell: c carries long-term memory, h is the output."""

    kind = "lstm"

    def forward(self, x: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """x (B, I), hx (h, c) each (B, H) or None for zeros -> (h', c')."""
        self._check(x)
        h, c = (self._zeros(x), self._zeros(x)) if hx is None else hx
        gi = project_input(x, self.weight_ih, self.bias_ih, self.bias_hh)
        return lstm_step(gi, h, c, self.weight_hh.t())


class GRUCell(_Cell):
    """Gated recurrent unit: an update gate z interpolates between h and a candidate n."""

    kind = "gru"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        """x (B, I), hx (B, H) or None for zeros -> h' (B, H)."""
        self._check(x)
        h = self._zeros(x) if hx is None else hx
        gi = project_input(x, self.weight_ih, self.bias_ih)
        return gru_step(gi, h, self.weight_hh.t(), self.bias_hh)
