"""Convolutional LSTM (Shi et al. 2015): an LSTM whose state is an image.

Each gate comes from one convolution over the input frame and the previous hidden
state stacked on the channel axis, so a pixel's memory is updated from its
neighbourhood; stacked layers and recurrence widen what a pixel can see.

    x (B, C, H, W) ─┐
                    ├─ concat ─ Conv2d(C + Hd -> 4 Hd, kernel, "same") ─ split ─ i f o g
    h (B, Hd, H, W) ┘

`ConvLSTMCell` is one step; `ConvLSTM` stacks cells over time and layers. Unlike the
widely copied implementation (ndrplz/ConvLSTM_pytorch, whose parameter names and gate
order i, f, o, g this one keeps, so its weights load here), `ConvLSTM` takes an initial
state and returns the final one, and `step()` advances every layer by one frame, which
is what an autoregressive rollout needs. torch.nn has no ConvLSTM, so there is no
`--impl torch` to compare with; the tests check the cell against `nn.LSTMCell` instead
(a 1x1 kernel on a 1x1 grid is an ordinary LSTM cell).

PredRNN (Wang et al., NeurIPS 2017) is `SpatioTemporalLSTMCell` stacked by `PredRNN`:
each layer keeps a ConvLSTM's (h, c), and a second memory M climbs the stack at every
step and goes on to the bottom layer of the next step, so that what the bottom layer saw
(the fine detail of a frame) reaches the top without passing through every h. The
state is ConvLSTM's with M beside it: ([(h, c) per layer], M).

Shapes use B batch, T time, C input channels, Hd hidden channels, H x W the grid.
A state is a list with one (h, c) pair per layer, each (B, Hd_layer, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

Kernel = int | tuple[int, int]
State = list[tuple[torch.Tensor, torch.Tensor]]


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(n) for n in t.shape) + ")"


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: (x, (h, c)) -> (h', c'), all (B, channels, H, W).

    `conv` holds W and b for the four gates stacked in the order i, f, o, g along its
    output channels (nn.LSTMCell stacks i, f, g, o: mind this when copying weights).
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: Kernel = 3,
                 bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) \
            else tuple(kernel_size)
        # "same" padding keeps the grid's size, so h can be fed back at every step.
        self.conv = nn.Conv2d(input_size + hidden_size, 4 * hidden_size, self.kernel_size,
                              padding="same", bias=bias)

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (h, c) for a batch shaped like `x` (B, C, H, W)."""
        b, _, height, width = x.shape
        zeros = x.new_zeros(b, self.hidden_size, height, width)
        return zeros, zeros

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.input_size:
            raise ValueError(f"expected input (B, C={self.input_size}, H, W), "
                             f"got {_shape(x)}")
        h, c = self.init_state(x) if state is None else state
        expected = (x.shape[0], self.hidden_size, *x.shape[2:])
        for name, t in (("h", h), ("c", c)):
            if tuple(t.shape) != expected:
                raise ValueError(f"expected {name} (B, Hd, H, W) = {expected}, got {_shape(t)}")
        gates = self.conv(torch.cat([x, h], dim=1))         # (B, 4 Hd, H, W)
        i, f, o, g = gates.chunk(4, dim=1)
        i = torch.sigmoid(i)                                # i = σ(W_i * [x, h] + b_i)
        f = torch.sigmoid(f)                                # f = σ(W_f * [x, h] + b_f)
        o = torch.sigmoid(o)                                # o = σ(W_o * [x, h] + b_o)
        g = torch.tanh(g)                                   # g = tanh(W_g * [x, h] + b_g)
        c = f * c + i * g                                   # c' = f ⊙ c + i ⊙ g
        h = o * torch.tanh(c)                               # h' = o ⊙ tanh(c')
        return h, c


def _per_layer(value: object, num_layers: int, name: str) -> list:
    """An int/tuple for every layer, or a list with one entry per layer."""
    if isinstance(value, list):
        if len(value) != num_layers:
            raise ValueError(f"{name} has {len(value)} entries for {num_layers} layers")
        return list(value)
    return [value] * num_layers


