"""series_impute: no method (baseline or network) ever reads a hidden value, the masks are
reproducible from their seed, fill.py keeps every observed cell as the file wrote it, and
bad inputs end in one line. Synthetic series only: no dataset needed."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.series_impute import fill
from tasks.series_impute import train as task
from tasks.series_impute.model import Imputer, calendar, impute, save_model
from tasks.series_impute.table import read_table
from tests.helpers import one_line_error

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tasks.series_impute"


def series(rows: int = 120, variables: int = 3, seed: int = 0) -> np.ndarray:
    """A seasonal wave per variable plus noise, (rows, variables)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    return np.sin(2 * np.pi * t / 40 + np.arange(variables)) + 0.3 * rng.normal(
        size=(rows, variables))


def daily_dates(rows: int) -> np.ndarray:
    return np.datetime64("2020-01-01") + np.arange(rows)


def write_csv(path: Path, rows: list[list[str]], separator: str = ",") -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f, delimiter=separator, lineterminator="\n").writerows(rows)
    return path


def daily_csv(path: Path, rows: int = 400, missing: float = 0.05) -> Path:
    """date,a,b,c,note with a few empty or NA cells."""
    values = series(rows)
    rng = np.random.default_rng(1)
    body = [[str(d), *(f"{v:.2f}" if rng.random() > missing else rng.choice(["", "NA"])
                       for v in row), "x"]
            for d, row in zip(daily_dates(rows), values, strict=True)]
    return write_csv(path, [["date", "a", "b", "c", "note"], *body])


# ---- masks


def test_masks_are_reproducible_from_the_seed_and_hide_only_observed_entries() -> None:
    observed = np.random.default_rng(0).random((200, 4)) > 0.1
    first = task.fixed_masks(observed, "test", "daily", 7)
    again = task.fixed_masks(observed, "test", "daily", 7)
    other_seed = task.fixed_masks(observed, "test", "daily", 8)
    validation = task.fixed_masks(observed, "val", "daily", 7)
    for p in task.PATTERNS:
        np.testing.assert_array_equal(first[p], again[p])
        assert not (first[p] & ~observed).any()
        assert (first[p] != other_seed[p]).any() and (first[p] != validation[p]).any()


def test_blocks_are_runs_of_7_to_30_rows_covering_about_a_fifth_of_each_variable() -> None:
    observed = np.ones((500, 4), dtype=bool)
    hidden = task.hide_blocks(observed, 7, 30, np.random.default_rng(3))
    for f in range(4):
        edges = np.diff(np.concatenate([[0], hidden[:, f].astype(int), [0]]))
        lengths = np.nonzero(edges == -1)[0] - np.nonzero(edges == 1)[0]
        assert ((lengths >= 7) & (lengths <= 30)).all(), lengths
        assert 0.2 <= hidden[:, f].mean() <= 0.2 + 30 / len(hidden)


def test_point_masks_hide_about_their_share() -> None:
    observed = np.ones((1000, 4), dtype=bool)
    for pattern, share in task.POINT_SHARE.items():
        hidden = task.hide(observed, pattern, "daily", np.random.default_rng(0))
        assert abs(hidden.mean() - share) < 0.03


# ---- no method reads a hidden value


def small_imputer(impl: str) -> Imputer:
    torch.manual_seed(0)
    return Imputer(input_size=3, hidden_size=8, extra_size=2, impl=impl)


def methods() -> dict:
    """Every way the task fills a series: values (T, F), seen (T, F) -> filled (T, F)."""
    season = np.tile(np.linspace(-1, 1, 120)[:, None], (1, 3))
    extra = calendar(daily_dates(120), "daily")
    low, high = np.full(3, -5.0), np.full(3, 5.0)

    def network(impl: str):
        model = small_imputer(impl)
        return lambda v, s: impute(model, v[None], s[None], extra[None], low, high)[0]

    return {"mean": task.fill_mean, "locf": task.fill_locf, "linear": task.fill_linear,
            "seasonal": lambda v, s: task.fill_seasonal(v, s, season, np.zeros(3, bool)),
            "seasonal+offset": lambda v, s: task.fill_seasonal(v, s, season,
                                                               np.ones(3, bool)),
            "model (torch)": network("torch"), "model (core)": network("core")}


