"""core's cells and layers against torch.nn with the same weights: outputs, final states
and gradients within 1e-5."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from core import bptt, cells, layers

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


# (cell, core's options): the LSTM both ways, under autograd and through core.bptt
KINDS = [("rnn", {}), ("lstm", {}), ("lstm", {"backward": "bptt"}), ("gru", {})]
CASES = [(cell, options, *rest) for (cell, options), *rest
         in itertools.product(KINDS, [1, 2], [False, True], [False, True])]


@pytest.mark.parametrize("cell, options, num_layers, bidirectional, batch_first", CASES)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_layers_match_torch(cell, options, num_layers, bidirectional, batch_first,
                            with_lengths, with_state):
    torch.manual_seed(1)
    kwargs = {"num_layers": num_layers, "bidirectional": bidirectional,
              "batch_first": batch_first}
    reference = getattr(torch.nn, cell.upper())(4, 6, **kwargs)
    ours = layers.recurrent(cell, "core", 4, 6, **kwargs, **options)
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
    """core.bptt's hand-written backward against torch's numerical gradient, in
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
        lambda *inputs: bptt.LSTMThroughTime.apply(*inputs, mask, reverse), tensors)


def flat(*values):
    """Tensors of nested outputs: a PackedSequence gives its data, a state its parts."""
    out = []
    for value in values:
        if value is None:  # no initial state
            continue
        if isinstance(value, torch.nn.utils.rnn.PackedSequence):
            out.append(value.data)
        elif isinstance(value, tuple):
            out.extend(flat(*value))
        else:
            out.append(value)
    return out


def assert_same_run(reference, ours, run, inputs):
    """run(layer) -> tensors; both layers give equal tensors and equal gradients of the sum
    of their squares for every tensor of `inputs` and every parameter."""
    results = []
    for layer in (reference, ours):
        for tensor in inputs:
            tensor.grad = None
        got = run(layer)
        sum(t.pow(2).sum() for t in got).backward()
        results.append((got, [t.grad.clone() for t in inputs], gradients(layer)))
    (expected, expected_inputs, expected_params), (got, got_inputs, got_params) = results
    for e, g in zip(expected + expected_inputs + expected_params,
                    got + got_inputs + got_params, strict=True):
        torch.testing.assert_close(g, e, **TOL)


def pair(cell, **kwargs):
    """torch.nn's layer and core's with the same weights; core's options in `kwargs`
    (backward) are not passed to torch."""
    options = {k: kwargs.pop(k) for k in ("backward",) if k in kwargs}
    reference = getattr(torch.nn, cell.upper())(4, 6, **kwargs)
    ours = layers.recurrent(cell, "core", 4, 6, **kwargs, **options)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def random_state(cell, shape, proj_size=0):
    if cell != "lstm":
        return torch.randn(shape, requires_grad=True)
    return (torch.randn(*shape[:-1], proj_size or shape[-1], requires_grad=True),
            torch.randn(shape, requires_grad=True))