class ConvLSTM(nn.Module):
    """A stack of ConvLSTM layers run over a sequence of frames.

    hidden_size and kernel_size are one value for every layer or a list with one per
    layer; a kernel is an int or an (h, w) tuple. With batch_first the input and the
    output are (B, T, C, H, W), else (T, B, C, H, W), as in nn.LSTM.

    forward(x, state=None) -> (output, state)
        output: the last layer's h at every step, (B, T, Hd_last, H, W).
        state:  the final (h, c) of every layer, a list; pass it back in to continue.
    """

    def __init__(self, input_size: int, hidden_size: int | Sequence[int],
                 kernel_size: Kernel | Sequence[Kernel] = 3, num_layers: int = 1,
                 batch_first: bool = False, bias: bool = True) -> None:
        super().__init__()
        hidden = _per_layer(hidden_size, num_layers, "hidden_size")
        kernels = _per_layer(kernel_size, num_layers, "kernel_size")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden, num_layers
        self.batch_first = batch_first
        sizes = [input_size, *hidden]
        self.cells = nn.ModuleList(
            ConvLSTMCell(sizes[n], sizes[n + 1], kernels[n], bias) for n in range(num_layers))

    def _check_state(self, x: torch.Tensor, state: State) -> None:
        if len(state) != self.num_layers:
            raise ValueError(f"expected a state with {self.num_layers} (h, c) pairs, "
                             f"got {len(state)}")
        for n, (h, c) in enumerate(state):
            expected = (x.shape[0], self.hidden_size[n], *x.shape[-2:])
            for name, t in (("h", h), ("c", c)):
                if tuple(t.shape) != expected:
                    raise ValueError(f"expected layer {n} {name} (B, Hd, H, W) = {expected}, "
                                     f"got {_shape(t)}")

    def step(self, x: torch.Tensor, state: State | None = None
             ) -> tuple[torch.Tensor, State]:
        """Advance every layer by one frame x (B, C, H, W): -> (top layer's h, new state)."""
        if x.dim() != 4 or x.shape[1] != self.input_size:
            raise ValueError(f"expected a frame (B, C={self.input_size}, H, W), "
                             f"got {_shape(x)}")
        if state is not None:
            self._check_state(x, state)
        new_state: State = []
        for n, cell in enumerate(self.cells):
            h, c = cell(x, None if state is None else state[n])
            new_state.append((h, c))
            x = h                                           # the next layer's input
        return x, new_state

    def forward(self, x: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        layout = "(B, T, C, H, W)" if self.batch_first else "(T, B, C, H, W)"
        if x.dim() != 5 or x.shape[2] != self.input_size:
            raise ValueError(f"expected input {layout.replace('C', f'C={self.input_size}')}, "
                             f"got {_shape(x)}")
        if not self.batch_first:
            x = x.transpose(0, 1)                           # (B, T, C, H, W)
        if state is not None:
            self._check_state(x, state)
        layer_input, final = x, []
        for n, cell in enumerate(self.cells):
            h, c = cell.init_state(layer_input[:, 0]) if state is None else state[n]
            steps = []
            for t in range(layer_input.shape[1]):
                h, c = cell(layer_input[:, t], (h, c))
                steps.append(h)
            layer_input = torch.stack(steps, dim=1)         # (B, T, Hd_n, H, W)
            final.append((h, c))
        output = layer_input if self.batch_first else layer_input.transpose(0, 1)
        return output, final


# PredRNN ------------------------------------------------------------------------------

PredState = tuple[State, torch.Tensor]  # ([(h, c) per layer], M)


class SpatioTemporalLSTMCell(nn.Module):
    """One ST-LSTM step of PredRNN (Wang et al. 2017): (x, (h, c), m) -> (h', c', m').

    Beside the ConvLSTM's temporal memory C, which stays in its layer from one step to
    the next, the cell updates a spatiotemporal memory M that arrives from the layer
    below (or, at the bottom layer, from the top layer of the previous step). The two
    memories have their own gates; the output gate reads both, and a 1x1 convolution
    fuses them into the hidden state.

    The convolutions, named and stacked as in OpenSTL's SpatioTemporalLSTMCell (which
    also offers layer norm, left out here):
        conv_x (C -> 7 Hd):  i f g  i' f' g'  o    all from the input x
        conv_h (Hd -> 4 Hd): i f g o               from the layer's previous h
        conv_m (Hd -> 3 Hd): i' f' g'              from the incoming M
        conv_o (2 Hd -> Hd): o                     from the new [C, M]
        conv_last (1x1, 2 Hd -> Hd)                fuses the new [C, M]
    Only conv_x carries a bias, so each gate has exactly one.
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: Kernel = 3) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.kernel_size = k
        self.conv_x = nn.Conv2d(input_size, 7 * hidden_size, k, padding="same")
        self.conv_h = nn.Conv2d(hidden_size, 4 * hidden_size, k, padding="same", bias=False)
        self.conv_m = nn.Conv2d(hidden_size, 3 * hidden_size, k, padding="same", bias=False)
        self.conv_o = nn.Conv2d(2 * hidden_size, hidden_size, k, padding="same", bias=False)
        self.conv_last = nn.Conv2d(2 * hidden_size, hidden_size, 1, bias=False)

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (h, c), and so also a zero M, for a batch shaped like `x` (B, C, H, W)."""
        b, _, height, width = x.shape
        zeros = x.new_zeros(b, self.hidden_size, height, width)
        return zeros, zeros

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                m: torch.Tensor | None = None, increments: list | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (h', c', m'). With a list as `increments`, append (i ⊙ g, i' ⊙ g'), what
        the step adds to C and to M (PredRNN-V2's decoupling loss compares them)."""
        if x.dim() != 4 or x.shape[1] != self.input_size:
            raise ValueError(f"expected input (B, C={self.input_size}, H, W), "
                             f"got {_shape(x)}")
        h, c = self.init_state(x) if state is None else state
        m = self.init_state(x)[0] if m is None else m
        expected = (x.shape[0], self.hidden_size, *x.shape[2:])
        for name, t in (("h", h), ("c", c), ("m", m)):
            if tuple(t.shape) != expected:
                raise ValueError(f"expected {name} (B, Hd, H, W) = {expected}, got {_shape(t)}")
        xi, xf, xg, xi_, xf_, xg_, xo = self.conv_x(x).chunk(7, dim=1)
        hi, hf, hg, ho = self.conv_h(h).chunk(4, dim=1)
        mi, mf, mg = self.conv_m(m).chunk(3, dim=1)
        i = torch.sigmoid(xi + hi)                          # i = σ(W_xi * x + W_hi * h + b_i)
        f = torch.sigmoid(xf + hf)                          # f = σ(W_xf * x + W_hf * h + b_f)
        g = torch.tanh(xg + hg)                             # g = tanh(W_xg * x + W_hg * h + b_g)
        c = f * c + i * g                                   # C' = f ⊙ C + i ⊙ g
        i_ = torch.sigmoid(xi_ + mi)                        # i' = σ(W'_xi * x + W_mi * M + b'_i)
        f_ = torch.sigmoid(xf_ + mf)                        # f' = σ(W'_xf * x + W_mf * M + b'_f)
        g_ = torch.tanh(xg_ + mg)                           # g' = tanh(W'_xg * x + W_mg * M + b'_g)
        m = f_ * m + i_ * g_                                # M' = f' ⊙ M + i' ⊙ g'
        memory = torch.cat([c, m], dim=1)                   # (B, 2 Hd, H, W)
        # o = σ(W_xo * x + W_ho * h + W_co * C' + W_mo * M' + b_o)
        o = torch.sigmoid(xo + ho + self.conv_o(memory))
        h = o * torch.tanh(self.conv_last(memory))          # H' = o ⊙ tanh(W_1x1 * [C', M'])
        if increments is not None:
            increments.append((i * g, i_ * g_))
        return h, c, m


class PredRNN(nn.Module):
    """A stack of ST-LSTM layers with PredRNN's zigzag memory, run over frames.

        step t-1:  layer L ──M──┐
                                │  M goes down to the bottom layer of the next step,
        step t:    layer 1 <────┘  then up:  layer 1 ─M─> layer 2 ─M─> ... ─M─> layer L

    while each layer's (h, c) goes from step t-1 to step t in the same layer, as in
    ConvLSTM. M is one tensor, so every layer has the same hidden_size. With batch_first
    the input and output are (B, T, C, H, W), else (T, B, C, H, W).

    forward(x, state=None) -> (output, state)
        output: the top layer's h at every step, (B, T, Hd, H, W).
        state:  ([(h, c) per layer], M): the final states; pass it back in to continue.
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: Kernel = 3,
                 num_layers: int = 1, batch_first: bool = False) -> None:
        super().__init__()
        if not isinstance(hidden_size, int):
            raise NotImplementedError("PredRNN takes one int hidden_size for every layer: "
                                      "the memory M passes through all of them")
        kernels = _per_layer(kernel_size, num_layers, "kernel_size")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        sizes = [input_size] + [hidden_size] * num_layers
        self.cells = nn.ModuleList(SpatioTemporalLSTMCell(sizes[n], hidden_size, kernels[n])
                                   for n in range(num_layers))

    def _check_state(self, x: torch.Tensor, state: PredState) -> None:
        layers, m = state
        expected = (x.shape[0], self.hidden_size, *x.shape[-2:])
        if len(layers) != self.num_layers:
            raise ValueError(f"expected a state with {self.num_layers} (h, c) pairs, "
                             f"got {len(layers)}")
        named = [(f"layer {n} {name}", t) for n, pair in enumerate(layers)
                 for name, t in zip("hc", pair, strict=True)]
        for name, t in [*named, ("M", m)]:
            if tuple(t.shape) != expected:
                raise ValueError(f"expected {name} (B, Hd, H, W) = {expected}, got {_shape(t)}")

    def step(self, x: torch.Tensor, state: PredState | None = None,
             increments: list | None = None) -> tuple[torch.Tensor, PredState]:
        """Advance every layer by one frame x (B, C, H, W): -> (top layer's h, new state).
        `increments`: a list to which each layer appends (i ⊙ g, i' ⊙ g')."""
        if x.dim() != 4 or x.shape[1] != self.input_size:
            raise ValueError(f"expected a frame (B, C={self.input_size}, H, W), "
                             f"got {_shape(x)}")
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size, *x.shape[2:])
            state = ([(zeros, zeros)] * self.num_layers, zeros)
        else:
            self._check_state(x, state)
        layers, m = state                                   # m: the top layer's, last step
        new_layers = []
        for n, cell in enumerate(self.cells):
            h, c, m = cell(x, layers[n], m, increments)     # M goes up the stack
            new_layers.append((h, c))
            x = h                                           # the next layer's input
        return x, (new_layers, m)

    def forward(self, x: torch.Tensor, state: PredState | None = None,
                increments: list | None = None) -> tuple[torch.Tensor, PredState]:
        layout = "(B, T, C, H, W)" if self.batch_first else "(T, B, C, H, W)"
        if x.dim() != 5 or x.shape[2] != self.input_size:
            raise ValueError(f"expected input {layout.replace('C', f'C={self.input_size}')}, "
                             f"got {_shape(x)}")
        if not self.batch_first:
            x = x.transpose(0, 1)                           # (B, T, C, H, W)
        # Unlike ConvLSTM, the layers cannot run one after the other over the whole
        # sequence: layer 1 at step t needs M from layer L at step t-1.
        outputs = []
        for t in range(x.shape[1]):
            h, state = self.step(x[:, t], state, increments)
            outputs.append(h)
        output = torch.stack(outputs, dim=1)                # (B, T, Hd, H, W)
        return (output if self.batch_first else output.transpose(0, 1)), state