@pytest.mark.parametrize("poison", [np.nan, 1e30, -1e30])
def test_no_method_reads_a_hidden_value(poison: float) -> None:
    values = series()
    rng = np.random.default_rng(5)
    hidden = task.hide(np.ones(values.shape, bool), "points50", "daily", rng)
    hidden |= task.hide(np.ones(values.shape, bool), "block", "daily", rng)
    hidden[:5] = True  # the first rows too: locf and linear then reach backwards
    seen = ~hidden
    poisoned = np.where(seen, values, poison)
    for name, method in methods().items():
        clean, dirty = method(values, seen), method(poisoned, seen)
        assert np.isfinite(dirty).all(), name
        np.testing.assert_array_equal(dirty, clean, err_msg=name)
        np.testing.assert_array_equal(dirty[seen], values[seen], err_msg=name)


def test_baselines_against_hand_computed_values() -> None:
    values = np.array([[1.0], [9.0], [9.0], [4.0], [9.0]])
    seen = np.array([[True], [False], [False], [True], [False]])
    np.testing.assert_array_equal(task.fill_linear(values, seen)[:, 0], [1, 2, 3, 4, 4])
    np.testing.assert_array_equal(task.fill_locf(values, seen)[:, 0], [1, 1, 1, 4, 4])
    np.testing.assert_array_equal(task.fill_mean(values, seen)[:, 0], [1, 0, 0, 4, 0])
    late = np.array([[False], [True], [False]])
    np.testing.assert_array_equal(task.fill_locf(np.array([[9.0], [2.0], [9.0]]), late)[:, 0],
                                  [2, 2, 2])
    season = np.array([[0.0], [1.0], [1.0], [2.0], [0.0]])  # anomalies 1 at row 0, 2 at 3
    with_offset = task.fill_seasonal(values, seen, season, np.array([True]))
    np.testing.assert_allclose(with_offset[:, 0], [1, 1 + 4 / 3, 1 + 5 / 3, 4, 2])


def test_core_and_torch_cells_give_the_same_imputations() -> None:
    values, seen = series(), np.random.default_rng(2).random((120, 3)) > 0.3
    extra = calendar(daily_dates(120), "daily")
    torch_model, core_model = small_imputer("torch"), small_imputer("core")
    core_model.load_state_dict(torch_model.state_dict())
    low, high = np.full(3, -5.0), np.full(3, 5.0)
    a = impute(torch_model, values[None], seen[None], extra[None], low, high)
    b = impute(core_model, values[None], seen[None], extra[None], low, high)
    np.testing.assert_allclose(a, b, atol=1e-5)


# ---- fill.py


