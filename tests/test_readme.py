"""The README as a reader meets it: the two commands first, a front door of at most
FRONT_DOOR_LINES hand-written lines, numbers that agree with results/ (through `python -m
bench --readme`), a picture or a declared gap for every task, and every command it shows
running, in its order, on a fresh copy of the project, then again each one whose first
run met no earlier run.

Also the bench's own machinery on hand-made metrics.json files: the best rival, the
verdict with and without an interval, the targets, the rendered table, the figure copy.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bench import docs, results, runs, verdicts
from bench.__main__ import main as bench_main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TASKS = sorted(p.parent.name for p in (ROOT / "tasks").glob("*/train.py"))
MIRROR = Path(os.environ.get("RNN_TASKS_DATA_MIRROR", ROOT.parent / "shared" / "data"))
FRONT_DOOR_LINES = 150  # what a reader takes in at the door, generated blocks aside


def sh_commands(text: str) -> list[str]:
    """The commands of the ```sh blocks, in order: one per line, backslash continuations
    joined, comments dropped. (```text blocks are examples that cannot run here.)"""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_the_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```(\w*)\n(.*?)```", text, re.DOTALL)
    before = text[:first_block.start()].strip().splitlines()
    assert before == ["# rnn-tasks"], "only the title may come before the two commands"
    assert first_block[1] == "sh"
    assert sh_commands(first_block[0]) == ["make sin2cos", "make test"]


def hand_written(text: str) -> list[str]:
    """The lines a person wrote: the bench's generated blocks (a row per measured task in
    the table and the gallery) emptied, so the budget below holds the prose whatever the
    number of tasks."""
    return docs.BLOCK.sub(lambda m: m[1] + m[4], text).splitlines()


def test_the_readme_is_a_front_door():
    lines = hand_written(README.read_text())
    assert len(lines) <= FRONT_DOOR_LINES, (
        f"README.md has {len(lines)} hand-written lines; move detail to docs/")
    for page in ["core.md", "runs.md", "torchrun.md", "data.md", "performance.md"]:
        assert f"docs/{page}" in README.read_text()
        assert (ROOT / "docs" / page).is_file()


def test_a_copied_task_changes_no_document_until_it_is_measured(tmp_path, monkeypatch):
    """cp -r tasks/sin2cos tasks/my_task adds a spec: until results/my_task.json exists,
    README.md and docs/ render as they are (make test stays green); once it does, the
    table gains the copy's row and the hand-written lines stay within their budget."""
    monkeypatch.setitem(verdicts.TASKS, "my_task", verdicts.TASKS["sin2cos"])
    for path in docs.DOCUMENTS:
        assert docs.rendered(path.read_text()) == path.read_text(), path.name
    folder = tmp_path / "results"
    shutil.copytree(ROOT / "results", folder)
    record = json.loads((folder / "sin2cos.json").read_text()) | {"task": "my_task"}
    (folder / "my_task.json").write_text(json.dumps(record))
    monkeypatch.setattr(results, "RESULTS", folder)
    readme = README.read_text()
    after = docs.rendered(readme)
    assert "| `my_task` |" in after and "`my_task`: no picture yet" in after
    assert hand_written(after) == hand_written(readme)


def test_readme_and_docs_agree_with_results():
    """What `python -m bench --readme` would write is what the files hold."""
    found = set()
    for path in docs.DOCUMENTS:
        text = path.read_text()
        found |= set(re.findall(r"<!-- bench:([a-z-]+) -->", text))
        assert docs.rendered(text) == text, (
            f"{path.name} disagrees with results/: run `python -m bench --readme`")
    assert found == set(docs.BLOCKS), "every block of docs.BLOCKS is shown somewhere"
    readme = README.read_text()
    assert "<!-- bench:tasks -->" in readme and "<!-- bench:gallery -->" in readme


