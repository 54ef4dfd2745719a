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
                ) -> tuple[torch.Tensor | list[torch.Tensor], State]:
        layout = "(B, T, C, H, W)" if self.batch_first else "(T, B, C, H, W)"
        if x.dim() != 5 or x.shape[2] != self.input_size:
            raise ValueError(f"expected input {layout.replace('C', f'C={self.input_size}')}, "
                             f"got {_shape(x)}")
        if not self.batch_first:
            x = x.transpose(0, 1)                           # (B, T, C, H, W)
        if state is not None:
            self._check_state(x, state)
        layer_input, outputs, final = x, [], []
        for n, cell in enumerate(self.cells):
            h, c = cell.init_state(layer_input[:, 0]) if state is None else state[n]
            steps = []
            for t in range(layer_input.shape[1]):
                h, c = cell(layer_input[:, t], (h, c))
                steps.append(h)
            layer_input = torch.stack(steps, dim=1)         # (B, T, Hd_n, H, W)
            outputs.append(layer_input if self.batch_first else layer_input.transpose(0, 1))
            final.append((h, c))
        return outputs[-1], final
