"""The lessons' programs, the small scripts the tasks grew from, run on torch.nn and on
core with the same weights: outputs, states and gradients equal within 1e-5.

Each lesson is written as a learner first writes it, on torch.nn's classes; the test
then swaps in core's class of the same name (`torch.nn.GRU` -> `core.layers.GRU`),
copies the weights across and runs both. ConvLSTM has no torch.nn class, so its lesson
compares core.convlstm with the widely copied implementation (ndrplz/ConvLSTM_pytorch),
written here with nn.Conv2d.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from core import cells, layers
from core.convlstm import ConvLSTM, ConvLSTMCell
from tasks.char_transduce import train as char_transduce

TOL = {"atol": 1e-5, "rtol": 1e-5}


def assert_same(reference: nn.Module, ours: nn.Module, run, inputs=()) -> None:
    """Copy reference's weights into ours; run(model) -> (tensors to compare, loss). Both
    models give equal tensors and equal gradients of the loss for every parameter and
    every tensor of `inputs`."""
    ours.load_state_dict(reference.state_dict())
    results = []
    for model in (reference, ours):
        for tensor in inputs:
            tensor.grad = None
        tensors, loss = run(model)
        loss.backward()
        results.append((list(tensors), [t.grad.clone() for t in inputs],
                        {name: p.grad.clone() for name, p in model.named_parameters()}))
    (expected, expected_inputs, expected_params), (got, got_inputs, got_params) = results
    for e, g in zip(expected + expected_inputs, got + got_inputs, strict=True):
        torch.testing.assert_close(g, e, **TOL)
    assert expected_params.keys() == got_params.keys()
    for name, e in expected_params.items():
        torch.testing.assert_close(got_params[name], e, **TOL, msg=f"gradient of {name}")


# hello -> ohlol: the first RNN lesson. Four characters, one-hot; the hidden state has one
# unit per character and is read as the logits.
CHARS = ["h", "e", "l", "o"]
X_HELLO = nn.functional.one_hot(torch.tensor([CHARS.index(c) for c in "hello"]), 4).float()
Y_OHLOL = torch.tensor([CHARS.index(c) for c in "ohlol"])


def test_hello_ohlol_with_an_rnn_cell_stepped_in_a_loop():
    """The lesson steps nn.RNNCell one character at a time, unbatched: x (4,), h (4,)."""
    torch.manual_seed(0)

    def run(cell):
        h, outputs, loss = torch.zeros(4), [], 0.0
        for x, y in zip(X_HELLO, Y_OHLOL, strict=True):  # x (4,) one character
            h = cell(x, h)                                # h (4,): the logits
            loss = loss + nn.functional.cross_entropy(h, y)
            outputs.append(h)
        return outputs, loss

    assert_same(nn.RNNCell(4, 4), cells.RNNCell(4, 4), run)


def test_hello_ohlol_with_an_rnn_over_the_whole_sequence():
    """The next lesson gives nn.RNN all five characters at once: (B=1, T=5, I=4)."""
    torch.manual_seed(1)

    def run(rnn):
        output, h = rnn(X_HELLO[None], torch.zeros(1, 1, 4))  # (1, 5, 4), (1, 1, 4)
        return [output, h], nn.functional.cross_entropy(output[0], Y_OHLOL)

    assert_same(nn.RNN(4, 4, batch_first=True), layers.RNN(4, 4, batch_first=True), run)


class NameClassifier(nn.Module):
    """Embedding -> 2-layer bidirectional GRU over a packed batch -> Linear on the last
    layer's two final states, as the name-classification lesson wrote it."""

    def __init__(self, gru: type[nn.Module], letters: int, languages: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(letters, 8, padding_idx=0)
        self.gru = gru(8, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * 16, languages)

    def forward(self, names: torch.Tensor, lengths: torch.Tensor):
        packed = pack_padded_sequence(self.embedding(names), lengths, batch_first=True,
                                      enforce_sorted=False)
        output, h = self.gru(packed)  # h (num_layers * 2, B, 16)
        return self.out(torch.cat([h[-2], h[-1]], dim=1)), output, h  # (B, languages)


def test_name_classifier_embedding_packed_bidirectional_gru_linear():
    torch.manual_seed(2)
    lengths = torch.tensor([3, 7, 5, 1, 7, 2])  # unsorted, with ties, as names come
    names = torch.randint(1, 20, (6, 7)) * (torch.arange(7)[None] < lengths[:, None])
    languages = torch.tensor([0, 3, 1, 2, 3, 0])

    def run(model):
        logits, output, h = model(names, lengths)
        return [logits, output.data, h], nn.functional.cross_entropy(logits, languages)

    assert_same(NameClassifier(nn.GRU, 20, 4), NameClassifier(layers.GRU, 20, 4), run)


class Sin2Cos(nn.Module):
    """sin in, cos out: an RNN and a Linear read-out at every step."""

    def __init__(self, rnn: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = rnn(1, 16, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None):
        output, h = self.rnn(x, h)  # (B, T, 16), (1, B, 16)
        return self.head(output), h


def test_sin_to_cos_with_a_carried_state():
    """The sequence is fed in chunks; each chunk starts from the state the last one left,
    detached (truncated backpropagation through time)."""
    torch.manual_seed(3)
    t = torch.linspace(0, 12, 60)[None, :, None] + torch.rand(4, 1, 1) * 6  # (4, 60, 1)
    x, y = torch.sin(t), torch.cos(t)

    def run(model):
        h, predictions, loss = None, [], 0.0
        for x_chunk, y_chunk in zip(x.split(20, dim=1), y.split(20, dim=1), strict=True):
            prediction, h = model(x_chunk, h)
            loss = loss + nn.functional.mse_loss(prediction, y_chunk)
            predictions.append(prediction)
            h = h.detach()  # carried, but gradients stop at the chunk's start
        return [*predictions, h], loss

    assert_same(Sin2Cos(nn.RNN), Sin2Cos(layers.RNN), run)


class Forecaster(nn.Module):
    """10 steps of 7 variables in, 3 steps of 1 variable out: (B, 10, 7) -> (B, 3, 1),
    read off the last step's output."""

    def __init__(self, rnn: type[nn.Module], **options) -> None:
        super().__init__()
        self.rnn = rnn(7, 32, batch_first=True, **options)
        self.head = nn.Linear(options.get("proj_size") or 32, 3)

    def forward(self, x: torch.Tensor):
        output, state = self.rnn(x)                  # (B, 10, H or proj_size)
        return self.head(output[:, -1])[..., None], state  # (B, 3, 1)


def test_rnn_and_lstm_forecasters_7_variables_10_steps_to_3():
    torch.manual_seed(4)
    x, y = torch.randn(8, 10, 7), torch.randn(8, 3, 1)

    def run(model):
        prediction, state = model(x)
        parts = list(state) if isinstance(state, tuple) else [state]
        return [prediction, *parts], nn.functional.mse_loss(prediction, y)

    assert_same(Forecaster(nn.RNN), Forecaster(layers.RNN), run)
    assert_same(Forecaster(nn.LSTM, proj_size=8), Forecaster(layers.LSTM, proj_size=8), run)


class CopiedConvLSTMCell(nn.Module):
    """ndrplz/ConvLSTM_pytorch's cell, the widely copied one, with nn.Conv2d."""

    def __init__(self, input_dim, hidden_dim, kernel_size, bias):
        super().__init__()
        self.hidden_dim = hidden_dim
        padding = kernel_size[0] // 2, kernel_size[1] // 2
        self.conv = nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size,
                              padding=padding, bias=bias)

    def forward(self, input_tensor, cur_state):
        h_cur, c_cur = cur_state
        combined = torch.cat([input_tensor, h_cur], dim=1)
        cc_i, cc_f, cc_o, cc_g = torch.split(self.conv(combined), self.hidden_dim, dim=1)
        i, f, o = torch.sigmoid(cc_i), torch.sigmoid(cc_f), torch.sigmoid(cc_o)
        g = torch.tanh(cc_g)
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next


class CopiedConvLSTM(nn.Module):
    """Its stack: each layer runs the whole sequence, batch first, from zero states."""

    def __init__(self, input_dim, hidden_dims, kernel_sizes):
        super().__init__()
        dims = [input_dim, *hidden_dims]
        self.cells = nn.ModuleList(CopiedConvLSTMCell(dims[n], dims[n + 1], kernel_sizes[n],
                                                      True) for n in range(len(hidden_dims)))

    def forward(self, x):  # (B, T, C, H, W)
        layer_input, last_states = x, []
        for cell in self.cells:
            b, _, _, height, width = layer_input.shape
            h = c = x.new_zeros(b, cell.hidden_dim, height, width)
            outputs = []
            for t in range(layer_input.shape[1]):
                h, c = cell(layer_input[:, t], [h, c])
                outputs.append(h)
            layer_input = torch.stack(outputs, dim=1)
            last_states.append((h, c))
        return layer_input, last_states


def test_convlstm_cell_and_stack_match_the_copied_implementation():
    """core's parameter names are cells.{n}.conv.*, the copy's the same: the state_dict
    loads across, and the gate order i, f, o, g is the copy's."""
    torch.manual_seed(5)
    x = torch.randn(2, 4, 3, 6, 5, requires_grad=True)  # (B, T, C, H, W)
    state = (torch.randn(2, 4, 6, 5), torch.randn(2, 4, 6, 5))  # (B, Hd, H, W) each

    def run_cell(cell):
        h, c = cell(x[:, 0], state)
        return [h, c], h.pow(2).sum() + c.pow(2).sum()

    assert_same(CopiedConvLSTMCell(3, 4, (3, 5), True), ConvLSTMCell(3, 4, (3, 5)), run_cell,
                [x])

    def run_stack(model):
        output, state = model(x)
        parts = [t for h_c in state for t in h_c]
        return [output, *parts], output.pow(2).sum() + sum(t.pow(2).sum() for t in parts)

    assert_same(CopiedConvLSTM(3, [4, 2], [(3, 3), (3, 5)]),
                ConvLSTM(3, [4, 2], [(3, 3), (3, 5)], num_layers=2, batch_first=True),
                run_stack, [x])


def test_the_tutorial_rnn_trains_in_char_transduce(tmp_path, capsys):
    """The char-RNN tutorial's cell has no torch.nn class: core.cells.TutorialRNNCell,
    checked against the lesson's class in test_layers; here it runs as a task model."""
    char_transduce.main(["--model", "tutorial", "--dry-run", "--threads", "1",
                         "--run-dir", str(tmp_path)])
    assert "seeds reached the exact target" in capsys.readouterr().out
    assert (tmp_path / "metrics.json").exists()