def test_the_readme_names_every_core_module():
    layout = README.read_text().split("## Layout", 1)[1]
    for module in sorted((ROOT / "core").glob("*.py")):
        if module.name != "__init__.py":
            assert module.name in layout, f"the README's layout omits core/{module.name}"


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_a_bench_spec_and_once_measured_a_picture_or_a_declared_gap(task):
    """Every task folder carries its targets.py. The README shows a task once the bench
    has measured it (results/<task>.json), with its picture or what it should draw; a task
    copied or written since is not listed until then, and fails nothing."""
    assert task in verdicts.TASKS, f"no tasks/{task}/targets.py: copy one from another task"
    spec = verdicts.TASKS[task]
    readme = README.read_text()
    if results.read_result(task) is None:
        assert f"| `{task}` |" not in readme, f"{task} is listed but was never measured"
        return
    assert f"| `{task}` |" in readme, "a measured task has its row in the README's table"
    if spec.figure is None:
        assert spec.missing_figure, f"{task}: no figure, and no word on what it should draw"
        assert spec.missing_figure in readme, "the gallery shows the gap"
        return
    picture = ROOT / "docs" / "figures" / f"{task}.png"
    assert picture.is_file(), f"no {picture.name}: make bench ARGS=\"--only {task}\""
    assert picture.stat().st_size < runs.FIGURE_BYTES
    assert f"(docs/figures/{task}.png)" in readme


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "results").glob("*.json")))
def test_every_result_file_is_what_its_spec_reads(name):
    """Each results/<task>.json has its provenance and every key its spec names (a
    renamed metric fails here: edit the spec in the task's targets.py)."""
    record = json.loads((ROOT / "results" / f"{name}.json").read_text())
    for key in ["commit", "date", "machine", "command", "wall_seconds"]:
        assert key in record
    for key in ["cpu", "cores", "threads", "torch", "device"]:
        assert key in record["machine"]
    task = name.split(".")[0]
    if task in verdicts.TASKS:
        for run in record["runs"]:
            assert set(run["metrics"]) >= {"task", "seeds", "device", "train_seconds",
                                           "config", "versions", "test"}
        verdicts.task_checks(record, verdicts.TASKS[task])
        assert verdicts.verdict(record["runs"][0]["metrics"]["test"], verdicts.TASKS[task])


# --- the bench's machinery on hand-made metrics (the keys of today's tasks) ---------------

RAINFALL = {"model": {"rmse": 146.0, "rmse_seeds": [145.0, 146.0, 149.0], "mae": 69.0,
                      "vs_climatology": 0.991, "vs_climatology_lo": 0.98,
                      "vs_climatology_hi": 1.003},
            "climatology": {"rmse": 147.4, "mae": 70.3},
            "ar12": {"rmse": 164.6, "mae": 80.0}}


def test_the_best_rival_and_a_tie_within_the_seeds_spread():
    spec = verdicts.TASKS["rainfall_uni"]
    assert verdicts.best_rival(RAINFALL, spec, "rmse") == ("climatology", 147.4)
    v = verdicts.verdict(RAINFALL, spec)
    assert v["rival"] == "climatology" and v["winner"] == "tie"
    assert v["ratio"] == pytest.approx(146.0 / 147.4)
    spread_free = {**RAINFALL, "model": {"rmse": 146.0, "mae": 69.0}}
    assert verdicts.verdict(spread_free, spec)["winner"] == "model"


def test_a_paired_interval_decides_where_the_task_measures_one():
    spec = verdicts.TASKS["rainfall_uni"]
    # the seeds overlap climatology, but model / climatology on the same months stays < 1
    paired = {**RAINFALL, "model": {**RAINFALL["model"], "vs_climatology_lo": 0.97,
                                    "vs_climatology_hi": 0.995}}
    assert verdicts.verdict(paired, spec)["winner"] == "model"
    assert verdicts.paired_interval(paired["model"], "rmse", "climatology") == (0.97, 0.995)
    series = {"mae@block": 0.43, "mae@block_ratio_ci95_low": 0.72,
              "mae@block_ratio_ci95_high": 0.82}
    assert verdicts.paired_interval(series, "mae@block", "seasonal") == (0.72, 0.82)
    multi = {"rmse@h1": 145.0, "vs_univariate_lo@h1": 0.99, "vs_univariate_hi@h1": 1.01}
    assert verdicts.paired_interval(multi, "rmse@h1", "univariate") == (0.99, 1.01)


def test_an_interval_from_std_or_lo_hi_decides_the_tie():
    spec = verdicts.TASKS["series_impute"]
    test = {"model": {"mae@block": 0.35, "mae@block_std": 0.01},
            "linear": {"mae@block": 0.50}, "mean": {"mae@block": 0.80}}
    assert verdicts.interval(test["model"], "mae@block") == pytest.approx((0.34, 0.36))
    assert verdicts.verdict(test, spec)["winner"] == "model"
    test["model"] |= {"mae@block_lo": 0.30, "mae@block_hi": 0.55}
    assert verdicts.verdict(test, spec)["winner"] == "tie"


