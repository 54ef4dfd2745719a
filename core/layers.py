"""Whole-sequence recurrent layers: core.RNN, core.LSTM, core.GRU, and `recurrent()`,
the one switch every task uses to choose between torch.nn's modules and core's cells.

core's layers take torch.nn.RNN/LSTM/GRU's constructor arguments, defaults and
state_dict (`weight_ih_l0`, `weight_hh_l1_reverse`, `weight_hr_l0` with proj_size, ...),
and accept and return what torch.nn's do:

    output, state = layer(x, hx=None, lengths=None)

- x (T, B, I), or (B, T, I) with batch_first -> output (T, B, D·H) in the same order;
  hx, the initial state (zeros if None), and the final state are h, or (h, c) for the
  LSTM, each (num_layers·D, B, H), D = 2 if bidirectional.
  An LSTM with proj_size P projects h to P columns: output (T, B, D·P), h (.., B, P),
  c (.., B, H).
- an unbatched x (T, I) -> output (T, D·H), state (num_layers·D, H); batch_first does
  not apply, as in torch.nn.
- a PackedSequence -> a PackedSequence packed like the input, and the final state at
  each sequence's last real step, in the caller's batch order.
- `lengths` (B,) with a padded x, a convenience torch.nn lacks: the padded batch behaves
  like a packed one. Padded steps do not update the state, the output there is zero, and
  the final state is the one at each sequence's last real step (the reverse direction
  starts there). A PackedSequence runs this way too, unpacked to a padded batch.

Per layer and direction, the input projection for all T steps is one matmul; the loop
then walks `gi.unbind(0)`. Indexing `gi[t]` instead would make backward quadratic in T,
because each index's gradient is a full-size tensor of zeros; so would writing each step
into a preallocated output (`out[t] = h`), whose every copy passes the whole output's
gradient back. The steps are collected with one `torch.stack`.

Every layer runs core.cells' step equations under autograd, so every path can be
differentiated twice (a gradient penalty). `LSTM(..., backward="bptt")` runs the LSTM
through core.bptt instead, whose backward through time is written out by hand: faster on
CPU, first-order only, no proj_size.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from core.bptt import LSTMThroughTime, steps
from core.cells import GATES, gru_step, init_uniform, lstm_step, project_input, rnn_step

State = Tensor | tuple[Tensor, Tensor]
BACKWARDS = ("autograd", "bptt")


def check_options(hidden_size: int, num_layers: int, dropout: float, proj_size: int) -> None:
    """torch.nn.RNNBase's checks of the constructor's arguments, with its messages."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or \
            not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the "
                         "probability of an element being zeroed")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
    if hidden_size <= 0:
        raise ValueError("hidden_size must be greater than zero")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable "
                         "projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")


def check_call(layer: nn.Module, x: Tensor, state: State | None,
               lengths: Tensor | None) -> None:
    """Raise ValueError naming the expected shape when x, the initial state or lengths do
    not fit. x is a tensor in the layer's order, (T, I) when unbatched."""
    name, lstm = type(layer).__name__, layer.kind == "lstm"
    order = "(B, T, I)" if layer.batch_first else "(T, B, I)"
    if x.dim() not in (2, 3) or x.shape[-1] != layer.input_size:
        raise ValueError(f"{name} expects input (T, I) or {order} with "
                         f"I={layer.input_size}, got {tuple(x.shape)}")
    batched = x.dim() == 3
    length, batch = x.shape[0], None
    if batched:
        batch, length = (x.shape[0], x.shape[1]) if layer.batch_first else (x.shape[1],
                                                                            x.shape[0])
    if length == 0:  # torch.stack of no steps would fail with a message about lists
        raise ValueError(f"{name} expects at least one time step, got input "
                         f"{tuple(x.shape)} in the order {order if batched else '(T, I)'}")
    if state is not None:
        if isinstance(state, tuple) != lstm:
            raise ValueError(f"{name}'s state is {'a tuple (h, c)' if lstm else 'one tensor h'}"
                             f", got {type(state).__name__}")
        count = layer.num_layers * (2 if layer.bidirectional else 1)
        lead = (count, batch) if batched else (count,)
        h_size = layer.proj_size or layer.hidden_size
        expected = [("h ", (*lead, h_size)), ("c ", (*lead, layer.hidden_size))] if lstm \
            else [("", (*lead, h_size))]
        for part, (label, shape) in zip(state if lstm else (state,), expected, strict=True):
            if tuple(part.shape) != shape:
                raise ValueError(f"initial state {label}must be {shape}, got "
                                 f"{tuple(part.shape)}")
    if lengths is None:
        return
    if not batched:
        raise ValueError("lengths needs a batched input: an unbatched (T, I) input is one "
                         "whole sequence")
    if lengths.dim() != 1 or len(lengths) != batch or int(lengths.min()) < 1 or \
            int(lengths.max()) > length:
        raise ValueError(f"lengths must be ({batch},) with values in 1..{length}, "
                         f"got {lengths.tolist()}")


