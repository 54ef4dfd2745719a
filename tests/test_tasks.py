"""Every task as a user runs it: --help, and a --dry-run end to end of a copied folder.

Tasks that read a real dataset need the local mirror (RNN_TASKS_DATA_MIRROR, or
../shared/data beside the checkout); without it they are skipped with the reason shown."""

import importlib
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
    """A task reads a real dataset when its train.py names a file of data/manifest.json
    (it may fetch it through core, e.g. core.names or core.forecast)."""
    datasets = json.loads((ROOT / "data" / "manifest.json").read_text())
    source = (ROOT / "tasks" / task / "train.py").read_text()
    return any(name in source for name in datasets) and not MIRROR.is_dir()


@pytest.mark.parametrize("task", TASKS)
def test_help_documents_every_flag(task, capsys):
    train = importlib.import_module(f"tasks.{task}.train")
    with pytest.raises(SystemExit) as stopped:
        train.main(["--help"])
    assert stopped.value.code == 0
    usage = capsys.readouterr().out
    for flag in ["--seed", "--device", "--epochs", "--run-dir", "--resume", "--dry-run"]:
        assert flag in usage


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_a_copied_task_runs_unedited_and_is_its_own_task_everywhere(task, tmp_path):
    """cp -r tasks/<task> tasks/my_task, then a --dry-run of the copy: it writes
    metrics.json in the shape every task shares, seed0/best.pt and plots, and its run
    folder, metrics.json, progress lines and --help all name my_task, never the original.
    A second run with the same seed gives the same numbers, baselines included."""
    if needs_missing_data(task):
        pytest.skip(f"{task} needs its dataset: no mirror at {MIRROR}")
    project = tmp_path / "project"
    shutil.copytree(ROOT / "core", project / "core")
    shutil.copytree(ROOT / "data", project / "data")
    shutil.copytree(ROOT / "tasks" / task, project / "tasks" / "my_task")
    (project / "tasks" / "__init__.py").touch()
    result = run_task("tasks.my_task.train", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = project / "runs" / "my_task"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRICS_KEYS <= metrics.keys()
    assert metrics["task"] == "my_task"
    assert "model" in metrics["test"] and len(metrics["test"]) > 1
    for scores in metrics["test"].values():
        assert all(v is None or isinstance(v, int | float | list) for v in scores.values())
    assert list(run_dir.glob("*.png"))
    assert (run_dir / "seed0" / "best.pt").is_file()
    # identity by what the copy owns (its module, run folder, metrics.json's task and
    # --help), not by substrings: a copy may well print a file named like its template
    assert "my_task seed" in result.stdout and "writing to runs/my_task" in result.stdout
    printed = result.stdout + result.stderr
    assert f"tasks.{task}." not in printed and f"runs/{task}" not in printed
    usage = run_task("tasks.my_task.train", "--help", cwd=project).stdout
    assert "python -m tasks.my_task.train" in usage and f"tasks.{task}." not in usage
    # the same --seed again: a new folder beside the first, and the same numbers for the
    # model and every baseline (their training times aside)
    again = run_task("tasks.my_task.train", "--dry-run", cwd=project)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "writing to runs/my_task-2" in again.stdout
    second = json.loads((project / "runs" / "my_task-2" / "metrics.json").read_text())
    assert without_times(second["test"]) == without_times(metrics["test"])


def without_times(test: dict) -> dict:
    return {method: {k: v for k, v in scores.items() if "seconds" not in k}
            for method, scores in test.items()}


def test_a_copied_task_carries_its_targets_into_make_bench(tmp_path):
    """cp -r tasks/sin2cos tasks/my_task, then `python -m bench --only my_task`: the bench
    finds the copy by its folder, runs it with the flags of its own targets.py, says what it
    is held to, and brings the README up to date with the copy's row and picture (the
    other rows, read from results/, stay as they were)."""
    project = tmp_path / "project"
    for name in ["core", "data", "bench", "docs", "results", "tasks"]:
        shutil.copytree(ROOT / name, project / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", project / "README.md")
    shutil.copytree(ROOT / "tasks" / "sin2cos", project / "tasks" / "my_task",
                    dirs_exist_ok=True)
    result = run_task("bench", "--only", "my_task", cwd=project)
    assert "== my_task" in result.stdout, result.stderr[-2000:]
    assert "mse_after_first <= 0.0001" in result.stdout  # the copied targets.py's target
    record = json.loads((project / "results" / "my_task.json").read_text())
    assert record["task"] == "my_task" and "tasks.my_task.train" in record["runs"][0]["command"]
    readme = (project / "README.md").read_text()
    assert "| `my_task` |" in readme and "(docs/figures/my_task.png)" in readme
    assert (project / "docs" / "figures" / "my_task.png").is_file()
    for row in [line for line in (ROOT / "README.md").read_text().splitlines()
                if line.startswith("| `")]:
        assert row in readme


def test_bench_names_a_copied_task_without_its_targets(tmp_path):
    project = tmp_path / "project"
    for name in ["core", "data", "bench"]:
        shutil.copytree(ROOT / name, project / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tasks" / "sin2cos", project / "tasks" / "my_task")
    (project / "tasks" / "my_task" / "targets.py").unlink()
    (project / "tasks" / "__init__.py").touch()
    result = run_task("bench", "--only", "my_task", cwd=project)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "tasks/my_task/targets.py is missing" in result.stderr