def saved_model(run_dir: Path, columns: list[str], date_columns: list[str]) -> Path:
    """A model.pt as train.py writes it, from an untrained imputer."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model = Imputer(input_size=len(columns), hidden_size=8, extra_size=2, impl="torch")
    save_model(run_dir / "model.pt", model, columns=columns, date_columns=date_columns,
               frequency="daily", calendar=True, mean=[1.0] * len(columns),
               std=[2.0] * len(columns), low=[-10.0] * len(columns),
               high=[10.0] * len(columns))
    return run_dir


def test_fill_changes_only_the_missing_cells(tmp_path: Path) -> None:
    rows = [["Date", "Temp", "note", "Wind"],
            ["2021-03-01", "1.50", "a; b", " 2.0"],
            ["2021-03-02", "", "", "3e-1"],
            ["2021-03-03", "-0.25", "c", "NA"],
            ["2021-03-04", "n/a", "d", "4"],
            ["2021-03-05", "7", "e", ""]]
    source = write_csv(tmp_path / "in.csv", rows, separator=";")
    before = source.read_bytes()
    run_dir = saved_model(tmp_path / "run", ["temp", "wind"], ["date"])
    out = tmp_path / "out.csv"
    assert fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir)]) == 4
    assert source.read_bytes() == before
    with open(out, newline="") as f:
        written = list(csv.reader(f, delimiter=";"))
    missing = {(2, 1), (4, 1), (3, 3), (5, 3)}
    assert len(written) == len(rows)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if (i, j) in missing:
                assert np.isfinite(float(written[i][j]))
                assert len(written[i][j].split(".")[1]) == (2 if j == 1 else 1)
            else:  # observed, or not a trained column (the empty note stays empty)
                assert written[i][j] == cell, (i, j)


def test_train_on_a_csv_then_fill_it(tmp_path: Path) -> None:
    source = daily_csv(tmp_path / "series.csv")
    run_dir = tmp_path / "run"
    task.main(["--csv", str(source), "--columns", "a", "b", "c", "--date-columns", "date",
               "--dry-run", "--window", "40", "--run-dir", str(run_dir), "--threads", "1"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    keys = {f"{k}@{p}" for p in task.PATTERNS for k in ("mae", "rmse")}
    for method in ("model", *task.BASELINES):
        assert keys <= metrics["test"][method].keys()
    assert (run_dir / "per_variable.csv").read_text().count("\n") == 1 + 5 * 3 * 3
    out = tmp_path / "filled.csv"
    fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir)])
    table = read_table(out, ["a", "b", "c"], ["date"])
    assert np.isfinite(table.values).all()
    original = read_table(source, ["a", "b", "c"], ["date"])
    seen = np.isfinite(original.values)
    np.testing.assert_array_equal(table.values[seen], original.values[seen])


# ---- bad inputs: exit 2, one line, no traceback


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {"good": daily_csv(tmp_path / "good.csv", rows=60),
            "text": write_csv(tmp_path / "text.csv", [["date", "a"], ["2020-01-01", "1"],
                                                      ["2020-01-02", "lots"]]),
            "gap": write_csv(tmp_path / "gap.csv", [["date", "a"], ["2020-01-01", "1"],
                                                    ["2020-01-02", "2"], ["2020-01-04", "3"]]),
            "run": saved_model(tmp_path / "run", ["a", "b", "c"], ["date"]),
            "out": tmp_path / "out.csv"}


def test_bad_inputs_as_a_user_runs_them_exit_2_with_one_line(files) -> None:
    """Two commands in subprocesses, as typed; the other cases run in-process below."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cases = {"holds 'lots', not a number": ["train", "--csv", str(files["text"]), "--columns",
                                            "a", "--date-columns", "date"],
             "is the input file": ["fill", str(files["good"]), "--output",
                                   str(files["good"]), "--run-dir", str(files["run"])]}
    started = {message: subprocess.Popen([sys.executable, "-m", f"{PACKAGE}.{argv[0]}",
                                          *argv[1:]], cwd=files["out"].parent, env=env,
                                         text=True, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
               for message, argv in cases.items()}
    for message, process in started.items():
        _, err = process.communicate(timeout=120)
        assert process.returncode == 2, (message, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert message in err, err
    assert files["good"].read_text().count("\n") == 61


@pytest.mark.parametrize("argv, message", [
    (["--csv", "gap", "--columns", "a", "--date-columns", "date"], "consecutive days"),
    (["--csv", "good"], "--csv needs --columns"),
    (["--csv", "good", "--columns", "a", "wind", "--date-columns", "date"],
     "no column 'wind'"),
    (["--csv", "good", "--columns", "a", "--date-columns", "a"], "cannot read a date"),
    (["--csv", "good", "--columns", "a", "--date-columns", "date", "--window", "100"],
     "lower --window"),
])
def test_bad_training_inputs_are_one_line(files, argv, message, capsys) -> None:
    argv = [str(files[a]) if a in files else a for a in argv]
    assert message in one_line_error(task.main, [*argv, "--run-dir", str(files["out"])],
                                     capsys)
    assert not files["out"].exists()  # a bad CSV leaves no run folder behind


@pytest.mark.parametrize("source, run_dir, message", [
    ("good", "missing", "no trained model"),
    ("text", "run", "was trained on columns a, b, c"),
    ("gap", "run", "no column 'b'"),
])
def test_bad_fill_inputs_are_one_line(files, source, run_dir, message, capsys) -> None:
    run_folder = files.get(run_dir, files["out"].parent / run_dir)
    err = one_line_error(fill.main, [str(files[source]), "--output", str(files["out"]),
                                     "--run-dir", str(run_folder)], capsys)
    assert message in err and not files["out"].exists()