def as_lengths(lengths: Tensor | Sequence[int] | None) -> Tensor | None:
    """lengths as a tensor: a list of ints works too, as pack_padded_sequence takes it."""
    if lengths is None or isinstance(lengths, Tensor):
        return lengths
    try:
        return torch.as_tensor(lengths, dtype=torch.int64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"lengths must be a tensor or a list of ints, got {lengths!r}"
                         ) from None


def each_part(state: State, fn: Callable[[Tensor], Tensor]) -> State:
    """fn applied to h, or to both h and c of an LSTM's (h, c)."""
    return tuple(fn(part) for part in state) if isinstance(state, tuple) else fn(state)


def repack_like(packed: PackedSequence, output: Tensor, lengths: Tensor) -> PackedSequence:
    """output (T, B, H), padded in the caller's batch order, packed as `packed` is: the
    same batch_sizes and orders, so output.data lines up with packed.data."""
    order = packed.sorted_indices
    if order is not None:  # pack_padded_sequence(enforce_sorted=False) sorted the batch
        output, lengths = output.index_select(1, order), lengths[order.cpu()]
    data = pack_padded_sequence(output, lengths).data
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                          packed.unsorted_indices)


class _Recurrent(nn.Module):
    """A stack of recurrent layers over whole sequences, laid out as torch.nn.RNNBase."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, nonlinearity: str = "tanh",
                 proj_size: int = 0, backward: str = "autograd") -> None:
        super().__init__()
        check_options(hidden_size, num_layers, dropout, proj_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        if backward not in BACKWARDS:
            raise ValueError(f"backward must be one of {list(BACKWARDS)}, got {backward!r}")
        if backward == "bptt" and proj_size:
            raise NotImplementedError("backward='bptt' has no proj_size: core.bptt writes "
                                      "out the plain LSTM's backward only; use the default "
                                      "backward='autograd'")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.nonlinearity = bidirectional, nonlinearity
        self.proj_size, self.backward = proj_size, backward
        self.num_directions = 2 if bidirectional else 1
        gates = GATES[self.kind] * hidden_size
        out_size = proj_size or hidden_size  # h's columns: P with a projection
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * self.num_directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                setattr(self, f"weight_ih_{name}", nn.Parameter(torch.empty(gates, layer_input)))
                setattr(self, f"weight_hh_{name}", nn.Parameter(torch.empty(gates, out_size)))
                if bias:
                    setattr(self, f"bias_ih_{name}", nn.Parameter(torch.empty(gates)))
                    setattr(self, f"bias_hh_{name}", nn.Parameter(torch.empty(gates)))
                if proj_size:  # (P, H): h' = W_hr (o ⊙ tanh(c'))
                    setattr(self, f"weight_hr_{name}",
                            nn.Parameter(torch.empty(proj_size, hidden_size)))
        init_uniform(self, hidden_size)

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"] if self.bidirectional else [""]

    def _weights(self, layer: int, suffix: str) -> list[Tensor | None]:
        """W_ih, W_hh, b_ih, b_hh, W_hr of one layer and direction (None where absent)."""
        name = f"l{layer}{suffix}"
        return [getattr(self, f"{kind}_{name}", None)
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]

    def _run_direction(self, x: Tensor, h: Tensor, c: Tensor | None, layer: int,
                       suffix: str, mask: Tensor | None
                       ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer in one direction over (T, B, I) -> output (T, B, H), final h and c."""
        weight_ih, weight_hh, bias_ih, bias_hh, weight_hr = self._weights(layer, suffix)
        reverse = bool(suffix)
        if self.backward == "bptt":  # the LSTM's backward written out, core/bptt.py
            bias = None if bias_ih is None else bias_ih + bias_hh
            return LSTMThroughTime.apply(x, h, c, weight_ih, weight_hh, bias, mask, reverse)
        # (T, B, G): every step in one matmul; b_hh joins it except in the GRU (cells.py).
        gi = project_input(x, weight_ih, bias_ih, None if self.kind == "gru" else bias_hh)
        weight_hh_t = weight_hh.t()  # (H, G), once per sequence
        weight_hr_t = None if weight_hr is None else weight_hr.t()  # (H, P)
        outputs: list[Tensor] = [h] * len(gi)
        projections = gi.unbind(0)
        for t in steps(len(gi), reverse):
            c_new = None
            if self.kind == "lstm":
                h_new, c_new = lstm_step(projections[t], h, c, weight_hh_t, weight_hr_t)
            elif self.kind == "gru":
                h_new = gru_step(projections[t], h, weight_hh_t, bias_hh)
            else:
                h_new = rnn_step(projections[t], h, weight_hh_t, self.nonlinearity)
            if mask is not None:  # padded steps keep the previous state
                h_new = torch.where(mask[t], h_new, h)
                c_new = None if c_new is None else torch.where(mask[t], c_new, c)
            h, c = h_new, c_new
            outputs[t] = h
        return torch.stack(outputs), h, c

    def _run(self, x: Tensor, state: State | None, lengths: Tensor | None
             ) -> tuple[Tensor, State]:
        """Every layer and direction over x (T, B, I) -> output (T, B, D·H), final state."""
        length, batch = x.shape[0], x.shape[1]
        count = self.num_layers * self.num_directions
        if state is None:
            h0 = x.new_zeros(count, batch, self.proj_size or self.hidden_size)
            c0 = x.new_zeros(count, batch, self.hidden_size) if self.kind == "lstm" else None
        elif isinstance(state, tuple):
            h0, c0 = state
        else:
            h0, c0 = state, None
        mask = None
        if lengths is not None:
            valid = torch.arange(length, device=x.device)[:, None] < lengths.to(x.device)[None, :]
            mask = valid.unsqueeze(-1)  # (T, B, 1)
        finals_h, finals_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                layer_input = nn.functional.dropout(layer_input, self.dropout, self.training)
            outputs = []
            for d, suffix in enumerate(self._suffixes()):
                index = layer * self.num_directions + d
                output, h, c = self._run_direction(layer_input, h0[index],
                                                   None if c0 is None else c0[index],
                                                   layer, suffix, mask)
                outputs.append(output)
                finals_h.append(h)
                finals_c.append(c)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        output = layer_input
        if mask is not None:
            output = output * mask.to(output.dtype)  # zeros at padded steps
        h_n = torch.stack(finals_h)
        return output, ((h_n, torch.stack(finals_c)) if self.kind == "lstm" else h_n)

    def forward(self, x: Tensor | PackedSequence, hx: State | None = None,
                lengths: Tensor | Sequence[int] | None = None
                ) -> tuple[Tensor | PackedSequence, State]:
        """x (T, B, I), (B, T, I) with batch_first, unbatched (T, I), or a PackedSequence,
        and hx the initial state -> (output of the same kind, final state); see the
        module's docstring."""
        lengths = as_lengths(lengths)
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise ValueError("a PackedSequence carries its own lengths; pass lengths "
                                 "only with a padded tensor")
            padded, lengths = pad_packed_sequence(x)  # (T, B, I), the caller's batch order
            check_call(self, padded.transpose(0, 1) if self.batch_first else padded, hx,
                       lengths)
            output, final = self._run(padded, hx, lengths)
            return repack_like(x, output, lengths), final
        check_call(self, x, hx, lengths)
        if x.dim() == 2:  # unbatched (T, I): a batch of one, in the middle as torch.nn does
            output, final = self._run(x[:, None], None if hx is None else
                                      each_part(hx, lambda s: s[:, None]), None)
            return output[:, 0], each_part(final, lambda s: s[:, 0])
        if self.batch_first:
            x = x.transpose(0, 1)
        output, final = self._run(x, hx, lengths)
        return (output.transpose(0, 1) if self.batch_first else output), final


