"""core.convlstm (shapes, the cell's equations against nn.LSTMCell, state in and out; the
ST-LSTM cell against its equations by hand, PredRNN's zigzag memory) and the
convlstm_grid task (its generator, smoke runs, bad flags)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from core.convlstm import ConvLSTM, ConvLSTMCell, PredRNN, SpatioTemporalLSTMCell
from tasks.convlstm_grid.data import CHANNELS, blob_width, make_sequences, trajectories
from tasks.convlstm_grid.model import Forecaster, matching_width, parameter_count


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


def test_st_lstm_cell_shapes_and_zero_initial_state():
    cell = SpatioTemporalLSTMCell(3, 5, kernel_size=(3, 5))
    x = torch.randn(2, 3, 7, 9)
    h, c, m = cell(x)
    assert h.shape == c.shape == m.shape == (2, 5, 7, 9)
    zeros = torch.zeros(2, 5, 7, 9)
    for got, want in zip(cell(x, (zeros, zeros), zeros), (h, c, m), strict=True):
        torch.testing.assert_close(got, want)


def test_st_lstm_step_by_hand():
    """With a 1x1 kernel on a 1x1 grid every convolution is a matrix product: write the
    paper's equations out with the weight matrices and compare."""
    torch.manual_seed(0)
    cell = SpatioTemporalLSTMCell(3, 4, kernel_size=1)
    x, h, c, m = torch.randn(5, 3), torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)

    def weights(conv, count):
        return conv.weight[:, :, 0, 0].chunk(count)                # (Hd, in) each

    W_xi, W_xf, W_xg, W_xi_, W_xf_, W_xg_, W_xo = weights(cell.conv_x, 7)
    b_i, b_f, b_g, b_i_, b_f_, b_g_, b_o = cell.conv_x.bias.chunk(7)
    W_hi, W_hf, W_hg, W_ho = weights(cell.conv_h, 4)
    W_mi, W_mf, W_mg = weights(cell.conv_m, 3)
    W_co, W_mo = cell.conv_o.weight[:, :, 0, 0].chunk(2, dim=1)   # reads [C', M']
    W_1x1 = cell.conv_last.weight[:, :, 0, 0]
    i = torch.sigmoid(x @ W_xi.T + h @ W_hi.T + b_i)
    f = torch.sigmoid(x @ W_xf.T + h @ W_hf.T + b_f)
    g = torch.tanh(x @ W_xg.T + h @ W_hg.T + b_g)
    c_new = f * c + i * g
    i_ = torch.sigmoid(x @ W_xi_.T + m @ W_mi.T + b_i_)
    f_ = torch.sigmoid(x @ W_xf_.T + m @ W_mf.T + b_f_)
    g_ = torch.tanh(x @ W_xg_.T + m @ W_mg.T + b_g_)
    m_new = f_ * m + i_ * g_
    o = torch.sigmoid(x @ W_xo.T + h @ W_ho.T + c_new @ W_co.T + m_new @ W_mo.T + b_o)
    h_new = o * torch.tanh(torch.cat([c_new, m_new], dim=1) @ W_1x1.T)

    increments = []
    grid = [t[..., None, None] for t in (x, h, c, m)]
    out = cell(grid[0], (grid[1], grid[2]), grid[3], increments)
    for got, want in zip(out, (h_new, c_new, m_new), strict=True):
        torch.testing.assert_close(got[..., 0, 0], want)
    (delta_c, delta_m), = increments
    torch.testing.assert_close(delta_c[..., 0, 0], i * g)
    torch.testing.assert_close(delta_m[..., 0, 0], i_ * g_)


@pytest.mark.parametrize("batch_first", [True, False])
def test_predrnn_shapes(batch_first):
    rnn = PredRNN(2, 4, [3, (5, 3)], num_layers=2, batch_first=batch_first)
    x = torch.randn(3, 7, 2, 8, 10)                         # (B, T, C, H, W)
    output, (layers, m) = rnn(x if batch_first else x.transpose(0, 1))
    assert tuple(output.shape) == ((3, 7, 4, 8, 10) if batch_first else (7, 3, 4, 8, 10))
    assert [tuple(t.shape) for pair in layers for t in pair] == [(3, 4, 8, 10)] * 4
    assert tuple(m.shape) == (3, 4, 8, 10)
    torch.testing.assert_close(output[:, -1] if batch_first else output[-1], layers[-1][0])


