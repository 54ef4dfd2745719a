"""Recurrent cells written out in plain PyTorch: RNNCell, LSTMCell, GRUCell, and two
torch.nn does not have: GRUICell, a GRU whose state decays with the time since the inputs
were observed, and the char-RNN tutorial's TutorialRNNCell.

They keep torch.nn's parameter names, shapes, gate order, initialisation and call
signature, so `cell.load_state_dict(torch.nn.GRUCell(...).state_dict())` works and the
tests can check them against torch to 1e-5.

Each cell is split in two, because a layer runs many steps:
- the input projection `x W_ih^T + b_ih` does not depend on the previous state, so a
  layer computes it for every time step in one matmul (`project_input`);
- the `*_step` functions below take that projection for one step and apply the update
  equations with the recurrent weights.

core.layers runs its RNN, LSTM and GRU layers on these steps under autograd; core.bptt
runs the LSTM's equations again with the backward through time written out by hand.

A cell takes a batch x (B, I) or, as torch.nn's cells do, one unbatched input x (I,)
with a state (H,). Shapes: B batch, I input size, H hidden size, G gates * H.
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


def lstm_step(gi: Tensor, h: Tensor, c: Tensor, weight_hh_t: Tensor,
              weight_hr_t: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step from gi = x W_ih^T + b_ih + b_hh (B, 4H); torch's gate order i, f, g, o.

    With W_hr^T (H, P), torch.nn.LSTM's proj_size P, h' is projected to P columns: the
    state h and the output are (B, P), the cell c stays (B, H), and W_hh is (4H, P)."""
    i, f, g, o = torch.addmm(gi, h, weight_hh_t).chunk(4, dim=1)
    i = torch.sigmoid(i)  # i = σ(W_ii x + b_ii + W_hi h + b_hi)   input gate
    f = torch.sigmoid(f)  # f = σ(W_if x + b_if + W_hf h + b_hf)   forget gate
    g = torch.tanh(g)     # g = tanh(W_ig x + b_ig + W_hg h + b_hg) candidate cell
    o = torch.sigmoid(o)  # o = σ(W_io x + b_io + W_ho h + b_ho)   output gate
    c = f * c + i * g     # c' = f ⊙ c + i ⊙ g
    h = o * torch.tanh(c)  # h' = o ⊙ tanh(c')
    if weight_hr_t is not None:
        h = h @ weight_hr_t  # h' = W_hr (o ⊙ tanh(c'))   with proj_size
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


def check_cell_call(cell: nn.Module, x: Tensor, hx: tuple[Tensor, ...]) -> None:
    """Raise ValueError naming the expected shapes when x or a part of hx does not fit."""
    size = cell.input_size
    if x.dim() not in (1, 2) or x.shape[-1] != size:
        raise ValueError(f"{type(cell).__name__} expects input (B, {size}) or unbatched "
                         f"({size},), got {tuple(x.shape)}")
    expected = (*x.shape[:-1], cell.hidden_size)
    for part in hx:
        if tuple(part.shape) != expected:
            raise ValueError(f"{type(cell).__name__} expects a state {expected} for input "
                             f"{tuple(x.shape)}, got {tuple(part.shape)}")


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
        """x (B, I), hx (B, H) or None for zeros -> h' (B, H); or x (I,), hx (H,) -> (H,)."""
        check_cell_call(self, x, () if hx is None else (hx,))
        if x.dim() == 1:  # unbatched: run a batch of one
            return self.forward(x[None], None if hx is None else hx[None])[0]
        h = self._zeros(x) if hx is None else hx
        gi = project_input(x, self.weight_ih, self.bias_ih, self.bias_hh)
        return rnn_step(gi, h, self.weight_hh.t(), self.nonlinearity)


