"""Whole-sequence recurrent layers: core.RNN, core.LSTM, core.GRU, and `recurrent()`,
the one switch every task uses to choose between torch.nn's modules and core's cells.

core's layers take torch.nn.RNN/LSTM/GRU's constructor arguments and state_dict
(`weight_ih_l0`, `weight_hh_l1_reverse`, ...) and run

    output, state = layer(x, state=None, lengths=None)

x is (T, B, I), or (B, T, I) with batch_first. state is h, or (h, c) for the LSTM, each
(num_layers * num_directions, B, H). `lengths` (B,) makes a padded batch behave like a
packed one: padded steps do not update the state, the output there is zero, and the final
state is the one at each sequence's last real step (the reverse direction starts there).

Per layer and direction, the input projection for all T steps is one matmul; the loop
then walks `gi.unbind(0)`. Indexing `gi[t]` instead would make backward quadratic in T,
because each index's gradient is a full-size tensor of zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from core.cells import GATES, gru_step, init_uniform, lstm_step, project_input, rnn_step

State = Tensor | tuple[Tensor, Tensor]


def check_call(layer: nn.Module, x: Tensor, state: State | None,
               lengths: Tensor | None) -> None:
    """Raise ValueError naming the expected shape when x, state or lengths do not fit."""
    directions = 2 if layer.bidirectional else 1
    order = "(B, T, I)" if layer.batch_first else "(T, B, I)"
    if x.dim() != 3 or x.shape[-1] != layer.input_size:
        raise ValueError(f"{type(layer).__name__} expects input {order} with "
                         f"I={layer.input_size}, got {tuple(x.shape)}")
    batch, steps = (x.shape[0], x.shape[1]) if layer.batch_first else (x.shape[1], x.shape[0])
    expected = (layer.num_layers * directions, batch, layer.hidden_size)
    for part in (state if isinstance(state, tuple) else (state,)):
        if part is not None and tuple(part.shape) != expected:
            raise ValueError(f"initial state must be {expected}, got {tuple(part.shape)}")
    if lengths is not None and (lengths.dim() != 1 or len(lengths) != batch or
                                int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(f"lengths must be ({batch},) with values in 1..{steps}, "
                         f"got {lengths.tolist()}")


class _Recurrent(nn.Module):
    """A stack of recurrent layers over whole sequences, laid out as torch.nn.RNNBase."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, nonlinearity: str = "tanh") -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional, self.nonlinearity = bidirectional, nonlinearity
        self.num_directions = 2 if bidirectional else 1
        gates = GATES[self.kind] * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                setattr(self, f"weight_ih_{name}", nn.Parameter(torch.empty(gates, layer_input)))
                setattr(self, f"weight_hh_{name}", nn.Parameter(torch.empty(gates, hidden_size)))
                if bias:
                    setattr(self, f"bias_ih_{name}", nn.Parameter(torch.empty(gates)))
                    setattr(self, f"bias_hh_{name}", nn.Parameter(torch.empty(gates)))
        init_uniform(self, hidden_size)

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"] if self.bidirectional else [""]

    def _weights(self, layer: int, suffix: str) -> tuple[Tensor, Tensor, Tensor | None,
                                                         Tensor | None]:
        name = f"l{layer}{suffix}"
        return (getattr(self, f"weight_ih_{name}"), getattr(self, f"weight_hh_{name}"),
                getattr(self, f"bias_ih_{name}", None), getattr(self, f"bias_hh_{name}", None))

    def _run_direction(self, x: Tensor, state: tuple[Tensor, Tensor | None], layer: int,
                       suffix: str, mask: list[Tensor] | None
                       ) -> tuple[Tensor, tuple[Tensor, Tensor | None]]:
        """One layer in one direction over (T, B, I) -> output (T, B, H), final (h, c)."""
        weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer, suffix)
        gi = project_input(x, weight_ih, bias_ih)  # (T, B, G): every step in one matmul
        steps = list(range(x.shape[0]))
        if suffix:
            steps.reverse()
        h, c = state
        outputs: list[Tensor] = [h] * len(steps)
        projections = gi.unbind(0)
        for t in steps:
            if self.kind == "lstm":
                h_new, c_new = lstm_step(projections[t], h, c, weight_hh, bias_hh)
            elif self.kind == "gru":
                h_new, c_new = gru_step(projections[t], h, weight_hh, bias_hh), None
            else:
                h_new = rnn_step(projections[t], h, weight_hh, bias_hh, self.nonlinearity)
                c_new = None
            if mask is not None:  # padded steps keep the previous state
                h_new = torch.where(mask[t], h_new, h)
                c_new = None if c_new is None else torch.where(mask[t], c_new, c)
            h, c = h_new, c_new
            outputs[t] = h
        return torch.stack(outputs), (h, c)

    def forward(self, x: Tensor, state: State | None = None,
                lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (T, B, I) or (B, T, I) -> output (same order, H * directions), final state."""
        check_call(self, x, state, lengths)
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if state is None:
            h0, c0 = x.new_zeros(shape), (x.new_zeros(shape) if self.kind == "lstm" else None)
        elif isinstance(state, tuple):
            h0, c0 = state
        else:
            h0, c0 = state, None
        mask = None
        if lengths is not None:
            valid = torch.arange(steps, device=x.device)[:, None] < lengths.to(x.device)[None, :]
            mask = list(valid.unsqueeze(-1).unbind(0))  # T tensors of (B, 1)
        finals_h, finals_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                layer_input = nn.functional.dropout(layer_input, self.dropout, self.training)
            outputs = []
            for d, suffix in enumerate(self._suffixes()):
                index = layer * self.num_directions + d
                start = (h0[index], None if c0 is None else c0[index])
                output, (h, c) = self._run_direction(layer_input, start, layer, suffix, mask)
                outputs.append(output)
                finals_h.append(h)
                finals_c.append(c)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        output = layer_input
        if mask is not None:
            output = output * torch.stack(mask).to(output.dtype)  # zeros at padded steps
        if self.batch_first:
            output = output.transpose(0, 1)
        h_n = torch.stack(finals_h)
        return output, ((h_n, torch.stack(finals_c)) if self.kind == "lstm" else h_n)


class RNN(_Recurrent):
    """Elman RNN layer (tanh or relu), equivalent to torch.nn.RNN."""

    kind = "rnn"


class LSTM(_Recurrent):
    """LSTM layer, equivalent to torch.nn.LSTM (without proj_size)."""

    kind = "lstm"

    def __init__(self, *args, **kwargs) -> None:
        if "nonlinearity" in kwargs:
            raise TypeError("LSTM has no nonlinearity argument")
        super().__init__(*args, **kwargs)


class GRU(_Recurrent):
    """GRU layer, equivalent to torch.nn.GRU."""

    kind = "gru"

    def __init__(self, *args, **kwargs) -> None:
        if "nonlinearity" in kwargs:
            raise TypeError("GRU has no nonlinearity argument")
        super().__init__(*args, **kwargs)


class _TorchWithLengths:
    """Gives torch.nn's layers core's call: `forward(x, state=None, lengths=None)`, packing
    the padded batch for torch when lengths are given. State_dict keys are unchanged."""

    def forward(self, x: Tensor, state: State | None = None,
                lengths: Tensor | None = None) -> tuple[Tensor, State]:
        check_call(self, x, state, lengths)
        if lengths is None:
            return super().forward(x, state)
        total = x.shape[1] if self.batch_first else x.shape[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=self.batch_first,
                                      enforce_sorted=False)
        output, state = super().forward(packed, state)
        output, _ = pad_packed_sequence(output, batch_first=self.batch_first,
                                        total_length=total)
        return output, state


class TorchRNN(_TorchWithLengths, nn.RNN):
    """torch.nn.RNN with a `lengths` argument."""


class TorchLSTM(_TorchWithLengths, nn.LSTM):
    """torch.nn.LSTM with a `lengths` argument."""


class TorchGRU(_TorchWithLengths, nn.GRU):
    """torch.nn.GRU with a `lengths` argument."""


LAYERS = {
    "torch": {"rnn": TorchRNN, "lstm": TorchLSTM, "gru": TorchGRU},
    "core": {"rnn": RNN, "lstm": LSTM, "gru": GRU},
}


def recurrent(cell: str, impl: str, input_size: int, hidden_size: int,
              **kwargs) -> nn.Module:
    """A recurrent layer: `cell` in rnn|lstm|gru, `impl` "torch" (torch.nn, fast) or
    "core" (this project's cells, same weights layout). Keyword arguments are torch.nn's."""
    if impl not in LAYERS:
        raise ValueError(f"impl must be one of {sorted(LAYERS)}, got {impl!r}")
    if cell not in LAYERS[impl]:
        raise ValueError(f"cell must be one of {sorted(LAYERS[impl])}, got {cell!r}")
    return LAYERS[impl][cell](input_size, hidden_size, **kwargs)
