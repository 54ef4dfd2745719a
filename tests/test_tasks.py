"""Every task as a user runs it: --help, a --dry-run end to end, and a copied folder.

Tasks that read a real dataset need the local mirror (RNN_TASKS_DATA_MIRROR, or
../shared/data beside the checkout); without it they are skipped with the reason shown."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = sorted(p.parent.name for p in (ROOT / "tasks").glob("*/train.py"))
MIRROR = Path(os.environ.get("RNN_TASKS_DATA_MIRROR", ROOT.parent / "shared" / "data"))
METRICS_KEYS = {"task", "seeds", "device", "train_seconds", "config", "versions", "test"}


def run_task(module: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    if MIRROR.is_dir():
        env["RNN_TASKS_DATA_MIRROR"] = str(MIRROR)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def needs_missing_data(task: str) -> bool:
    uses_fetch = "fetch(" in (ROOT / "tasks" / task / "train.py").read_text()
    return uses_fetch and not MIRROR.is_dir()


@pytest.mark.parametrize("task", TASKS)
def test_help_documents_every_flag(task):
    result = run_task(f"tasks.{task}.train", "--help")
    assert result.returncode == 0, result.stderr
    for flag in ["--seed", "--device", "--epochs", "--run-dir", "--resume", "--dry-run"]:
        assert flag in result.stdout


@pytest.mark.parametrize("task", TASKS)
def test_dry_run_writes_metrics_checkpoint_and_plots(task, tmp_path):
    if needs_missing_data(task):
        pytest.skip(f"{task} needs its dataset: no mirror at {MIRROR}")
    result = run_task(f"tasks.{task}.train", "--dry-run", "--run-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert METRICS_KEYS <= metrics.keys()
    assert metrics["task"] == task
    assert "model" in metrics["test"] and len(metrics["test"]) > 1
    for scores in metrics["test"].values():
        assert all(isinstance(v, int | float | list) for v in scores.values())
    assert list(tmp_path.rglob("*.png"))
    assert list(tmp_path.rglob("best.pt"))


def test_copied_task_folder_runs_unedited(tmp_path):
    """cp -r tasks/sin2cos tasks/my_task: the copy runs and writes to runs/my_task."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "core", project / "core")
    shutil.copytree(ROOT / "tasks" / "sin2cos", project / "tasks" / "my_task")
    (project / "tasks" / "__init__.py").touch()
    result = run_task("tasks.my_task.train", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (project / "runs" / "my_task" / "metrics.json").exists()