class LSTMCell(_Cell):
    """Long short-term memory cell: c carries long-term memory, h is the output."""

    kind = "lstm"

    def forward(self, x: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """x (B, I), hx (h, c) each (B, H) or None for zeros -> (h', c'); or unbatched
        x (I,), h and c (H,)."""
        check_cell_call(self, x, () if hx is None else tuple(hx))
        if x.dim() == 1:  # unbatched: run a batch of one
            h, c = self.forward(x[None], None if hx is None else (hx[0][None], hx[1][None]))
            return h[0], c[0]
        h, c = (self._zeros(x), self._zeros(x)) if hx is None else hx
        gi = project_input(x, self.weight_ih, self.bias_ih, self.bias_hh)
        return lstm_step(gi, h, c, self.weight_hh.t())


class GRUCell(_Cell):
    """Gated recurrent unit: an update gate z interpolates between h and a candidate n."""

    kind = "gru"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        """x (B, I), hx (B, H) or None for zeros -> h' (B, H); or x (I,), hx (H,) -> (H,)."""
        check_cell_call(self, x, () if hx is None else (hx,))
        if x.dim() == 1:  # unbatched: run a batch of one
            return self.forward(x[None], None if hx is None else hx[None])[0]
        h = self._zeros(x) if hx is None else hx
        gi = project_input(x, self.weight_ih, self.bias_ih)
        return gru_step(gi, h, self.weight_hh.t(), self.bias_hh)


class GRUICell(_Cell):
    """GRUI, the GRU for irregularly observed series of Luo et al. 2018 ("Multivariate Time
    Series Imputation with Generative Adversarial Networks", NeurIPS): before the ordinary
    GRU update, the state decays with the time since each input variable was last seen.

        β  = exp(-max(0, W_β δ + b_β))   (B, H)  the decay, in (0, 1]
        h  ← β ⊙ h                       (B, H)  an old state counts for less
        h' = GRUCell(x, h)               (B, H)  torch.nn.GRUCell's equations

    δ (B, I) has x's shape: δ_j is the time since variable j was last observed. W_β
    (`weight_delta`, (H, I)) and b_β (`bias_delta`, (H,)) come beside GRUCell's parameters,
    so a torch.nn.GRUCell's state_dict loads with `strict=False`; with W_β = 0 and b_β = 0,
    β = 1 and the cell is exactly GRUCell. `bias=False` drops b_β with b_ih and b_hh.

    The authors' TensorFlow code (GRUI/mygru_cell.py) computes β outside the cell and
    differs in ways kept out of here: W_β ~ N(0, 1) and b_β = 0.001 where W_β and b_β
    start here as every other weight, U(-1/sqrt(H), 1/sqrt(H)); TensorFlow's GRU, whose
    r multiplies h before W_hn (not W_hn h + b_hn) and whose r, z biases start at 1.
    """

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.weight_delta = nn.Parameter(torch.empty(hidden_size, input_size))  # W_β (H, I)
        self.bias_delta = nn.Parameter(torch.empty(hidden_size)) if bias else None  # b_β (H,)
        bound = 1.0 / math.sqrt(hidden_size)  # init_uniform's bound, for the two added here
        nn.init.uniform_(self.weight_delta, -bound, bound)
        if self.bias_delta is not None:
            nn.init.uniform_(self.bias_delta, -bound, bound)

    def forward(self, x: Tensor, delta: Tensor, hx: Tensor | None = None) -> Tensor:
        """x (B, I), delta (B, I), hx (B, H) or None for zeros -> h' (B, H); or unbatched
        x (I,), delta (I,), hx (H,) -> (H,)."""
        check_cell_call(self, x, () if hx is None else (hx,))
        if delta.shape != x.shape:
            raise ValueError(f"GRUICell expects delta of the input's shape {tuple(x.shape)}, "
                             f"got {tuple(delta.shape)}")
        if x.dim() == 1:  # unbatched: run a batch of one
            return self.forward(x[None], delta[None], None if hx is None else hx[None])[0]
        h = self._zeros(x) if hx is None else hx
        # β = exp(-max(0, W_β δ + b_β))
        beta = torch.exp(-torch.relu(nn.functional.linear(delta, self.weight_delta,
                                                          self.bias_delta)))
        gi = project_input(x, self.weight_ih, self.bias_ih)
        return gru_step(gi, beta * h, self.weight_hh.t(), self.bias_hh)  # GRU on h ← β ⊙ h


class TutorialRNNCell(nn.Module):
    """The RNN of PyTorch's char-RNN tutorial, as our lesson writes it; torch.nn has no
    such class. Two Linear layers read the same combined vector [x, h]:

        combined = [x, h]                (B, I + H)
        h' = σ(W_i2h combined + b_i2h)   (B, H)  the new hidden state
        y  = σ(W_i2o combined + b_i2o)   (B, O)  the output

    Unlike RNNCell, whose output is h' itself, y is read from the combined vector beside
    h': the output of step t sees x_t and h_{t-1}, never the state the step makes. The
    parameters keep the tutorial's names i2h and i2o, so its weights load here.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size = output_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)  # (H, I + H)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)  # (O, I + H)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, I), hx (B, H) or None for zeros -> (y (B, O), h' (B, H)), the tutorial's
        (output, hidden); or unbatched x (I,), hx (H,) -> (y (O,), h' (H,))."""
        check_cell_call(self, x, () if hx is None else (hx,))
        h = x.new_zeros(*x.shape[:-1], self.hidden_size) if hx is None else hx
        combined = torch.cat([x, h], dim=-1)     # [x, h]
        h_new = torch.sigmoid(self.i2h(combined))  # h' = σ(W_i2h [x, h] + b_i2h)
        y = torch.sigmoid(self.i2o(combined))      # y = σ(W_i2o [x, h] + b_i2o), from h, not h'
        return y, h_new
