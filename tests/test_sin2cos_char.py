"""sin2cos and char_transduce: their baselines, resume, and bad input."""

import math

import numpy as np
import pytest
import torch

from core.config import run_main
from tasks.char_transduce import train as char_transduce
from tasks.sin2cos import train as sin2cos
from tests.helpers import one_line_error
from tests.test_tasks import run_task


def test_linear_2lag_recovers_cos_exactly_after_the_first_point():
    x, y = sin2cos.waves(torch.tensor([0.3, 2.0, 5.5], dtype=torch.float64), 50, 0.1)
    prediction = sin2cos.linear_2lag(x.numpy(), 0.1)
    assert prediction[:, 0].tolist() == [0, 0, 0]
    np.testing.assert_allclose(prediction[:, 1:], y.numpy()[:, 1:], atol=1e-5)


def test_waves_follow_sin_and_cos():
    x, y = sin2cos.waves(torch.tensor([1.0]), 3, 0.5)
    expected = [math.sin(1.0), math.sin(1.5), math.sin(2.0)]
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(y[0].numpy(), [math.cos(1.0), math.cos(1.5), math.cos(2.0)],
                               rtol=1e-6)


def interrupt_at_step(monkeypatch, step: int) -> None:
    """Make the optimiser raise KeyboardInterrupt (as Ctrl-C would) on its step-th step."""
    calls = {"n": 0}
    original = torch.optim.Adam.step

    def step_or_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_or_interrupt)


SIN2COS_SMALL = ["--epochs", "4", "--batches-per-epoch", "3", "--eval-windows", "8",
                 "--threads", "1"]
RESUME_CASES = [
    (sin2cos, SIN2COS_SMALL, 8, "seed0/last.pt"),                      # stopped inside epoch 3
    (sin2cos, [*SIN2COS_SMALL, "--stateful"], 8, "seed0/last.pt"),
    (char_transduce, ["--epochs", "4", "--seeds", "1", "--lr", "0.001", "--threads", "1"],
     3, "seed0/last.pt"),
]


@pytest.mark.parametrize("task, args, stop_step, checkpoint", RESUME_CASES)
def test_interrupted_then_resumed_run_ends_like_an_unbroken_one(task, args, stop_step,
                                                                checkpoint, tmp_path,
                                                                monkeypatch, capsys):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    task.main([*args, "--run-dir", str(straight)])
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, stop_step)
        with pytest.raises(SystemExit) as stopped:  # run_main turns Ctrl-C into exit 130
            run_main(lambda: task.main([*args, "--run-dir", str(broken)]))
    assert stopped.value.code == 130
    assert "--resume" in capsys.readouterr().err
    assert torch.load(broken / checkpoint, weights_only=False)["epoch"] < 3
    task.main([*args, "--run-dir", str(broken), "--resume"])
    a = torch.load(straight / checkpoint, weights_only=False)
    b = torch.load(broken / checkpoint, weights_only=False)
    assert a["epoch"] == b["epoch"] == 3
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=0, rtol=0)


def test_resume_with_other_settings_is_refused(tmp_path):
    args = ["--dry-run", "--run-dir", str(tmp_path)]
    assert run_task("tasks.sin2cos.train", *args).returncode == 0
    result = run_task("tasks.sin2cos.train", *args, "--resume", "--hidden-size", "8")
    assert result.returncode == 2
    assert "hidden_size: 32 -> 8" in result.stderr and "Traceback" not in result.stderr


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    error = one_line_error(sin2cos.main, ["--resume", "--run-dir", str(tmp_path)], capsys)
    assert "no checkpoint" in error


BAD_CHAR_INPUTS = [
    (["--src", "hello", "--tgt", "ohlo"], "same length"),
    (["--src", "", "--tgt", ""], "empty string"),
    (["--src", "hello", "--tgt", "ohlox"], "no source string contains"),
    (["--pairs", "/nonexistent/pairs.tsv"], "not a readable UTF-8 text file"),
    (["--seeds", "0"], "must be at least 1"),
    (["--resume", "--run-dir", "/tmp/rnn-tasks-no-such-run"], "no checkpoint"),
]


@pytest.mark.parametrize("args, message", BAD_CHAR_INPUTS)
def test_char_transduce_bad_input_is_one_clear_line(args, message, capsys):
    assert message in one_line_error(char_transduce.main, [*args, "--dry-run"], capsys)


def test_resume_with_the_pairs_file_edited_since_is_refused(tmp_path):
    """The flags alike, the file's vocabulary the same size: only the data changed."""
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("abc\tcba\nabca\taaaa\n")
    args = ["--pairs", str(pairs), "--dry-run", "--run-dir", str(tmp_path / "run")]
    assert run_task("tasks.char_transduce.train", *args).returncode == 0
    pairs.write_text("abd\tdba\nabda\taaaa\n")
    result = run_task("tasks.char_transduce.train", *args, "--resume")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "other settings (pairs_sha256:" in result.stderr


def test_char_transduce_pairs_file(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("abc\tcba\nabca\taaaa\n")
    cfg = char_transduce.Config(pairs=str(pairs))
    assert char_transduce.read_pairs(cfg) == [("abc", "cba"), ("abca", "aaaa")]
    pairs.write_text("abc cba\n")
    with pytest.raises(char_transduce.UserError, match="expected src<TAB>tgt"):
        char_transduce.read_pairs(char_transduce.Config(pairs=str(pairs)))


@pytest.mark.parametrize("kind", ["cell", "rnn", "embed"])
def test_char_transduce_models_agree_across_impls(kind):
    """--impl core and --impl torch build the same network: same weights, same logits."""
    torch.manual_seed(0)
    reference = char_transduce.Transducer(kind, "torch", 5, 8, 4)
    ours = char_transduce.Transducer(kind, "core", 5, 8, 4)
    ours.load_state_dict(reference.state_dict())
    ids = torch.tensor([[1, 2, 3, 4], [4, 3, 0, 0]])
    torch.testing.assert_close(ours(ids), reference(ids), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--min-length", "50", "--max-length", "10"], "--min-length"),
    (["--cell", "transformer"], "invalid choice"),
    (["--hidden-size", "0"], "must be at least 1"),
    (["--eval-windows", "-2"], "must be at least 1"),
    (["--run-dir", "/proc/version/x"], "cannot use"),
])
def test_sin2cos_bad_flags(args, message, capsys):
    assert message in one_line_error(sin2cos.main, ["--dry-run", *args], capsys)