def test_higher_is_better_and_rivals_that_do_not_count():
    spec = verdicts.TASKS["name_classifier"]
    test = {"model": {"accuracy": 0.84, "macro_f1": 0.57},
            "majority": {"accuracy": 0.47, "macro_f1": 0.03},
            "ngram_linear": {"accuracy": 0.85, "macro_f1": 0.49}}
    v = verdicts.verdict(test, spec)
    assert (v["rival"], v["winner"]) == ("ngram_linear", "ngram_linear")
    checks = {c["label"]: c["met"] for c in
              (verdicts.check_target(test, spec, t) for t in spec.targets)}
    assert checks == {"accuracy >= 0.87": False, "accuracy / ngram_linear's >= 1": False,
                      "macro_f1 >= 0.62": False}
    sin = {"model": {"mse_after_first": 2e-5}, "zero": {"mse_after_first": 0.5},
           "linear_2lag": {"mse_after_first": 1e-13}}  # a ceiling, excluded by the spec
    assert verdicts.verdict(sin, verdicts.TASKS["sin2cos"])["rival"] == "zero"


def test_a_renamed_metric_fails_loudly_and_an_optional_one_is_skipped():
    spec = verdicts.TASKS["name_generator"]
    test = {"model": {"bits_per_char": 2.5, "novel_fraction": 0.8},
            "ngram": {"bits_per_char": 2.45}, "unigram": {"bits_per_char": 4.6}}
    optional = next(t for t in spec.targets if t.optional)
    assert verdicts.check_target(test, spec, optional)["met"] is None
    with pytest.raises(KeyError, match="edit its spec"):
        verdicts.check_target(test, spec, verdicts.Target("perplexity", 1.0))


def test_the_table_is_rendered_from_results_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    metrics = {"task": "rainfall_uni", "seeds": [0, 1, 2], "device": "cpu",
               "train_seconds": 4.0, "config": {}, "versions": {}, "test": RAINFALL}
    record = {"task": "rainfall_uni", **results.provenance("python -m bench", 5.0),
              "runs": [{"command": "python -m tasks.rainfall_uni.train", "wall_seconds": 5.0,
                        "metrics": metrics}]}
    (tmp_path / "rainfall_uni.json").write_text(json.dumps(record))
    row = docs.task_row("rainfall_uni", verdicts.TASKS["rainfall_uni"])
    assert "rmse 146 (median of 3 seeds)" in row and "climatology 147.4" in row
    assert "tie (0.991x, within the spread)" in row
    assert "**missed: rmse <= 140, vs_climatology_hi <= 1**" in row and "no GPU run" in row
    (tmp_path / "rainfall_uni.cuda.json").write_text(json.dumps(record))
    assert docs.task_row("rainfall_uni", verdicts.TASKS["rainfall_uni"]).endswith("| 4 s |")
    assert "not measured yet" in docs.task_row("sin2cos", verdicts.TASKS["sin2cos"])
    text = "a\n<!-- bench:tasks -->\nold\n<!-- /bench:tasks -->\nb\n"
    assert docs.rendered(docs.rendered(text)) == docs.rendered(text) != text


def test_the_figure_is_shrunk_under_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "FIGURES", tmp_path / "figures")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    noise = np.random.default_rng(0).random((1200, 2400, 3))  # incompressible on purpose
    plt.imsave(run_dir / "test_block_wind.png", noise)
    runs.copy_figure("series_impute", run_dir, "test_block_*.png")
    picture = tmp_path / "figures" / "series_impute.png"
    assert picture.stat().st_size < runs.FIGURE_BYTES
    assert plt.imread(picture).shape[1] <= runs.FIGURE_WIDTH


# --- every command the README shows ------------------------------------------------------