def test_predrnn_memory_zigzags():
    """M leaves the top layer at step t and enters the bottom layer at step t + 1; (h, c)
    stay in their layer."""
    torch.manual_seed(0)
    rnn = PredRNN(2, 3, 3, num_layers=3, batch_first=True)
    x = torch.randn(2, 4, 2, 5, 5)
    output, (layers, m) = rnn(x)
    bottom, middle, top = rnn.cells
    states, memory, tops = [None] * 3, None, []
    for t in range(x.shape[1]):
        inputs = x[:, t]
        for n, cell in enumerate((bottom, middle, top)):
            h, c, memory = cell(inputs, states[n], memory)
            states[n], inputs = (h, c), h
        tops.append(inputs)
    torch.testing.assert_close(torch.stack(tops, dim=1), output)
    torch.testing.assert_close(memory, m)
    for (h, c), (h_ref, c_ref) in zip(layers, states, strict=True):
        torch.testing.assert_close(h, h_ref)
        torch.testing.assert_close(c, c_ref)


def test_predrnn_state_in_and_out_equals_running_step_by_step():
    torch.manual_seed(0)
    rnn = PredRNN(2, 3, 3, num_layers=2, batch_first=True)
    x = torch.randn(2, 6, 2, 5, 5)
    start = ([(torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)) for _ in range(2)],
             torch.randn(2, 3, 5, 5))
    whole, (final, final_m) = rnn(x, start)
    first, middle = rnn(x[:, :2], start)
    second, (split_final, split_m) = rnn(x[:, 2:], middle)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    state, steps = start, []
    for t in range(x.shape[1]):
        h, state = rnn.step(x[:, t], state)
        steps.append(h)
    torch.testing.assert_close(torch.stack(steps, dim=1), whole)
    torch.testing.assert_close(split_m, final_m)
    torch.testing.assert_close(state[1], final_m)
    for (h, c), (h1, c1), (h2, c2) in zip(final, split_final, state[0], strict=True):
        for got, want in ((h1, h), (c1, c), (h2, h), (c2, c)):
            torch.testing.assert_close(got, want)
    # The initial state matters: a zero start gives another output.
    assert not torch.allclose(rnn(x)[0], whole)


def test_predrnn_gradient_reaches_the_first_frame_and_the_initial_memory():
    torch.manual_seed(0)
    rnn = PredRNN(1, 2, 3, num_layers=2, batch_first=True)
    x = torch.randn(1, 5, 1, 4, 4, requires_grad=True)
    m0 = torch.zeros(1, 2, 4, 4, requires_grad=True)
    zeros = torch.zeros(1, 2, 4, 4)
    out, _ = rnn(x, ([(zeros, zeros)] * 2, m0))
    out[:, -1].sum().backward()                             # the last step's output only
    assert x.grad[:, 0].abs().sum() > 0 and m0.grad.abs().sum() > 0


def test_predrnn_wrong_shapes_and_widths():
    rnn = PredRNN(2, 3, 3, num_layers=2, batch_first=True)
    with pytest.raises(ValueError, match=r"expected input \(B, T, C=2, H, W\)"):
        rnn(torch.randn(4, 5, 3, 6, 6))
    zeros = torch.zeros(4, 3, 6, 6)
    with pytest.raises(ValueError, match=r"expected M \(B, Hd, H, W\) = \(4, 3, 6, 6\)"):
        rnn(torch.randn(4, 5, 2, 6, 6), ([(zeros, zeros)] * 2, torch.zeros(4, 2, 6, 6)))
    with pytest.raises(ValueError, match=r"expected a state with 2 \(h, c\) pairs"):
        rnn.step(torch.randn(4, 2, 6, 6), ([(zeros, zeros)], zeros))
    with pytest.raises(NotImplementedError, match="one int hidden_size"):
        PredRNN(2, [3, 4], 3, num_layers=2)


def test_predrnn_width_matches_the_convlstm_parameter_count():
    convlstm = parameter_count(Forecaster(CHANNELS, [32, 32], 3, 3, 4))
    width = matching_width(CHANNELS, [32, 32], 3, 3, 4)
    predrnn = parameter_count(Forecaster(CHANNELS, [32, 32], 3, 3, 4, "predrnn", width))
    assert width < 32 and abs(predrnn - convlstm) / convlstm < 0.05


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


