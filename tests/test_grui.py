"""core.cells.GRUICell: one step by hand, gradcheck, torch.nn.GRUCell when the decay is
switched off (W_β = 0, b_β = 0), and an older observation leaving less of h."""

import math

import pytest
import torch
from torch.func import functional_call

from core import cells

torch.backends.cudnn.allow_tf32 = False
TOL = {"atol": 1e-5, "rtol": 1e-5}


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_one_step_by_hand():
    """I = 2, H = 1, gate rows r, z, n. W_β δ + b_β is 1.5 for the first row (β = e^-1.5)
    and -0.25 for the second, where max(0, .) holds β at 1."""
    cell = cells.GRUICell(2, 1)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.1, 0.2], [0.3, -0.1], [0.5, 0.4]]))
        cell.weight_hh.copy_(torch.tensor([[0.2], [-0.3], [0.6]]))
        cell.bias_ih.copy_(torch.tensor([0.1, 0.0, -0.1]))
        cell.bias_hh.copy_(torch.tensor([0.05, 0.1, 0.2]))
        cell.weight_delta.copy_(torch.tensor([[0.5, 0.25]]))
        cell.bias_delta.copy_(torch.tensor([-0.5]))
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    delta = torch.tensor([[2.0, 4.0], [0.0, 1.0]])
    h = torch.tensor([[0.8], [-0.4]])

    expected = []
    for (x1, x2), (d1, d2), (h0,) in zip(x.tolist(), delta.tolist(), h.tolist(), strict=True):
        beta = math.exp(-max(0.0, 0.5 * d1 + 0.25 * d2 - 0.5))
        hd = beta * h0
        r = sigmoid(0.1 * x1 + 0.2 * x2 + 0.1 + 0.2 * hd + 0.05)
        z = sigmoid(0.3 * x1 - 0.1 * x2 + 0.0 - 0.3 * hd + 0.1)
        n = math.tanh(0.5 * x1 + 0.4 * x2 - 0.1 + r * (0.6 * hd + 0.2))
        expected.append([(1 - z) * n + z * hd])
    torch.testing.assert_close(cell(x, delta, h), torch.tensor(expected), **TOL)


def test_gradcheck_in_float64():
    """Gradients of x, δ, h and every weight (W_β and b_β among them) against finite
    differences. δ is positive as times are; some units' W_β δ + b_β fall below 0, where
    β = 1 and its gradient is 0, and the rest above."""
    torch.manual_seed(3)
    cell = cells.GRUICell(3, 4).double()
    names = [name for name, _ in cell.named_parameters()]
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    delta = (3 * torch.rand(2, 3, dtype=torch.float64)).requires_grad_()
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def step(x, delta, h, *weights):
        return functional_call(cell, dict(zip(names, weights, strict=True)), (x, delta, h))

    pre = delta.detach() @ params[names.index("weight_delta")].detach().t() \
        + params[names.index("bias_delta")].detach()
    assert (pre > 0).any() and (pre < 0).any() and pre.abs().min() > 1e-3
    assert torch.autograd.gradcheck(step, (x, delta, h, *params))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_without_decay_it_is_torch_grucell(bias, batched, with_state):
    """W_β = 0 and b_β = 0 give β = 1 whatever δ: outputs and the gradients of x, h and the
    GRU's weights equal torch.nn.GRUCell's with the same weights."""
    torch.manual_seed(5)
    reference, ours = torch.nn.GRUCell(5, 7, bias=bias), cells.GRUICell(5, 7, bias=bias)
    missing = ours.load_state_dict(reference.state_dict(), strict=False).missing_keys
    assert sorted(missing) == (["bias_delta", "weight_delta"] if bias else ["weight_delta"])
    with torch.no_grad():
        for name in missing:
            getattr(ours, name).zero_()
    shape = (3, 5) if batched else (5,)
    x = torch.randn(shape, requires_grad=True)
    delta = 10 * torch.rand(shape)
    h = torch.randn(*shape[:-1], 7, requires_grad=True) if with_state else None
    inputs = [x] if h is None else [x, h]

    results = []
    for run in (lambda: reference(x, h), lambda: ours(x, delta, h)):
        for t in inputs:
            t.grad = None
        out = run()
        out.pow(2).sum().backward()
        results.append([out, *(t.grad.clone() for t in inputs)])
    assert results[1][0].shape == (*shape[:-1], 7)
    for e, g in zip(*results, strict=True):
        torch.testing.assert_close(g, e, **TOL)
    for name, p in reference.named_parameters():
        torch.testing.assert_close(getattr(ours, name).grad, p.grad, **TOL)


def test_an_older_observation_leaves_less_of_h():
    """With W_β >= 0 and b_β = 0, a larger δ gives a smaller β, so h reaches h' less: the
    Jacobian dh'/dh (at h = 0, where it is the GRU's Jacobian times diag(β)) shrinks as δ
    grows, and after a long gap h' is what a zero state gives."""
    torch.manual_seed(7)
    cell = cells.GRUICell(3, 4)
    with torch.no_grad():
        cell.weight_delta.abs_()
        cell.bias_delta.zero_()
    x = torch.randn(3)
    zero = torch.zeros(4)

    def influence(gap: float) -> float:
        delta = torch.full((3,), gap)
        jacobian = torch.autograd.functional.jacobian(lambda h: cell(x, delta, h), zero)
        return jacobian.norm().item()

    norms = [influence(gap) for gap in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(norms, norms[1:], strict=False)), norms
    h = torch.randn(4)
    just_seen = torch.nn.GRUCell(3, 4)
    just_seen.load_state_dict(cell.state_dict(), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, torch.zeros(3), h), just_seen(x, h), **TOL)
        torch.testing.assert_close(cell(x, torch.full((3,), 1e3), h), cell(x, torch.zeros(3)),
                                   **TOL)


def test_a_delta_of_another_shape_is_refused():
    cell = cells.GRUICell(3, 4)
    with pytest.raises(ValueError, match=r"delta of the input's shape \(2, 3\), got \(2, 4\)"):
        cell(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"expects a state \(2, 4\)"):
        cell(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(4))
