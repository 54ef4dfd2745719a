"""Training under torchrun (2 CPU processes, gloo): the processes together take the same
steps as one process on the whole batch, process 0 alone writes, and a resumed torchrun
run ends like an unbroken one."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core import distributed
from tests.test_rainfall import synthetic_csv
from tests.test_tasks import MIRROR, TASKS, needs_missing_data

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def launch(nproc: int, module: str, *args: str) -> subprocess.CompletedProcess:
    """The task as a user runs it: plain python for 1 process, torchrun for more."""
    if nproc == 1:
        command = [sys.executable, "-m", module, *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(nproc), "-m", module, *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    if MIRROR.is_dir():
        env["RNN_TASKS_DATA_MIRROR"] = str(MIRROR)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "seed0" / "last.pt", weights_only=False)["model"]


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], atol=atol, rtol=0)


def test_shard_splits_rows_once_and_weights_to_the_whole_batch_mean(monkeypatch):
    x = torch.arange(5.0)
    parts, weights_ = [], []
    for rank in range(2):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        (part,), weight = distributed.shard((x,))
        parts.append(part)
        weights_.append(weight)
    assert torch.cat(parts).tolist() == x.tolist()
    # what DDP averages: each process's weighted mean loss
    average = sum(w * p.mean() for w, p in zip(weights_, parts, strict=True)) / 2
    torch.testing.assert_close(average, x.mean())
    monkeypatch.setenv("RANK", "1")
    (part,), weight = distributed.shard((torch.arange(1.0),))
    assert len(part) == 1 and weight == 0.0  # no row of its own: it takes part, weighing 0


def test_rainfall_two_processes_train_like_one_and_resume_exactly(tmp_path):
    csv = synthetic_csv(tmp_path)
    args = ["--csv", str(csv), "--target", "total_rain", "--test-months", "12",
            "--val-months", "12", "--seeds", "1", "--batch-size", "10", "--patience", "50"]
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    launch(1, "tasks.rainfall_uni.train", *args, "--epochs", "4", "--run-dir", str(one))
    launch(2, "tasks.rainfall_uni.train", *args, "--epochs", "4", "--run-dir", str(two))
    # gradients averaged over the processes, each on its rows: the steps of one process
    assert_same_weights(one, two, atol=1e-5)
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    # process 0 alone wrote: one folder layout, no stray temporaries, the lock released
    assert sorted(p.name for p in (two / "seed0").iterdir()) == ["best.pt", "history.csv",
                                                                 "last.pt"]
    assert not list(two.rglob("*.tmp"))

    # stopped after 2 epochs, resumed under torchrun to 4: the unbroken run's weights
    launch(2, "tasks.rainfall_uni.train", *args, "--epochs", "2", "--run-dir", str(resumed))
    launch(2, "tasks.rainfall_uni.train", *args, "--epochs", "4", "--run-dir", str(resumed),
           "--resume")
    assert_same_weights(two, resumed, atol=0)
    single = subprocess.run([sys.executable, "-m", "tasks.rainfall_uni.train", *args,
                             "--epochs", "6", "--run-dir", str(resumed), "--resume"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert single.returncode == 2
    assert "trained by 2 process(es)" in single.stderr and "Traceback" not in single.stderr


def test_name_classifier_two_processes_train_like_one(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        shutil.copyfile(FIXTURES / f"names_tiny_{split}.csv", data / f"names_{split}.csv")
    # no dropout: its random masks are drawn per row, so they differ between the two
    args = ["--data-dir", str(data), "--epochs", "2", "--batch-size", "16", "--dropout", "0",
            "--hidden-size", "16", "--embedding-dim", "8", "--conv-channels", "8"]
    one, two = tmp_path / "one", tmp_path / "two"
    launch(1, "tasks.name_classifier.train", *args, "--run-dir", str(one))
    result = launch(2, "tasks.name_classifier.train", *args, "--run-dir", str(two))
    assert_same_weights(one, two, atol=1e-5)
    assert result.stdout.count("name_classifier seed 0:") == 1  # process 0 alone prints


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_every_task_runs_under_torchrun(task, tmp_path):
    """`make <task> NPROC=2 ARGS=--dry-run`: two processes train, process 0 alone reports
    and writes metrics.json, which records both."""
    if needs_missing_data(task):
        pytest.skip(f"{task} needs its dataset: no mirror at {MIRROR}")
    result = launch(2, f"tasks.{task}.train", "--dry-run", "--run-dir", str(tmp_path))
    assert json.loads((tmp_path / "metrics.json").read_text())["world_size"] == 2
    assert "Traceback" not in result.stderr


def test_a_failed_process_under_make_s_torchrun_is_one_line(tmp_path):
    """core.torchrun (what `make <task> NPROC=2` runs): the task's own error line from each
    process, then one line naming the process, and its exit status; no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "core.torchrun", "--standalone", "--nproc-per-node", "2", "-m",
         "tasks.sin2cos.train", "--epochs", "0", "--run-dir", str(tmp_path)], cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 2
    assert "--epochs: must be at least 1" in result.stderr
    assert "ended with exit status 2" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_under_make_s_torchrun_is_one_line_and_resumable(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.torchrun", "--standalone", "--nproc-per-node", "2", "-m",
         "tasks.sin2cos.train", "--epochs", "500", "--run-dir", str(tmp_path)], cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(1200):
        if (tmp_path / "seed0" / "last.pt").exists():
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "Traceback" not in err