def test_smoke_run_predrnn_beside_convlstm(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tasks.convlstm_grid.train", "--dry-run",
                             "--grid", "12", "--patch", "2", "--cell", "predrnn",
                             "--decouple-weight", "0.1", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["test"]) == {"model", "convlstm", "persistence", "zero", "mean",
                                    "linear_extrapolation"}
    keys = {f"mse@h{k}" for k in range(1, 6)} | {"mse"}
    for name in ("model", "convlstm"):
        assert set(metrics["test"][name]) == keys | {"train_seconds"}
    assert metrics["train_seconds"] == pytest.approx(
        metrics["test"]["model"]["train_seconds"] + metrics["test"]["convlstm"]["train_seconds"],
        abs=0.01)
    for name in ("predictions.png", "seed0/best.pt", "seed0/convlstm/best.pt",
                 "seed0/convlstm/history.csv"):
        assert (tmp_path / name).exists()


def test_same_seed_same_numbers_and_the_same_convlstm(tmp_path):
    """Two --cell predrnn runs of one seed agree, and the ConvLSTM trained beside PredRNN
    is the one --cell convlstm trains: the same start, batches and updates."""
    runs = []
    for folder, cell in (("a", "predrnn"), ("b", "predrnn"), ("c", "convlstm")):
        result = subprocess.run([sys.executable, "-m", "tasks.convlstm_grid.train",
                                 "--dry-run", "--grid", "8", "--patch", "2", "--cell", cell,
                                 "--run-dir", str(tmp_path / folder)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        test = json.loads((tmp_path / folder / "metrics.json").read_text())["test"]
        runs.append({method: {k: v for k, v in scores.items() if k != "train_seconds"}
                     for method, scores in test.items()})
    assert runs[0] == runs[1]
    assert runs[2]["model"] == runs[0]["convlstm"]


def test_a_stop_between_the_two_networks_saves_resumes_to_the_unbroken_numbers(
        tmp_path, monkeypatch):
    """--cell predrnn saves PredRNN, then its ConvLSTM rival: a stop between the two saves
    leaves the rival an epoch behind, and --resume trains it on that epoch to the numbers
    of a run never stopped (reverse sampling draws random numbers in PredRNN's pass, so
    the rival must start from the random state PredRNN's save kept)."""
    from core.train import Checkpoint
    from tasks.convlstm_grid import train

    args = ["--grid", "8", "--patch", "2", "--epochs", "3", "--batches-per-epoch", "2",
            "--batch-size", "8", "--eval-sequences", "16", "--show", "1", "--cell", "predrnn",
            "--reverse-sampling", "0.9"]  # draws in PredRNN's pass up to the last epoch
    train.main([*args, "--run-dir", str(tmp_path / "unbroken")])
    save = Checkpoint.save

    def stop_before_the_rivals_last_save(self, epoch, metrics, stop=False):
        if self.folder.name == "convlstm" and epoch == stop_at:
            raise KeyboardInterrupt  # as Ctrl-C, SIGTERM or kill -9 at that instant
        save(self, epoch, metrics, stop)

    for stop_at in (0, 1):  # before the rival saved anything, and before its last save
        folder = tmp_path / f"stopped{stop_at}"
        monkeypatch.setattr(Checkpoint, "save", stop_before_the_rivals_last_save)
        with pytest.raises(KeyboardInterrupt):
            train.main([*args, "--run-dir", str(folder)])
        monkeypatch.undo()
        saved = torch.load(folder / "seed0" / "last.pt", weights_only=False)["epoch"]
        assert saved == stop_at
        assert (folder / "seed0" / "convlstm" / "last.pt").exists() == (stop_at > 0)
        train.main([*args, "--run-dir", str(folder), "--resume"])
        assert scores_without_seconds(folder) == scores_without_seconds(tmp_path / "unbroken")


def scores_without_seconds(folder):
    """metrics.json's test scores, without the training seconds."""
    test = json.loads((folder / "metrics.json").read_text())["test"]
    return {method: {k: v for k, v in scores.items() if k != "train_seconds"}
            for method, scores in test.items()}


def test_decouple_weight_needs_predrnn(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tasks.convlstm_grid.train", "--dry-run",
                             "--decouple-weight", "0.1", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--cell predrnn" in result.stderr and "Traceback" not in result.stderr


def test_bad_grid_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tasks.convlstm_grid.train", "--dry-run",
                             "--grid", "33", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--patch 4 must divide --grid 33" in result.stderr and "Traceback" not in result.stderr