class RNN(_Recurrent):
    """Elman RNN layer (tanh or relu), equivalent to torch.nn.RNN; its arguments in
    torch.nn.RNN's order, nonlinearity fourth."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, nonlinearity=nonlinearity)


class LSTM(_Recurrent):
    """LSTM layer, equivalent to torch.nn.LSTM, proj_size included.

    backward="autograd" (the default) runs core.cells.lstm_step under autograd;
    backward="bptt" runs core.bptt.LSTMThroughTime, the backward through time written
    out: faster on CPU, but first-order only and without proj_size."""

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0,
                 backward: str = "autograd") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size=proj_size, backward=backward)


class GRU(_Recurrent):
    """GRU layer, equivalent to torch.nn.GRU."""

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional)


class _TorchWithLengths:
    """Gives torch.nn's layers core's call: `forward(x, hx=None, lengths=None)`, packing
    the padded batch for torch when lengths are given. State_dict keys are unchanged."""

    def forward(self, x: Tensor | PackedSequence, hx: State | None = None,
                lengths: Tensor | Sequence[int] | None = None
                ) -> tuple[Tensor | PackedSequence, State]:
        lengths = as_lengths(lengths)
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise ValueError("a PackedSequence carries its own lengths; pass lengths "
                                 "only with a padded tensor")
            return super().forward(x, hx)
        check_call(self, x, hx, lengths)
        if lengths is None:
            return super().forward(x, hx)
        total = x.shape[1] if self.batch_first else x.shape[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=self.batch_first,
                                      enforce_sorted=False)
        output, final = super().forward(packed, hx)
        output, _ = pad_packed_sequence(output, batch_first=self.batch_first,
                                        total_length=total)
        return output, final


class TorchRNN(_TorchWithLengths, nn.RNN):
    """torch.nn.RNN with a `lengths` argument."""

    kind = "rnn"


class TorchLSTM(_TorchWithLengths, nn.LSTM):
    """torch.nn.LSTM with a `lengths` argument."""

    kind = "lstm"


class TorchGRU(_TorchWithLengths, nn.GRU):
    """torch.nn.GRU with a `lengths` argument."""

    kind = "gru"


LAYERS = {
    "torch": {"rnn": TorchRNN, "lstm": TorchLSTM, "gru": TorchGRU},
    "core": {"rnn": RNN, "lstm": LSTM, "gru": GRU},
}


def recurrent(cell: str, impl: str, input_size: int, hidden_size: int,
              **kwargs) -> nn.Module:
    """A recurrent layer: `cell` in rnn|lstm|gru, `impl` "torch" (torch.nn, fast) or
    "core" (this project's cells, same weights layout). Keyword arguments are torch.nn's,
    plus core's LSTM's `backward="bptt"` (core/bptt.py) with impl "core"."""
    if impl not in LAYERS:
        raise ValueError(f"impl must be one of {sorted(LAYERS)}, got {impl!r}")
    if cell not in LAYERS[impl]:
        raise ValueError(f"cell must be one of {sorted(LAYERS[impl])}, got {cell!r}")
    return LAYERS[impl][cell](input_size, hidden_size, **kwargs)