@pytest.mark.parametrize("cell, options", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_packed_sequence_in_packed_sequence_out(cell, options, bidirectional,
                                                enforce_sorted, with_state):
    """As torch.nn: the output packed like the input, the final state at each sequence's
    real end in the caller's order. batch_first does not change a packed input."""
    torch.manual_seed(6)
    reference, ours = pair(cell, num_layers=2, bidirectional=bidirectional,
                           batch_first=True, **options)
    lengths = torch.tensor([7, 5, 5, 2, 1]) if enforce_sorted else torch.tensor([2, 7, 5, 1, 5])
    x = torch.randn(5, 7, 4, requires_grad=True)
    state = random_state(cell, (4 if bidirectional else 2, 5, 6)) if with_state else None

    def run(layer):
        packed = pack_padded_sequence(x, lengths, batch_first=True,
                                      enforce_sorted=enforce_sorted)
        output, final = layer(packed, state)
        assert torch.equal(output.batch_sizes, packed.batch_sizes)
        for name in ("sorted_indices", "unsorted_indices"):
            a, b = getattr(output, name), getattr(packed, name)
            assert (a is None and b is None) or torch.equal(a, b)
        return flat(output, final)

    assert_same_run(reference, ours, run, [x, *flat(state)])


@pytest.mark.parametrize("cell, options", [*KINDS, ("lstm", {"proj_size": 3})])
@pytest.mark.parametrize("with_state", [False, True])
def test_unbatched_input_gives_unbatched_output_and_state(cell, options, with_state):
    torch.manual_seed(7)
    reference, ours = pair(cell, num_layers=2, bidirectional=True, batch_first=True,
                           **options)
    x = torch.randn(5, 4, requires_grad=True)  # (T, I): batch_first does not apply
    state = random_state(cell, (4, 6), options.get("proj_size", 0)) if with_state else None
    # hx= by name, as torch.nn calls it
    assert_same_run(reference, ours, lambda layer: flat(layer(x, hx=state)), [x, *flat(state)])
    output, final = ours(x, state)
    assert output.shape == (5, 2 * options.get("proj_size", 6))
    assert all(part.dim() == 2 for part in flat(final))


@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("how", ["whole", "lengths", "packed"])
def test_lstm_proj_size_matches_torch(num_layers, bidirectional, how):
    torch.manual_seed(8)
    reference, ours = pair("lstm", num_layers=num_layers, bidirectional=bidirectional,
                           proj_size=3)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    assert list(ours.state_dict()) == list(reference.state_dict())
    x = torch.randn(7, 5, 4, requires_grad=True)
    lengths = torch.tensor([7, 2, 5, 1, 7])
    state = random_state("lstm", (num_layers * (1 + bidirectional), 5, 6), proj_size=3)

    def run(layer):
        if how == "whole":
            return flat(layer(x, state))
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        if how == "packed" or isinstance(layer, torch.nn.LSTM):
            output, final = layer(packed, state)
            return flat(pad_packed_sequence(output, total_length=7)[0], final)
        return flat(layer(x, state, lengths=lengths))

    assert_same_run(reference, ours, run, [x, *state])


@pytest.mark.parametrize("cell, options", [("rnn", {}), ("lstm", {}), ("lstm", {"proj_size": 3}),
                                           ("gru", {})])
def test_double_backward_a_gradient_penalty_matches_torch(cell, options):
    """The gradient of ‖∂out/∂x‖², which needs the backward differentiated again."""
    torch.manual_seed(9)
    reference, ours = pair(cell, num_layers=2, bidirectional=True, **options)
    x = torch.randn(6, 3, 4, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])

    def run(layer):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        output, final = layer(packed)
        (grad_x,) = torch.autograd.grad(sum(t.sum() for t in flat(output, final)), x,
                                        create_graph=True)
        return [grad_x]

    assert_same_run(reference, ours, run, [x])


def test_double_backward_passes_gradgradcheck_in_float64():
    torch.manual_seed(10)
    layer = layers.LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2).double()
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: layer(x)[0], [x])


def test_bptt_is_first_order_and_has_no_proj_size():
    layer = layers.LSTM(4, 6, backward="bptt")
    x = torch.randn(5, 2, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="first-order only"):
        torch.autograd.grad(layer(x)[0].sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="proj_size"):
        layers.LSTM(4, 6, proj_size=2, backward="bptt")
    with pytest.raises(ValueError, match="backward must be one of"):
        layers.LSTM(4, 6, backward="manual")


def test_default_lstm_trains_the_cells_equations():
    """The default LSTM's graph is lstm_step's own operations: torch.tanh included, and no
    core.bptt node."""
    out, _ = layers.LSTM(2, 3)(torch.randn(4, 1, 2))
    seen, stack = set(), [out.sum().grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    names = {type(node).__name__ for node in seen}
    assert "TanhBackward0" in names and "SigmoidBackward0" in names
    assert not any("LSTMThroughTime" in name for name in names)


@pytest.mark.parametrize("kwargs", [{"dropout": 1.5}, {"dropout": True}, {"hidden_size": 0},
                                    {"num_layers": 0}, {"proj_size": -1}, {"proj_size": 6}])
def test_bad_options_raise_torch_errors(kwargs):
    arguments = {"input_size": 4, "hidden_size": 6, **kwargs}
    with pytest.raises(ValueError) as expected:
        torch.nn.LSTM(**arguments)
    with pytest.raises(ValueError, match=str(expected.value).replace("[", r"\[")
                       .replace("]", r"\]")):
        layers.LSTM(**arguments)


def test_dropout_with_one_layer_warns_as_torch_does():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        layers.GRU(4, 6, dropout=0.5)


def test_rnn_takes_nonlinearity_fourth_as_torch_does():
    torch.manual_seed(11)
    reference, ours = torch.nn.RNN(4, 6, 2, "relu"), layers.RNN(4, 6, 2, "relu")
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, 2, 4)
    torch.testing.assert_close(ours(x)[0], reference(x)[0], **TOL)


