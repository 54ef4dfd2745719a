"""sin2cos and char_transduce: their baselines, resume, and bad input."""

import math

import numpy as np
import pytest
import torch

from tasks.char_transduce import train as char_transduce
from tasks.sin2cos import train as sin2cos
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


@pytest.mark.parametrize("module, extra", [("tasks.sin2cos.train", []),
                                           ("tasks.sin2cos.train", ["--stateful"]),
                                           ("tasks.char_transduce.train",
                                            ["--seeds", "1", "--lr", "0.001"])])
def test_resume_ends_where_an_unbroken_run_ends(module, extra, tmp_path):
    """4 epochs straight == 2 epochs, then --resume to 4 (same seed)."""
    small = ["--batches-per-epoch", "3", "--eval-windows", "8"] if "sin2cos" in module else []
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert run_task(module, "--epochs", "4", "--run-dir", str(straight), *small, *extra
                    ).returncode == 0
    assert run_task(module, "--epochs", "2", "--run-dir", str(broken), *small, *extra
                    ).returncode == 0
    resumed = run_task(module, "--epochs", "4", "--resume", "--run-dir", str(broken), *small,
                       *extra)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    name = "last.pt" if "sin2cos" in module else "seed0/last.pt"
    a = torch.load(straight / name, weights_only=False)
    b = torch.load(broken / name, weights_only=False)
    assert a["epoch"] == b["epoch"] == 3
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=0, rtol=0)


def test_resume_without_a_checkpoint_says_so(tmp_path):
    result = run_task("tasks.sin2cos.train", "--resume", "--run-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no checkpoint" in result.stderr and "Traceback" not in result.stderr


BAD_CHAR_INPUTS = [
    (["--src", "hello", "--tgt", "ohlo"], "same length"),
    (["--src", "", "--tgt", ""], "empty string"),
    (["--src", "hello", "--tgt", "ohlox"], "no source string contains"),
    (["--pairs", "/nonexistent/pairs.tsv"], "does not exist"),
]


@pytest.mark.parametrize("args, message", BAD_CHAR_INPUTS)
def test_char_transduce_bad_input_is_one_clear_line(args, message):
    result = run_task("tasks.char_transduce.train", *args, "--dry-run")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


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


def test_sin2cos_bad_flags():
    result = run_task("tasks.sin2cos.train", "--min-length", "50", "--max-length", "10")
    assert result.returncode == 2 and "--min-length" in result.stderr
    result = run_task("tasks.sin2cos.train", "--cell", "transformer")
    assert result.returncode == 2 and "invalid choice" in result.stderr
