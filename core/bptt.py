"""Backpropagation through time written out by hand, for one LSTM layer: a lesson in
what autograd does for a recurrent layer, and a faster path for the LSTM.

    core.LSTM(input_size, hidden_size, ..., backward="bptt")   # this module
    core.LSTM(input_size, hidden_size, ...)                    # default: autograd

By default core.LSTM runs `core.cells.lstm_step` under autograd, which records every
step and walks them back. Here the forward runs the same equations and the backward is
written out below: it carries only ∂L/∂h and ∂L/∂c from step to step (one (B, 4H) @
(4H, H) matmul each) and collects the pre-activations' gradients ∂L/∂pre in one
(T, B, 4H) tensor; the weights', bias's and input's gradients are then one matmul or sum
each over all steps, e.g. ∂L/∂W_hh = Σ_t ∂L/∂pre_t^T h_{t-1}. autograd instead computes
∂L/∂W_hh at every step, a thin (4H, B) @ (B, H) matmul, adds the T results up, and runs a
dozen small kernels per step besides.

What this path does not do, for a reason:
- double backward (a gradient penalty): the backward is plain tensor code that autograd
  does not record, so a backward with create_graph=True raises rather than return
  gradients that silently drop the second-order terms; use the default.
- proj_size: the projection would need its own backward; core.LSTM refuses the pair.

Both loops work in place in preallocated tensors, which autograd does not see (the gates
are activated where the input projection put them), and tanh(g) is computed as
2σ(2 g) - 1 so that one sigmoid activates all four gates. tests/test_layers.py holds
outputs, states and every gradient to torch.nn's within 1e-5, and the backward to finite
differences.

Shapes: T steps, B batch, I input size, H hidden size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx


def steps(length: int, reverse: bool) -> range:
    """The order a direction walks the time steps in; reverse walks them back to front."""
    return range(length - 1, -1, -1) if reverse else range(length)


def _tanh(x: Tensor, out: Tensor) -> Tensor:
    """tanh(x) = 2σ(2x) - 1, written into `out` (which may be x). On some CPUs torch.tanh
    is several times slower than torch.sigmoid on the same tensor and splits even a small
    one across threads, which stalls when another core is busy; four plain kernels are
    faster there."""
    return torch.mul(x, 2, out=out).sigmoid_().mul_(2).sub_(1)


class LSTMThroughTime(torch.autograd.Function):
    """One LSTM layer in one direction over a whole sequence, its backward written out.

    apply(x, h0, c0, weight_ih, weight_hh, bias, mask, reverse) -> output, final h, c:
    x (T, B, I), h0 and c0 (B, H), bias = b_ih + b_hh (4H,) or None, mask (T, B, 1) or
    None (padded steps keep the previous state), reverse walks T-1 .. 0.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor,
                weight_hh: Tensor, bias: Tensor | None, mask: Tensor | None,
                reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        """x (T, B, I) -> output (T, B, H), final h and c (B, H)."""
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
        for t in steps(len(x), reverse):
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
    def backward(ctx: FunctionCtx, d_output: Tensor, d_h: Tensor, d_c: Tensor
                 ) -> tuple[Tensor | None, ...]:
        """Gradients of the loss L for x, h0, c0, W_ih, W_hh and the bias, walking back."""
        if torch.is_grad_enabled():  # autograd turns grad mode on for create_graph=True
            raise RuntimeError("core.bptt's backward is first-order only: a gradient of "
                               "a gradient needs core.LSTM's default backward='autograd'")
        x, gates, output, cell, tanh_c, h0, c0, weight_ih, weight_hh, mask = ctx.saved_tensors
        reverse, size = ctx.reverse, h0.shape[1]
        d_pre = torch.empty_like(gates)  # ∂L/∂pre per step, pre = W_ih x + W_hh h + b
        # One step's gradients are put together in two small reused tensors, then written
        # to d_pre[t] in one go: (B, 4H) each.
        d_gate, slope = torch.empty_like(gates[0]), torch.empty_like(gates[0])
        one = gates.new_ones(())
        dh, dc = d_h.clone(), d_c.clone()  # ∂L/∂h', ∂L/∂c' from the later steps
        for t in steps(len(gates), not reverse):
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