@pytest.mark.parametrize("impl", ["torch", "core"])
def test_misuse_of_packed_unbatched_and_lstm_state_is_refused(impl):
    layer = layers.recurrent("lstm", impl, 3, 4)
    x = torch.randn(5, 2, 3)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]))
    with pytest.raises(ValueError, match="carries its own lengths"):
        layer(packed, lengths=torch.tensor([5, 3]))
    with pytest.raises(ValueError, match="lengths needs a batched input"):
        layer(x[:, 0], lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match=r"state is a tuple \(h, c\)"):
        layer(x, torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"initial state c must be \(1, 4\)"):
        layer(x[:, 0], (torch.zeros(1, 4), torch.zeros(1, 2, 4)))


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("with_state", [False, True])
def test_cells_take_an_unbatched_input(name, with_state):
    torch.manual_seed(12)
    reference, ours = getattr(torch.nn, name)(5, 7), getattr(cells, name)(5, 7)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(5, requires_grad=True)
    state = None
    if with_state:
        state = torch.randn(7, requires_grad=True)
        state = (state, torch.randn(7, requires_grad=True)) if name == "LSTMCell" else state
    assert_same_run(reference, ours, lambda cell: flat(cell(x, state)), [x, *flat(state)])
    assert all(t.shape == (7,) for t in flat(ours(x, state)))
    with pytest.raises(ValueError, match=r"expects a state \(7,\) for input \(5,\)"):
        ours(x, (torch.zeros(1, 7),) * 2 if name == "LSTMCell" else torch.zeros(1, 7))
    with pytest.raises(ValueError, match=r"expects input \(B, 5\) or unbatched \(5,\)"):
        ours(torch.zeros(2, 3, 5))


class LessonTutorialRNN(torch.nn.Module):
    """The char-RNN tutorial's class as the lesson writes it, line for line."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = torch.nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = torch.nn.Linear(input_size + hidden_size, output_size)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = torch.sigmoid(self.i2h(combined))
        output = torch.sigmoid(self.i2o(combined))
        return output, hidden


def test_tutorial_cell_matches_the_lessons_class():
    """Stepped over a sequence, TutorialRNNCell gives the lesson's outputs, hidden states
    and gradients with the same weights; unbatched it gives the batch of one's."""
    torch.manual_seed(13)
    reference, ours = LessonTutorialRNN(5, 7, 3), cells.TutorialRNNCell(5, 7, 3)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(4, 2, 5, requires_grad=True)  # (T, B, I)

    def run(cell):
        h, got = torch.zeros(2, 7), []
        for x_t in x:
            y, h = cell(x_t, h)
            got += [y, h]
        return got

    assert_same_run(reference, ours, run, [x])
    y, h = ours(x[0, 0])
    torch.testing.assert_close(y, ours(x[0, :1])[0][0])
    assert y.shape == (3,) and h.shape == (7,)


def test_layers_survive_deepcopy_and_pickle():
    import copy
    import pickle

    torch.manual_seed(14)
    x = torch.randn(3, 2, 4)
    for layer in (layers.LSTM(4, 6, proj_size=2), layers.LSTM(4, 6, backward="bptt")):
        for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
            torch.testing.assert_close(clone(x)[0], layer(x)[0])


@pytest.mark.parametrize("impl", ["core", "torch"])
def test_lengths_may_be_a_list_and_an_empty_input_says_why(impl):
    layer = layers.recurrent("gru", impl, 4, 5)
    x = torch.randn(7, 3, 4)
    as_list, _ = layer(x, lengths=[7, 2, 5])
    as_tensor, _ = layer(x, lengths=torch.tensor([7, 2, 5]))
    torch.testing.assert_close(as_list, as_tensor)
    with pytest.raises(ValueError, match="at least one time step"):
        layer(torch.randn(0, 3, 4))
