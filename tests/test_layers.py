"""core's cells and layers against torch.nn with the same weights: outputs, final states
and gradients within 1e-5."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from core import cells, layers

torch.backends.cudnn.allow_tf32 = False
TOL = {"atol": 1e-5, "rtol": 1e-5}


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def gradients(module):
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("name, extra", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                         ("LSTMCell", {}), ("GRUCell", {}),
                                         ("GRUCell", {"bias": False})])
def test_cells_match_torch(name, extra):
    torch.manual_seed(0)
    reference = getattr(torch.nn, name)(5, 7, **extra)
    ours = getattr(cells, name)(5, 7, **extra)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, 5, requires_grad=True)
    h = torch.randn(3, 7)
    state = (h, torch.randn(3, 7)) if name == "LSTMCell" else h
    for hx in (None, state):
        x.grad = None
        expected, got = as_tuple(reference(x, hx)), as_tuple(ours(x, hx))
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, **TOL)
        sum(t.sum() for t in expected).backward()
        expected_x_grad = x.grad.clone()
        x.grad = None
        sum(t.sum() for t in got).backward()
        torch.testing.assert_close(x.grad, expected_x_grad, **TOL)
        for e, g in zip(gradients(reference), gradients(ours), strict=True):
            torch.testing.assert_close(g, e, **TOL)
        reference.zero_grad()
        ours.zero_grad()


CASES = list(itertools.product(["rnn", "lstm", "gru"], [1, 2], [False, True], [False, True]))


@pytest.mark.parametrize("cell, num_layers, bidirectional, batch_first", CASES)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_layers_match_torch(cell, num_layers, bidirectional, batch_first, with_lengths,
                            with_state):
    torch.manual_seed(1)
    kwargs = {"num_layers": num_layers, "bidirectional": bidirectional,
              "batch_first": batch_first}
    reference = getattr(torch.nn, cell.upper())(4, 6, **kwargs)
    ours = layers.recurrent(cell, "core", 4, 6, **kwargs)
    ours.load_state_dict(reference.state_dict())
    batch, steps = 5, 7
    x = torch.randn((batch, steps, 4) if batch_first else (steps, batch, 4), requires_grad=True)
    lengths = torch.tensor([7, 2, 5, 1, 7]) if with_lengths else None
    shape = (num_layers * (2 if bidirectional else 1), batch, 6)
    state = None
    if with_state:
        parts = [torch.randn(shape, requires_grad=True) for _ in range(2 if cell == "lstm" else 1)]
        state = tuple(parts) if cell == "lstm" else parts[0]

    # torch.nn's own way to run a padded batch: pack, run, unpack.
    if with_lengths:
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        out, expected_state = reference(packed, state)
        expected, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=steps)
    else:
        expected, expected_state = reference(x, state)
    loss = expected.pow(2).sum() + sum(s.pow(2).sum() for s in as_tuple(expected_state))
    loss.backward()
    expected_x_grad, x.grad = x.grad.clone(), None
    expected_state_grads = []
    for part in as_tuple(state) if with_state else ():
        expected_state_grads.append(part.grad.clone())
        part.grad = None

    got, got_state = ours(x, state, lengths=lengths)
    torch.testing.assert_close(got, expected, **TOL)
    for e, g in zip(as_tuple(expected_state), as_tuple(got_state), strict=True):
        torch.testing.assert_close(g, e, **TOL)
    (got.pow(2).sum() + sum(s.pow(2).sum() for s in as_tuple(got_state))).backward()
    torch.testing.assert_close(x.grad, expected_x_grad, **TOL)
    for part, expected_grad in zip(as_tuple(state) if with_state else (),
                                   expected_state_grads, strict=True):
        torch.testing.assert_close(part.grad, expected_grad, **TOL)
    for e, g in zip(gradients(reference), gradients(ours), strict=True):
        torch.testing.assert_close(g, e, **TOL)


@pytest.mark.parametrize("impl", ["torch", "core"])
def test_padded_steps_give_zero_output_and_state_from_last_real_step(impl):
    torch.manual_seed(2)
    layer = layers.recurrent("gru", impl, 3, 4, batch_first=True)
    x = torch.randn(2, 6, 3)
    out, h = layer(x, lengths=torch.tensor([6, 3]))
    alone, h_alone = layer(x[1:, :3])
    assert out[1, 3:].abs().max() == 0
    torch.testing.assert_close(out[1, :3], alone[0], **TOL)
    torch.testing.assert_close(h[:, 1], h_alone[:, 0], **TOL)


def test_torch_and_core_impl_share_state_dict_keys():
    for cell in ["rnn", "lstm", "gru"]:
        kwargs = {"num_layers": 2, "bidirectional": True}
        torch_keys = layers.recurrent(cell, "torch", 3, 4, **kwargs).state_dict().keys()
        core_keys = layers.recurrent(cell, "core", 3, 4, **kwargs).state_dict().keys()
        assert list(torch_keys) == list(core_keys)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(3)
    layer = layers.recurrent("lstm", "core", 3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    layer.eval()
    first, _ = layer(x)
    second, _ = layer(x)
    torch.testing.assert_close(first, second)
    layer.train()
    noisy, _ = layer(x)
    assert not torch.allclose(noisy, first)


@pytest.mark.parametrize("impl", ["torch", "core"])
def test_wrong_shapes_name_the_expected_shape(impl):
    layer = layers.recurrent("gru", impl, 3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"\(B, T, I\) with I=3"):
        layer(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"initial state must be \(1, 2, 4\)"):
        layer(torch.randn(2, 5, 3), torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="lengths must be"):
        layer(torch.randn(2, 5, 3), lengths=torch.tensor([6, 1]))


def test_unknown_cell_or_impl_is_refused():
    with pytest.raises(ValueError, match="impl must be"):
        layers.recurrent("gru", "jax", 3, 4)
    with pytest.raises(ValueError, match="cell must be"):
        layers.recurrent("transformer", "core", 3, 4)


def test_backward_is_not_quadratic_in_length():
    """The loop walks gi.unbind(0) instead of indexing gi[t]: the graph holds one Unbind
    node and no Select nodes, whose backward would each build a full-size zero tensor
    (quadratic work in T). Counted in the autograd graph, not timed."""
    layer = layers.recurrent("gru", "core", 2, 3)
    out, _ = layer(torch.randn(20, 1, 2))
    seen, stack = set(), [out.sum().grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    names = [type(node).__name__ for node in seen]
    assert any(name.startswith("Unbind") for name in names)
    assert not any(name.startswith("Select") for name in names)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_layers_without_bias_match_torch(cell):
    torch.manual_seed(4)
    kwargs = {"num_layers": 2, "bidirectional": True, "bias": False}
    reference = getattr(torch.nn, cell.upper())(4, 6, **kwargs)
    ours = layers.recurrent(cell, "core", 4, 6, **kwargs)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(7, 5, 4, requires_grad=True)
    expected, _ = reference(x)
    expected.pow(2).sum().backward()
    expected_x_grad, x.grad = x.grad.clone(), None
    got, _ = ours(x)
    torch.testing.assert_close(got, expected, **TOL)
    got.pow(2).sum().backward()
    torch.testing.assert_close(x.grad, expected_x_grad, **TOL)
    for e, g in zip(gradients(reference), gradients(ours), strict=True):
        torch.testing.assert_close(g, e, **TOL)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_lstm_written_out_backward_matches_finite_differences(reverse, with_mask):
    """LSTMThroughTime's hand-written backward against torch's numerical gradient, in
    float64, for every input: x, h0, c0, W_ih, W_hh and the bias (the loss reaches the
    output and the final h and c)."""
    torch.manual_seed(5)
    steps, batch, inputs, size = 4, 3, 2, 2
    shapes = [(steps, batch, inputs), (batch, size), (batch, size), (4 * size, inputs),
              (4 * size, size), (4 * size,)]
    tensors = [torch.randn(shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    mask = None
    if with_mask:
        lengths = torch.tensor([4, 1, 3])
        mask = (torch.arange(steps)[:, None] < lengths[None, :]).unsqueeze(-1)
    assert torch.autograd.gradcheck(
        lambda *inputs: layers.LSTMThroughTime.apply(*inputs, mask, reverse), tensors)
