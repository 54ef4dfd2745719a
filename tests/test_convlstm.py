"""core.convlstm (shapes, the cell's equations against nn.LSTMCell, state in and out) and
the convlstm_grid task (its generator, a smoke run, a bad flag)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from core.convlstm import ConvLSTM, ConvLSTMCell
from tasks.convlstm_grid.train import blob_width, make_sequences, trajectories


def test_cell_shapes_and_zero_initial_state():
    cell = ConvLSTMCell(3, 5, kernel_size=(3, 5))
    x = torch.randn(2, 3, 7, 9)
    h, c = cell(x)
    assert h.shape == c.shape == (2, 5, 7, 9)
    zeros = torch.zeros(2, 5, 7, 9)
    torch.testing.assert_close(cell(x, (zeros, zeros))[0], h)


def test_cell_with_1x1_kernel_on_1x1_grid_is_an_lstm_cell():
    """A 1x1 convolution over concat[x, h] is W_ih x + W_hh h + b: nn.LSTMCell's
    equations, with its gates stacked i, f, g, o where ours are i, f, o, g."""
    torch.manual_seed(0)
    reference = nn.LSTMCell(3, 4)
    cell = ConvLSTMCell(3, 4, kernel_size=1)
    reorder = torch.cat([torch.arange(0, 8), torch.arange(12, 16), torch.arange(8, 12)])
    weight = torch.cat([reference.weight_ih, reference.weight_hh], dim=1)[reorder]
    with torch.no_grad():
        cell.conv.weight.copy_(weight[:, :, None, None])
        cell.conv.bias.copy_((reference.bias_ih + reference.bias_hh)[reorder])
    x, h, c = torch.randn(5, 3), torch.randn(5, 4), torch.randn(5, 4)
    h_ref, c_ref = reference(x, (h, c))
    h_out, c_out = cell(x[..., None, None], (h[..., None, None], c[..., None, None]))
    torch.testing.assert_close(h_out[..., 0, 0], h_ref)
    torch.testing.assert_close(c_out[..., 0, 0], c_ref)


@pytest.mark.parametrize("batch_first", [True, False])
def test_stack_shapes_per_layer_sizes(batch_first):
    rnn = ConvLSTM(2, [4, 6], [3, (5, 3)], num_layers=2, batch_first=batch_first)
    x = torch.randn(3, 7, 2, 8, 10)                         # (B, T, C, H, W)
    output, state = rnn(x if batch_first else x.transpose(0, 1))
    assert tuple(output.shape) == ((3, 7, 6, 8, 10) if batch_first else (7, 3, 6, 8, 10))
    assert [tuple(h.shape) for h, _ in state] == [(3, 4, 8, 10), (3, 6, 8, 10)]
    torch.testing.assert_close(output[:, -1] if batch_first else output[-1], state[-1][0])


def test_state_in_and_out_equals_running_step_by_step():
    torch.manual_seed(0)
    rnn = ConvLSTM(2, [4, 3], 3, num_layers=2, batch_first=True)
    x = torch.randn(2, 6, 2, 5, 5)
    start = [(torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)),
             (torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5))]
    whole, final = rnn(x, start)
    # Two halves with the state carried across equal the whole sequence.
    first, middle = rnn(x[:, :2], start)
    second, split_final = rnn(x[:, 2:], middle)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    # So does one step() per frame.
    state, steps = start, []
    for t in range(x.shape[1]):
        h, state = rnn.step(x[:, t], state)
        steps.append(h)
    torch.testing.assert_close(torch.stack(steps, dim=1), whole)
    for (h, c), (h1, c1), (h2, c2) in zip(final, split_final, state, strict=True):
        torch.testing.assert_close(h1, h)
        torch.testing.assert_close(c1, c)
        torch.testing.assert_close(h2, h)
        torch.testing.assert_close(c2, c)


def test_gradient_reaches_the_initial_state():
    rnn = ConvLSTM(1, 2, 3, batch_first=True)
    h0 = torch.zeros(1, 2, 4, 4, requires_grad=True)
    out, _ = rnn(torch.randn(1, 3, 1, 4, 4), [(h0, torch.zeros(1, 2, 4, 4))])
    out.sum().backward()
    assert h0.grad is not None and h0.grad.abs().sum() > 0


def test_wrong_shapes_name_the_expected_shape():
    rnn = ConvLSTM(2, [4, 3], 3, num_layers=2, batch_first=True)
    with pytest.raises(ValueError, match=r"expected input \(B, T, C=2, H, W\), "
                                         r"got \(4, 5, 3, 12, 12\)"):
        rnn(torch.randn(4, 5, 3, 12, 12))
    with pytest.raises(ValueError, match=r"expected input \(T, B, C=2, H, W\)"):
        ConvLSTM(2, 4)(torch.randn(5, 12, 12))
    with pytest.raises(ValueError, match=r"layer 1 h \(B, Hd, H, W\) = \(4, 3, 6, 6\)"):
        bad = [(torch.zeros(4, 4, 6, 6),) * 2, (torch.zeros(4, 5, 6, 6),) * 2]
        rnn(torch.randn(4, 5, 2, 6, 6), bad)
    with pytest.raises(ValueError, match=r"expected a state with 2 \(h, c\) pairs"):
        rnn.step(torch.randn(4, 2, 6, 6), [(torch.zeros(4, 4, 6, 6),) * 2])
    with pytest.raises(ValueError, match=r"expected a frame \(B, C=2, H, W\)"):
        rnn.step(torch.randn(4, 1, 2, 6, 6))
    with pytest.raises(ValueError, match="hidden_size has 3 entries for 2 layers"):
        ConvLSTM(2, [4, 4, 4], 3, num_layers=2)


def test_generator_is_deterministic_for_a_seed():
    a = make_sequences(6, 12, 10, np.random.default_rng(7))
    b = make_sequences(6, 12, 10, np.random.default_rng(7))
    c = make_sequences(6, 12, 10, np.random.default_rng(8))
    assert a.shape == (6, 10, 2, 12, 12) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a[:, :, 0] >= 0).all() and (a[:, :, 1] < 0).any()  # intensity and signed field


@pytest.mark.parametrize("grid", [12, 32])
def test_objects_stay_in_the_grid_and_bounce(grid):
    centres = trajectories(200, grid, 40, np.random.default_rng(0))  # (N, T, K, 2)
    sigma = blob_width(grid)
    assert centres.min() >= sigma - 1e-9 and centres.max() <= grid - 1 - sigma + 1e-9
    # A bounce flips a component of the velocity; away from the walls it is constant.
    step = np.diff(centres, axis=1)                                  # (N, T-1, K, 2)
    assert (np.sign(step[:, 1:]) != np.sign(step[:, :-1])).any()    # some bounced
    reach = 0.07 * grid                                              # the fastest step
    free = ((centres > sigma + reach) & (centres < grid - 1 - sigma - reach))
    free = free[:, :-2] & free[:, 1:-1] & free[:, 2:]
    np.testing.assert_allclose(step[:, 1:][free], step[:, :-1][free], atol=1e-9)
    assert np.abs(step).max() <= reach


def test_smoke_run_writes_metrics_and_plots(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tasks.convlstm_grid.train", "--dry-run",
                             "--grid", "12", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["test"]) == {"model", "persistence", "zero", "mean",
                                    "linear_extrapolation"}
    keys = {f"mse@h{k}" for k in range(1, 6)} | {"mse"}
    assert all(set(scores) == keys for scores in metrics["test"].values())
    for name in ("predictions.png", "training_curve.png", "seed0/best.pt", "seed0/last.pt",
                 "seed0/history.csv"):
        assert (tmp_path / name).exists()


def test_bad_grid_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tasks.convlstm_grid.train", "--dry-run",
                             "--grid", "33", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--patch 4 must divide --grid 33" in result.stderr and "Traceback" not in result.stderr