def fresh_copy(destination: Path) -> Path:
    """The files a clone would have (tracked, plus new ones git does not ignore), and
    this checkout's environment linked in, so `make` installs nothing (the first `make`
    of a real clone installs it; that takes minutes and a network)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)  # keeps times: make sees .venv current
    # A folder of links into this checkout's .venv, with its own .installed made now: make
    # finds the environment current and never runs venv or pip on the shared one.
    venv = destination / ".venv"
    venv.mkdir()
    for entry in (ROOT / ".venv").resolve().iterdir():
        if entry.name != ".installed":
            (venv / entry.name).symlink_to(entry)
    (venv / ".installed").touch()
    return destination


def as_tested(command: str) -> str:
    """`make test` would run this very suite again: its recipe is only printed."""
    return re.sub(r"^make test\b", "make -n test", command)


# A run's folder with a number, runs/sin2cos-2/: the command met an earlier run of its
# task. A file in a run's folder, numbered or not: runs/sin2cos/metrics.json.
NUMBERED_RUN = re.compile(r"runs/\w+-\d+\b")
RUN_FILE = re.compile(r"runs/\w+/")


@pytest.mark.slow
def test_every_readme_command_runs_in_order_twice_on_a_fresh_copy(tmp_path):
    """In the README's order, all of them, then again in the same copy: a second
    `make sin2cos` must find its own run folder, answering commands the newest run, and
    `python -m bench --readme` must change nothing. The second round repeats the commands
    whose first run met no earlier run of its task (it wrote or read no numbered folder),
    in order; one that already did, as `make sin2cos ARGS=...` after `make sin2cos`, would
    only take that path again."""
    if not (ROOT / ".venv" / ".installed").is_file():
        pytest.skip("no installed .venv in this checkout (run `make test`)")
    if not MIRROR.is_dir():
        pytest.skip(f"the README's commands need the datasets: no mirror at {MIRROR}")
    copy = fresh_copy(tmp_path / "project")
    documents = {p: p.read_text() for p in [copy / "README.md", *(copy / "docs").glob("*.md")]}
    env = dict(os.environ, RNN_TASKS_DATA_MIRROR=str(MIRROR))
    env.pop("MAKEFLAGS", None)

    def run(command: str, round_: int) -> str:
        done = subprocess.run(["bash", "-c", as_tested(command)], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=900)
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"round {round_}: {command}\n{printed[-3000:]}"
        return printed

    commands = sh_commands(README.read_text())
    assert commands[:2] == ["make sin2cos", "make test"]
    again = []  # (command, what its first run printed)
    for command in commands:
        first = run(command, 1)
        if not NUMBERED_RUN.search(first):
            again.append((command, first))
    assert "make sin2cos" in [command for command, _ in again]
    for command, first in again:
        second = run(command, 2)
        if RUN_FILE.search(first):  # it wrote or read a run: now a later one, numbered
            assert NUMBERED_RUN.search(second), f"round 2: {command}\n{second[-3000:]}"
    for path, text in documents.items():
        assert path.read_text() == text, f"python -m bench --readme changed {path.name}"


def test_the_speed_tables_are_rendered_from_core_json(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    row = {"layer": "LSTM B64 T100 32->256", "target": 1.2}
    rows = [row | {"input_grad": g, "threads": t, "torch_ms": 10.0, "core_ms": c}
            for g, t, c in [(False, 1, 9.0), (False, 2, 13.0), (True, 1, 11.0), (True, 2, 12.0)]]
    growth = [{"batch": b, "length": n, "threads": 2, "torch_ms": n * 0.2, "core_ms": n * 0.3}
              for b in (16, 64) for n in (25, 50)]
    threads = [{"layer": "GRU 1->32 B64 T50", "parameters": 3360, "ms_1_thread": 2.0,
                "ms_2_threads": 2.2}]
    tanh = {"tanh": 20.0, "sigmoid": 4.0, "2 sigmoid(2x) - 1": 9.0, "unit": "us"}
    (tmp_path / "core.json").write_text(json.dumps(
        results.provenance("python -m bench --only core", 60.0)
        | {"rows": rows, "growth": growth, "threads": threads, "tanh": tanh}))
    speed = docs.render_core_speed()
    assert "| LSTM B64 T100 32->256 | 0.90 | **1.30** | 1.10 | 1.20 | <= 1.2 |" in speed
    assert "| 16 | 7.5 / 5, 1.50 | 15 / 10, 1.50 |" in docs.render_growth()
    assert "| GRU 1->32 B64 T50 | 3360 | 2 ms | 2.2 ms | 1.10x |" in docs.render_threads()
    assert "Not measured yet" in docs.render_processes()
    (tmp_path / "processes.json").write_text(json.dumps(
        results.provenance("python -m bench --only processes", 30.0)
        | {"seconds_per_epoch": {"1": 4.4, "2": 3.9}, "commands": []}))
    assert "4.4 s per epoch in 1 process, 3.9 s in 2 (0.89x the time)" in \
        docs.render_processes()


@pytest.mark.parametrize("content, says", [
    ("{not json", "not readable JSON"),
    ("[1, 2]", "holds a list"),
    ('{"runs": []}', "not what the bench writes"),
])
def test_readme_from_a_damaged_result_names_the_file(tmp_path, monkeypatch, content, says):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "sin2cos.json").write_text(content)
    monkeypatch.setattr(results, "RESULTS", folder)
    # render README.md's blocks, write nothing
    monkeypatch.setattr(docs, "write_documents", lambda: docs.rendered(README.read_text()))
    with pytest.raises(SystemExit) as stopped:
        bench_main(["--readme"])
    message = str(stopped.value.code)
    assert message.startswith("error: ") and len(message.splitlines()) == 1
    assert "results/sin2cos.json" in message and says in message
