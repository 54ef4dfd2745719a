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
because each index's gradient is a full-size tensor of zeros; so would writing each step
into a preallocated output (`out[t] = h`), whose every copy passes the whole output's
gradient back. The steps are collected with one `torch.stack`.

The LSTM layer runs through `LSTMThroughTime`, whose backward is written out below: see
its docstring for why.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from core.cells import GATES, gru_step, init_uniform, project_input, rnn_step

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


def _tanh(x: Tensor, out: Tensor) -> Tensor:
    """tanh(x) = 2σ(2x) - 1, written into `out` (which may be x). On our AMD CPU
    torch.tanh takes 43 µs for a (64, 256) tensor against torch.sigmoid's 8, and splits
    even so small a tensor across threads, which stalls when the other core is busy (it
    seems to go through MKL's vector maths); these four plain kernels take 18 µs."""
    return torch.mul(x, 2, out=out).sigmoid_().mul_(2).sub_(1)


def _steps(length: int, reverse: bool) -> range:
    """The order a direction walks the time steps in; reverse walks them back to front."""
    return range(length - 1, -1, -1) if reverse else range(length)


class LSTMThroughTime(torch.autograd.Function):
    """One LSTM layer in one direction over a whole sequence, its backward written out.

    autograd, stepping back through `lstm_step` T times, computes the recurrent weights'
    gradient at every step, a thin (4H, B) @ (B, H) matmul, adds the T results up, and
    runs a dozen small kernels per step besides; that left core's LSTM 1.15-1.2x (1
    thread) and 1.4-1.8x (2 threads) behind torch.nn, which fuses each step. Here the
    backward carries only dh and dc from step to step (one (B, 4H) @ (4H, H) matmul each)
    and collects the pre-activations' gradients dpre in one (T, B, 4H) tensor; the
    weights', bias's and input's gradients are then one matmul or sum each over all
    steps, e.g. dW_hh = Σ_t dpre_t^T h_{t-1}. The loops work in place in preallocated
    tensors, which autograd does not see (the gates are activated where the input
    projection put them). The forward is `lstm_step`'s equations; the tests hold outputs,
    states and every gradient to torch.nn's within 1e-5, and the backward to finite
    differences.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor,
                weight_hh: Tensor, bias: Tensor | None, mask: Tensor | None,
                reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        """x (T, B, I), h0 and c0 (B, H), bias = b_ih + b_hh (4H,) or None, mask (T, B, 1)
        or None -> output (T, B, H), final h and c."""
        size = h0.shape[1]
        g_cols = slice(2 * size, 3 * size)
        # g's rows of the weights and bias are doubled, here once per call, so that one
        # sigmoid over all four gates gives σ(i), σ(f), σ(2 g), σ(o) and then
        # tanh(g) = 2σ(2 g) - 1: one kernel per step where three sigmoids and a tanh were.
        scale = x.new_ones(4 * size)
        scale[g_cols] = 2
        # (T, B, 4H): every step's input projection in one matmul. Each step adds W_hh h
        # and activates in place, leaving σ(i), σ(f), tanh(g), σ(o) for the backward.
        gates = nn.functional.linear(x, weight_ih * scale[:, None],
                                     None if bias is None else bias * scale)
        weight_hh_t = (weight_hh * scale[:, None]).t()  # (H, 4H)
        output = x.new_empty(len(x), *h0.shape)  # (T, B, H): h after each step
        cell, tanh_c = torch.empty_like(output), torch.empty_like(output)  # c, tanh(c)
        h, c = h0, c0
        for t in _steps(len(x), reverse):
            gates[t].addmm_(h, weight_hh_t)  # pre = W_ih x + b_ih + W_hh h + b_hh (g's: 2 pre_g)
            gates[t].sigmoid_()  # i = σ(pre_i), f = σ(pre_f), o = σ(pre_o); σ(2 pre_g)
            i, f, g, o = gates[t].chunk(4, dim=1)  # views: input, forget, cell, output
            g.mul_(2).sub_(1)    # g = tanh(pre_g) = 2σ(2 pre_g) - 1, the candidate cell
            torch.mul(f, c, out=cell[t]).addcmul_(i, g)  # c' = f ⊙ c + i ⊙ g
            _tanh(cell[t], out=tanh_c[t])
            torch.mul(o, tanh_c[t], out=output[t])     # h' = o ⊙ tanh(c')
            if mask is not None:  # padded steps keep the previous state
                output[t] = torch.where(mask[t], output[t], h)
                cell[t] = torch.where(mask[t], cell[t], c)
            h, c = output[t], cell[t]
        ctx.save_for_backward(x, gates, output, cell, tanh_c, h0, c0, weight_ih, weight_hh,
                              mask)
        ctx.reverse = reverse
        return output, h.clone(), c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_output: Tensor, d_h: Tensor, d_c: Tensor
                 ) -> tuple[Tensor | None, ...]:
        """Gradients of the loss L for x, h0, c0, W_ih, W_hh and the bias, walking back."""
        x, gates, output, cell, tanh_c, h0, c0, weight_ih, weight_hh, mask = ctx.saved_tensors
        reverse, size = ctx.reverse, h0.shape[1]
        d_pre = torch.empty_like(gates)  # ∂L/∂pre per step, pre = W_ih x + W_hh h + b
        # One step's gradients are put together in two small reused tensors, then written
        # to d_pre[t] in one go: (B, 4H) each.
        d_gate, slope = torch.empty_like(gates[0]), torch.empty_like(gates[0])
        one = gates.new_ones(())
        dh, dc = d_h.clone(), d_c.clone()  # ∂L/∂h', ∂L/∂c' from the later steps
        for t in _steps(len(gates), not reverse):
            before = t + 1 if reverse else t - 1  # the step that made this one's h and c
            c_prev = cell[before] if 0 <= before < len(gates) else c0
            if mask is not None:
                dh_carry, dc_carry = dh + d_output[t], dc.clone()
            dh += d_output[t]                           # h' is also this step's output
            i, f, g, o = gates[t].chunk(4, dim=1)
            d_i, d_f, d_g, d_o = d_gate.chunk(4, dim=1)  # views: filled in place
            torch.mul(dh, tanh_c[t], out=d_o)           # ∂L/∂o = ∂L/∂h' ⊙ tanh(c')
            dc.addcmul_(dh * o, 1 - tanh_c[t] * tanh_c[t])  # ∂L/∂c' += ∂L/∂h' ⊙ o ⊙ tanh'
            torch.mul(dc, g, out=d_i)                   # ∂L/∂i = ∂L/∂c' ⊙ g
            torch.mul(dc, c_prev, out=d_f)              # ∂L/∂f = ∂L/∂c' ⊙ c
            torch.mul(dc, i, out=d_g)                   # ∂L/∂g = ∂L/∂c' ⊙ i
            # Back through the activations, four gates at once: σ' = σ - σ² for i, f, o;
            # tanh' = 1 - tanh² for g.
            torch.addcmul(gates[t], gates[t], gates[t], value=-1, out=slope)
            torch.addcmul(one, g, g, value=-1, out=slope[:, 2 * size:3 * size])
            dc.mul_(f)                                  # ∂L/∂c = ∂L/∂c' ⊙ f
            torch.mul(d_gate, slope, out=d_pre[t])
            if mask is not None:  # a padded step passed its state through untouched
                d_pre[t].mul_(mask[t])
            torch.mm(d_pre[t], weight_hh, out=dh)       # ∂L/∂h = ∂L/∂pre W_hh
            if mask is not None:
                dh = torch.where(mask[t], dh, dh_carry)
                dc = torch.where(mask[t], dc, dc_carry)
        # The state each step read: h0, then the outputs in the order the steps ran.
        h_prev = (torch.cat([output[1:], h0[None]]) if reverse
                  else torch.cat([h0[None], output[:-1]]))
        d_pre_2d = d_pre.flatten(0, 1)  # (T·B, 4H): all steps in each matmul below
        need = ctx.needs_input_grad
        d_x = d_pre @ weight_ih if need[0] else None                   # ∂L/∂pre W_ih
        d_weight_ih = d_pre_2d.t() @ x.flatten(0, 1) if need[3] else None  # Σ_t ∂L/∂pre_t^T x_t
        d_weight_hh = d_pre_2d.t() @ h_prev.flatten(0, 1)             # Σ_t ∂L/∂pre_t^T h_{t-1}
        d_bias = d_pre_2d.sum(0) if need[5] else None                  # Σ_t ∂L/∂pre_t
        return d_x, dh, dc, d_weight_ih, d_weight_hh, d_bias, None, None


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
                       suffix: str, mask: Tensor | None
                       ) -> tuple[Tensor, tuple[Tensor, Tensor | None]]:
        """One layer in one direction over (T, B, I) -> output (T, B, H), final (h, c)."""
        weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer, suffix)
        h, c = state
        if self.kind == "lstm":
            bias = None if bias_ih is None else bias_ih + bias_hh
            output, h, c = LSTMThroughTime.apply(x, h, c, weight_ih, weight_hh, bias, mask,
                                                 bool(suffix))
            return output, (h, c)
        # (T, B, G): every step in one matmul; b_hh joins it except in the GRU (cells.py).
        gi = project_input(x, weight_ih, bias_ih, None if self.kind == "gru" else bias_hh)
        weight_hh_t = weight_hh.t()  # (H, G), once per sequence
        outputs: list[Tensor] = [h] * len(gi)
        projections = gi.unbind(0)
        for t in _steps(len(gi), reverse=bool(suffix)):
            if self.kind == "gru":
                h_new = gru_step(projections[t], h, weight_hh_t, bias_hh)
            else:
                h_new = rnn_step(projections[t], h, weight_hh_t, self.nonlinearity)
            if mask is not None:  # padded steps keep the previous state
                h_new = torch.where(mask[t], h_new, h)
            h = h_new
            outputs[t] = h
        return torch.stack(outputs), (h, None)

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
            mask = valid.unsqueeze(-1)  # (T, B, 1)
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
            output = output * mask.to(output.dtype)  # zeros at padded steps
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
