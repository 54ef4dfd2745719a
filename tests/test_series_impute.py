"""series_impute: no method (baseline or network) ever reads a hidden value, the masks are
reproducible from their seed, the step of a series is found from its dates (missing rows
become missing cells), fill.py keeps every observed cell as the file wrote it and says
which cells it left empty, and bad inputs end in one line. Synthetic series only: no
dataset needed."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import core.files
import core.model_file
from core.config import UserError
from tasks.series_impute import baselines, battery, choose, datasets, fill, interval
from tasks.series_impute import data as task
from tasks.series_impute import model as model_module
from tasks.series_impute import train as train_task
from tasks.series_impute.baselines import BASELINES
from tasks.series_impute.model import Imputer, impute, interpolate, save_model, windows
from tasks.series_impute.shrink import fit_shrink
from tasks.series_impute.steps import DAY, Step, calendar, cycle_position
from tasks.series_impute.table import Numbers, read_table
from tests.helpers import one_line_error

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tasks.series_impute"
DAILY = Step(seconds=DAY)
FINE = task.BLOCK_ROWS["fine"]  # the blocks of a long daily series


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
    first = task.fixed_masks(observed, "test", FINE, 7)
    again = task.fixed_masks(observed, "test", FINE, 7)
    other_seed = task.fixed_masks(observed, "test", FINE, 8)
    validation = task.fixed_masks(observed, "val", FINE, 7)
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


def test_point_masks_hide_about_their_share_and_one_entry_at_least() -> None:
    observed = np.ones((1000, 4), dtype=bool)
    for pattern, share in task.POINT_SHARE.items():
        hidden = task.hide(observed, pattern, FINE, np.random.default_rng(0))
        assert abs(hidden.mean() - share) < 0.03
    short = np.ones((3, 50), dtype=bool)  # 0.9**3: most variables get no point at 0.1
    short[:, 0] = False
    hidden = task.hide_points(short, 0.1, np.random.default_rng(0))
    assert (hidden[:, 1:].sum(axis=0) >= 1).all() and not hidden[:, 0].any()


# ---- no method reads a hidden value


def small_imputer(impl: str) -> Imputer:
    torch.manual_seed(0)
    return Imputer(input_size=3, hidden_size=8, extra_size=2, impl=impl)


def trained_looking(model: Imputer) -> Imputer:
    """The head's last layer, which starts at zero, given random weights: an untrained
    imputer is linear interpolation, and would test nothing of the network."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.head[2].parameters():
            parameter.normal_(0, 0.5)
    return model


def methods() -> dict:
    """Every way the task fills a series: values (T, F), seen (T, F) -> filled (T, F)."""
    season = np.tile(np.linspace(-1, 1, 120)[:, None], (1, 3))
    extra = calendar(daily_dates(120), DAILY)
    low = np.full(3, -np.inf)

    def network(impl: str, window: int):
        model = trained_looking(small_imputer(impl))
        return lambda v, s: impute(model, v[None], s[None], extra[None], season[None], low,
                                   window)[0]

    return {"mean": lambda v, s: baselines.fill_constant(v, s, np.zeros(3)),
            "median": lambda v, s: baselines.fill_constant(v, s, np.array([0.5, -1.0, 2.0])),
            "locf": baselines.fill_locf, "linear": baselines.fill_linear,
            "seasonal": lambda v, s: baselines.fill_seasonal(v, s, season, np.zeros(3, bool)),
            "seasonal+offset": lambda v, s: baselines.fill_seasonal(v, s, season,
                                                                    np.ones(3, bool)),
            "model (torch)": network("torch", 200), "model (core)": network("core", 200),
            "model in windows": network("torch", 40)}


@pytest.mark.parametrize("poison", [np.nan, 1e30, -1e30])
def test_no_method_reads_a_hidden_value(poison: float) -> None:
    values = series()
    rng = np.random.default_rng(5)
    hidden = task.hide(np.ones(values.shape, bool), "points50", FINE, rng)
    hidden |= task.hide(np.ones(values.shape, bool), "block", FINE, rng)
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
    np.testing.assert_array_equal(baselines.fill_linear(values, seen)[:, 0], [1, 2, 3, 4, 4])
    np.testing.assert_array_equal(baselines.fill_locf(values, seen)[:, 0], [1, 1, 1, 4, 4])
    np.testing.assert_array_equal(baselines.fill_constant(values, seen, np.zeros(1))[:, 0],
                                  [1, 0, 0, 4, 0])
    np.testing.assert_array_equal(baselines.fill_constant(values, seen, np.array([-2.0]))[:, 0],
                                  [1, -2, -2, 4, -2])
    late = np.array([[False], [True], [False]])
    np.testing.assert_array_equal(baselines.fill_locf(np.array([[9.0], [2.0], [9.0]]), late)[:, 0],
                                  [2, 2, 2])
    season = np.array([[0.0], [1.0], [1.0], [2.0], [0.0]])  # anomalies 1 at row 0, 2 at 3
    with_offset = baselines.fill_seasonal(values, seen, season, np.array([True]))
    np.testing.assert_allclose(with_offset[:, 0], [1, 1 + 4 / 3, 1 + 5 / 3, 4, 2])


def test_core_and_torch_cells_give_the_same_imputations() -> None:
    values, seen = series(), np.random.default_rng(2).random((120, 3)) > 0.3
    extra = calendar(daily_dates(120), DAILY)
    torch_model, core_model = trained_looking(small_imputer("torch")), small_imputer("core")
    core_model.load_state_dict(torch_model.state_dict())
    season, low = np.zeros((120, 3)), np.full(3, -np.inf)
    a = impute(torch_model, values[None], seen[None], extra[None], season[None], low, 64)
    b = impute(core_model, values[None], seen[None], extra[None], season[None], low, 64)
    np.testing.assert_allclose(a, b, atol=1e-5)


# ---- fill.py


def saved_model(run_dir: Path, columns: list[str], date_columns: list[str],
                step: str = "1 day") -> Path:
    """A model.pt as train.py writes it, from an untrained imputer."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model = Imputer(input_size=len(columns), hidden_size=8, extra_size=2, impl="torch")
    save_model(run_dir / "model.pt", model, columns=columns, date_columns=date_columns,
               step=step, calendar=True, mean=[1.0] * len(columns),
               std=[2.0] * len(columns), median=[0.0] * len(columns),
               nonnegative=[False] * len(columns), season=[], window=16,
               fallback={kind: ["linear"] * len(columns) for kind in choose.KINDS})
    return run_dir


# 4: the records and date cells kept a few to a string (table.Texts), over blocks
@pytest.mark.parametrize("chunk", [Numbers.CHUNK, 4])
def test_fill_changes_only_the_missing_cells(tmp_path: Path, chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(Numbers, "CHUNK", chunk)
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
    assert fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir)]) == 0
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
    train_task.main(["--csv", str(source), "--columns", "a", "b", "c", "--date-columns", "date",
               "--dry-run", "--window", "40", "--run-dir", str(run_dir), "--threads", "1"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    keys = {f"{k}@{p}{s}" for p in task.PATTERNS for k in ("mae", "rmse")
            for s in ("", "_std", "_ci95_low", "_ci95_high")}
    for method in ("model", "fill", *BASELINES):
        scores = metrics["test"][method]
        assert keys <= scores.keys()
        for p in task.PATTERNS:
            assert (scores[f"mae@{p}_ci95_low"] <= scores[f"mae@{p}"]
                    <= scores[f"mae@{p}_ci95_high"])
            assert scores[f"mae@{p}_std"] > 0  # the draws differ
    ratios = [metrics["test"]["model"][f"mae@{p}_ratio{s}"] for p in task.PATTERNS
              for s in ("_ci95_low", "", "_ci95_high")]
    assert all(a <= b for a, b in zip(ratios[::3], ratios[1::3], strict=True))
    assert (run_dir / "per_variable.csv").read_text().count("\n") == 1 + 6 * 3 * 3
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
            "irregular": write_csv(tmp_path / "irregular.csv",
                                   [["date", "a"], ["2020-01-01 00:00", "1"],
                                    ["2020-01-02 00:00", "2"], ["2020-01-03 00:00", "2"],
                                    ["2020-01-04 07:00", "3"]]),
            "unsorted": write_csv(tmp_path / "unsorted.csv",
                                  [["date", "a"], *([f"2020-01-0{d}", "1"] for d in (1, 2, 1))]),
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
    (["--csv", "unsorted", "--columns", "a", "--date-columns", "date"],
     "rows 3 and 4 are 2020-01-02 then 2020-01-01"),
    (["--csv", "good"], "--csv needs --columns"),
    (["--csv", "good", "--columns", "a", "wind", "--date-columns", "date"],
     "no column 'wind'"),
    (["--csv", "good", "--columns", "a", "--date-columns", "a"], "cannot read a date"),
    (["--csv", "good", "--columns", "a", "--date-columns", "date", "--window", "100"],
     "lower --window"),
])
def test_bad_training_inputs_are_one_line(files, argv, message, capsys) -> None:
    argv = [str(files[a]) if a in files else a for a in argv]
    assert message in one_line_error(train_task.main, [*argv, "--run-dir", str(files["out"])],
                                     capsys)
    assert not files["out"].exists()  # a bad CSV leaves no run folder behind


@pytest.mark.parametrize("source, run_dir, message", [
    ("good", "missing", "no trained model"),
    ("text", "run", "was trained on columns a, b, c"),
    ("irregular", "run", "no column 'b'"),
])
def test_bad_fill_inputs_are_one_line(files, source, run_dir, message, capsys) -> None:
    run_folder = files.get(run_dir, files["out"].parent / run_dir)
    err = one_line_error(fill.main, [str(files[source]), "--output", str(files["out"]),
                                     "--run-dir", str(run_folder)], capsys)
    assert message in err and not files["out"].exists()


# ---- the step of a series, from its dates


def dated_csv(path: Path, dates: list[str], values: list[str] | None = None) -> Path:
    values = values or [str(i) for i in range(len(dates))]
    return write_csv(path, [["when", "x"], *([d, v] for d, v in zip(dates, values,
                                                                   strict=True))])


def stamps(start: str, count: int, **step) -> list[str]:
    return [f"{d:%Y-%m-%d %H:%M}" for d in pd.date_range(start, periods=count,
                                                         freq=pd.DateOffset(**step))]


@pytest.mark.parametrize("dates, label, cycle, period", [
    (stamps("2020-01-01", 6, minutes=10), "10 minutes", "day", 144),
    (stamps("2020-01-01 05:00", 6, hours=1), "1 hour", "day", 24),
    (stamps("1958-03-29", 6, weeks=1), "1 week", "year", 53),
    (["2020-01", "2020-02", "2020-03", "2020-04"], "1 month", "year", 12),
    (["2019-10-31", "2019-11-30", "2019-12-31", "2020-01-31", "2020-02-29"], "1 month",
     "year", 12),
    (["1990", "1991", "1992", "1993"], "1 year", None, None),
    (["2001-01-01", "2001-04-01", "2001-07-01"], "3 months", "year", 4),
    ([f"{d:%Y-%m-%d}" for d in pd.bdate_range("2021-03-01", periods=30)], "business days",
     "year", 366),
    ([f"{d:%Y-%m-%d}" for d in pd.date_range("2021-03-01", periods=60)
      if d.weekday() in (0, 2, 4)], "1 day except Tue, Thu, Sat, Sun", "year", 366),
    ([f"{d:%Y-%m-%d %H:%M}" for d in pd.date_range("2021-03-01", periods=24 * 35, freq="h")
      if d.weekday() < 5 and 8 <= d.hour < 18], "1 hour except week steps 0-7, 18-31, "
     "42-55, 66-79, 90-103, 114-167", "day", 24),
])
def test_the_step_is_found_from_the_dates(tmp_path, dates, label, cycle, period) -> None:
    table = read_table(dated_csv(tmp_path / "s.csv", dates), ["x"], ["when"])
    assert table.step.label == label and Step.from_label(label) == table.step
    assert table.step.cycle == cycle and len(table.values) == len(dates)
    np.testing.assert_array_equal(table.file_rows, np.arange(len(dates)))
    if cycle:
        positions, found = cycle_position(table.dates, table.step)
        assert found == period and (positions >= 0).all() and (positions < period).all()
        if len(dates) <= period:  # consecutive rows, distinct places
            assert len(set(positions)) == len(dates)


def test_cycle_positions_are_the_hour_the_week_and_the_month() -> None:
    hours = np.datetime64("2020-03-05T00:00") + np.arange(30) * np.timedelta64(1, "h")
    np.testing.assert_array_equal(cycle_position(hours, Step(seconds=3600))[0],
                                  np.arange(30) % 24)
    days = np.datetime64("2021-01-01") + np.arange(365)
    np.testing.assert_array_equal(cycle_position(days, DAILY)[0], np.arange(365))
    weeks = np.datetime64("2021-01-01") + 7 * np.arange(52)
    np.testing.assert_array_equal(cycle_position(weeks, Step(seconds=7 * DAY))[0],
                                  np.arange(52))
    months = np.arange("2020-01", "2021-06", dtype="datetime64[M]")
    np.testing.assert_array_equal(cycle_position(months, Step(months=1))[0],
                                  np.arange(17) % 12)
    angle = calendar(hours, Step(seconds=3600))  # 23:00 sits next to midnight
    assert np.linalg.norm(angle[23] - angle[24]) < 0.3


def test_a_row_left_out_is_a_row_of_missing_cells(tmp_path) -> None:
    dates = ["1958-03-29", "1958-04-05", "1958-04-19", "1958-04-26", "1958-05-10"]
    table = read_table(dated_csv(tmp_path / "w.csv", dates, ["1", "2", "3", "", "5"]),
                       ["x"], ["when"])
    assert table.step.label == "1 week"
    np.testing.assert_array_equal(table.file_rows, [0, 1, -1, 2, 3, -1, 4])
    np.testing.assert_array_equal(np.isnan(table.values[:, 0]),
                                  [False, False, True, False, True, True, False])
    assert str(table.dates[2])[:10] == "1958-04-12" and str(table.dates[5])[:10] == "1958-05-03"
    months = read_table(dated_csv(tmp_path / "m.csv", ["2020-01-31", "2020-02-29",
                                                      "2020-04-30"]), ["x"], ["when"])
    assert str(months.dates[2])[:10] == "2020-03-31"


@pytest.mark.parametrize("dates, message", [
    (["2020-01-01 00:00", "2020-01-02 00:00", "2020-01-03 00:00", "2020-01-04 07:00"],
     "no regular step (rows 4 and 5 are 2020-01-03 then 2020-01-04 07:00"),
    (["2020-01-01", "2020-01-08", "2020-01-15", "2020-01-19"],
     "4 days apart, no whole number of 1 week"),
])
def test_a_series_with_no_regular_step_is_read_as_irregular_naming_its_rows(
        tmp_path, dates, message) -> None:
    table = read_table(dated_csv(tmp_path / "irregular.csv", dates), ["x"], ["when"])
    assert table.step.irregular and message in table.note
    np.testing.assert_array_equal(table.file_rows, np.arange(len(dates)))


@pytest.mark.parametrize("dates, message", [
    (["2020-01-01", "2020-01-03", "2020-01-02"],
     "rows 3 and 4 are 2020-01-03 then 2020-01-02 (the file has '2020-01-03' then "
     "'2020-01-02'): the dates must rise"),
    (["2020-01-01", "2020-01-01", "2020-01-02"], "rows 2 and 3 have the same date, 2020-01-01"),
])
def test_dates_that_fall_or_repeat_are_refused_naming_the_rows(tmp_path, dates,
                                                               message) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        read_table(dated_csv(tmp_path / "bad.csv", dates), ["x"], ["when"])


def test_a_huge_cell_is_not_echoed_whole(tmp_path) -> None:
    huge = "9" * 5_000 + "x" * 5_000
    for dates, values in [(["2020-01-01", "2020-01-02"], ["1", huge]),
                          (["2020-01-01", huge], ["1", "2"])]:
        with pytest.raises(UserError) as error:
            read_table(dated_csv(tmp_path / "huge.csv", dates, values), ["x"], ["when"])
        assert len(str(error.value)) < 600 and "(10000 characters)" in str(error.value)


def regular_csv(path: Path, dates: list[str], rows: int, left_out: int = 0) -> Path:
    """when,a,b on the given dates, a few empty cells; `left_out` rows dropped."""
    values = series(rows, 2)
    body = [[d, f"{v[0]:.2f}" if i % 17 else "", f"{v[1]:.2f}"]
            for i, (d, v) in enumerate(zip(dates, values, strict=True))]
    if left_out:
        del body[100:100 + left_out]
    return write_csv(path, [["when", "a", "b"], *body])


def train_quietly(source: Path, run_dir: Path, *extra: str) -> dict:
    train_task.main(["--csv", str(source), "--columns", "a", "b", "--date-columns", "when",
               "--dry-run", "--run-dir", str(run_dir), "--threads", "1", "--mask-draws", "3",
               *extra])
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_weekly_series_with_missing_rows_trains_and_fills(tmp_path) -> None:
    """The issue's case: a weekly record with left-out rows, trained on and filled."""
    source = regular_csv(tmp_path / "weekly.csv", stamps("1958-03-29", 400, weeks=1), 400,
                         left_out=2)
    run_dir = tmp_path / "run"
    metrics = train_quietly(source, run_dir, "--calendar")
    assert set(metrics["test"]) == {"model", "fill", *BASELINES}
    out = tmp_path / "filled.csv"
    status = fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir)])
    assert status == 1  # the two left-out rows are not answered
    assert out.read_text().count("\n") == source.read_text().count("\n")
    filled = read_table(out, ["a", "b"], ["when"])
    present = filled.file_rows >= 0
    assert np.isfinite(filled.values[present]).all()
    assert np.isnan(filled.values[~present]).all() and (~present).sum() == 2


def test_a_yearly_series_has_no_seasonal_baseline_and_refuses_calendar(tmp_path,
                                                                      capsys) -> None:
    source = regular_csv(tmp_path / "yearly.csv", [str(1700 + i) for i in range(90)], 90)
    metrics = train_quietly(source, tmp_path / "run", "--window", "10")
    assert set(metrics["test"]) == {"model", "fill", *BASELINES} - {"seasonal"}
    assert "seasonal baseline: none, rows 1 year apart" in capsys.readouterr().out
    err = one_line_error(train_task.main, ["--csv", str(source), "--columns", "a", "b",
                                     "--date-columns", "when", "--calendar", "--window",
                                     "10", "--run-dir", str(tmp_path / "other")], capsys)
    assert "rows are 1 year apart, so they have no place in a day or a year" in err


def test_two_runs_with_one_seed_give_identical_numbers(tmp_path) -> None:
    source = regular_csv(tmp_path / "daily.csv", stamps("2020-01-01", 320, days=1), 320)
    first, second = (train_quietly(source, tmp_path / name, "--window", "40")["test"]
                     for name in ("one", "two"))
    assert first == second


# ---- fill: cells it cannot answer, and files it cannot read or write


def test_fill_says_which_cells_it_left_empty_and_why(tmp_path, capsys) -> None:
    rows = [["date", "a", "b", "c"], ["2021-03-01", "1", "", "2"],
            ["2021-03-02", "", "", "3"], ["2021-03-04", "2", "", ""]]
    source = write_csv(tmp_path / "in.csv", rows)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    out = tmp_path / "out.csv"
    assert fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir)]) == 1
    printed = capsys.readouterr().out
    assert "filled 2 of 8 missing cells (a 1 of 2, b 0 of 4, c 1 of 2)" in printed
    assert ("not answered: 3 cell(s) of a, b, c on 2021-03-03: the file has no row for "
            "these dates (its step is 1 day)") in printed
    assert "not answered: 3 cell(s) of b on 2021-03-01, 2021-03-02, 2021-03-04: the column " \
           "has no value anywhere" in printed
    with open(out, newline="") as f:
        written = list(csv.reader(f))
    assert [row[2] for row in written[1:]] == ["", "", ""] and len(written) == 4


def test_the_shipped_example_fills_every_cell(tmp_path, capsys) -> None:
    example = ROOT / "tasks" / "series_impute" / "gaps.csv"
    columns = ["precipitation", "temp_max", "temp_min", "wind"]
    run_dir = saved_model(tmp_path / "run", columns, ["date"])
    assert fill.main([str(example), "--output", str(tmp_path / "filled.csv"), "--run-dir",
                      str(run_dir)]) == 0
    assert "filled 13 of 13 missing cells" in capsys.readouterr().out
    assert np.isfinite(read_table(tmp_path / "filled.csv", columns, ["date"]).values).all()


def test_a_full_disk_is_an_error_and_leaves_no_file(files, monkeypatch, capsys) -> None:
    class FullDisk:
        def __init__(self, path, *args, **kwargs):
            self.file = open(path, "w")

        def write(self, text: str) -> int:
            self.file.write(text[:len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.close()

    monkeypatch.setattr(core.files, "open", FullDisk, raising=False)
    err = one_line_error(fill.main, [str(files["good"]), "--output", str(files["out"]),
                                     "--run-dir", str(files["run"])], capsys)
    assert "no space left" in err
    assert list(files["out"].parent.glob("out.csv*")) == []


def test_unreadable_input_is_one_line_saying_permission(files, monkeypatch, capsys) -> None:
    source = files["good"]
    source.chmod(0)
    if os.access(source, os.R_OK):  # root reads anything: make open refuse as it would
        real_open = open

        def refusing(path, *args, **kwargs):
            if Path(path) == source:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr("builtins.open", refusing)
    try:
        for main, argv in [(train_task.main, ["--csv", str(source), "--columns", "a",
                                        "--date-columns", "date"]),
                           (fill.main, [str(source), "--run-dir", str(files["run"])])]:
            err = one_line_error(main, [*argv, "--output" if main is fill.main else
                                        "--run-dir", str(files["out"])], capsys)
            assert "permission denied" in err, err
    finally:
        source.chmod(0o644)


def test_output_naming_a_folder_is_one_line(files, capsys) -> None:
    err = one_line_error(fill.main, [str(files["good"]), "--output", str(files["out"].parent),
                                     "--run-dir", str(files["run"])], capsys)
    assert "is a folder; give a file name" in err


@pytest.mark.parametrize("content, message", [
    (b"\x00garbage" * 10, "not a model file torch can load"),
    (None, "not this task's model.pt"),
])
def test_a_damaged_or_foreign_model_is_one_line(files, content, message, capsys) -> None:
    run_dir = files["out"].parent / "bad_run"
    run_dir.mkdir()
    if content is None:
        torch.save({"model": {}, "weights": [1, 2]}, run_dir / "model.pt")
    else:
        (run_dir / "model.pt").write_bytes(content)
    err = one_line_error(fill.main, [str(files["good"]), "--output", str(files["out"]),
                                     "--run-dir", str(run_dir)], capsys)
    assert message in err and not files["out"].exists()


def test_a_bad_fill_flag_is_one_line(files, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fill.main([str(files["good"]), "--output", str(files["out"]), "--no-such-flag"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--no-such-flag" in err, err


# ---- the imputer: the classical fill when untrained, at home on any level


def test_an_untrained_imputer_gives_linear_interpolation() -> None:
    """The head's last layer starts at zero: the network corrects linear interpolation,
    so one that has learned nothing gives it, not the mean."""
    values, seen = series(), np.random.default_rng(4).random((120, 3)) > 0.4
    seen[:3, 0] = False  # before the first seen row: flat, as fill_linear
    season = np.tile(np.linspace(-1, 1, 120)[:, None], (1, 3))
    out = impute(small_imputer("torch"), values[None], seen[None],
                 calendar(daily_dates(120), DAILY)[None], season[None], np.full(3, -np.inf),
                 48)[0]
    np.testing.assert_allclose(out, baselines.fill_linear(values, seen), atol=1e-5)
    np.testing.assert_allclose(interpolate(values[None], seen[None])[0][0],
                               baselines.fill_linear(values, seen), atol=1e-12)


def test_the_kept_share_blends_the_network_with_a_classical_fill_by_gap_kind() -> None:
    """shrink.py's knobs: each gap kind (short or long, as fill's check counts them) keeps
    its share of the correction and gives the rest to linear interpolation or the
    seasonal fill: none of it is that baseline itself, to the last bit (a tie, not a
    loss), all of it the network."""
    values, seen = series(), np.random.default_rng(6).random((120, 3)) > 0.3
    seen[30:45, 1] = False  # a long gap, inside the windows that keep its rows
    seen[:2, 0], seen[2, 0], seen[-2:, 2], seen[-3, 2] = False, True, False, True  # short
    model = trained_looking(small_imputer("torch"))                            # at the ends
    model.short_gap.fill_(7)
    extra = calendar(daily_dates(120), DAILY)
    season = np.tile(np.sin(np.arange(120) / 9)[:, None], (1, 3))

    def filled(short: float, long: float, toward: float = 0.0) -> np.ndarray:
        model.shrink[0], model.shrink[1] = short, long
        model.toward.fill_(toward)
        return impute(model, values[None], seen[None], extra[None], season[None],
                      np.full(3, -np.inf), 48)[0]

    network, linear, seasonal = filled(1, 1), filled(0, 0), filled(0, 0, toward=1)
    np.testing.assert_array_equal(linear, baselines.fill_linear(values, seen))
    np.testing.assert_array_equal(seasonal, baselines.fill_seasonal(values, seen, season,
                                                                    np.ones(3, bool)))
    assert np.abs(network - linear)[~seen].min() > 0  # a network that moves every cell
    kinds = choose.gap_kinds(seen, (7, 30))
    assert kinds["short"].any() and kinds["long"].any()
    np.testing.assert_array_equal((model_module.gap_rows(seen[None])[0] >= 7) & ~seen,
                                  kinds["long"])  # the network counts gaps as the check
    mixed = filled(0, 1)
    np.testing.assert_allclose(mixed[kinds["short"]], linear[kinds["short"]], atol=1e-5)
    np.testing.assert_allclose(mixed[kinds["long"]], network[kinds["long"]], atol=1e-5)
    np.testing.assert_allclose(filled(0.5, 0.5), (network + linear) / 2, atol=1e-5)
    np.testing.assert_allclose(filled(0.5, 0.5, toward=1), (network + seasonal) / 2,
                               atol=1e-5)


def test_a_network_that_loses_on_validation_gives_interpolation_back(tmp_path) -> None:
    """A network whose correction only hurts (large random weights in its last layer)
    keeps none of it; a model.pt from before the shrink keeps all of it."""
    source = daily_csv(tmp_path / "daily.csv", rows=400, missing=0.0)
    data = task.prepare(*task.load("", str(source), ["a", "b", "c"], ["date"]), 0, False,
                        12, 2)
    cfg = train_task.Config(window=data.sizes.window, mask_seed=12)
    model = trained_looking(Imputer(input_size=3, hidden_size=8, extra_size=0,
                                    impl="torch"))
    with torch.no_grad():
        model.head[2].weight.mul_(20)
    kept, toward = fit_shrink(cfg, data, model)
    assert kept.shape == toward.shape == (2, 3) and (kept == 0).all(), kept
    np.testing.assert_allclose(model.shrink.numpy(), kept, atol=1e-6)
    np.testing.assert_array_equal(model.toward.numpy(), toward)

    class Before(torch.nn.Module):  # the same weights, as a model.pt held them before
        def state_dict(self, *args, **kwargs):
            state = model.state_dict()
            del state["shrink"], state["toward"], state["short_gap"]
            return state

    core.model_file.save(tmp_path / "model.pt", Before(), config=dict(model.config),
                         **dict.fromkeys(model_module.SAVED[2:], 0))
    loaded, _ = model_module.load_model(tmp_path / "model.pt", "train")
    assert (loaded.shrink == 1).all() and (loaded.toward == 0).all()
    np.testing.assert_array_equal(loaded.head[2].weight.detach(), model.head[2].weight.detach())


@pytest.mark.parametrize("shift, scale", [(1000.0, 1.0), (-37.5, 1.0), (5.0, 30.0)])
def test_the_imputation_moves_with_the_level_and_scale_of_the_series(shift, scale) -> None:
    """RevIN and the correction of a classical fill: a series moved by `shift` (and
    stretched by `scale`) is imputed moved and stretched alike, however far that lies
    from anything seen in training."""
    values, seen = series(), np.random.default_rng(6).random((120, 3)) > 0.3
    seen[40:60, 1] = False  # a long gap too
    model = trained_looking(small_imputer("torch"))
    extra, season = calendar(daily_dates(120), DAILY), np.zeros((120, 3))
    low = np.full(3, -np.inf)
    base = impute(model, values[None], seen[None], extra[None], season[None], low, 48)[0]
    moved = impute(model, (values * scale + shift)[None], seen[None], extra[None],
                   season[None], low, 48)[0]
    assert np.abs(base - baselines.fill_linear(values, seen))[~seen].max() > 0.01
    np.testing.assert_allclose(moved, base * scale + shift, atol=2e-3 * scale, rtol=1e-5)


@pytest.mark.parametrize("rows, window", [(10, 16), (16, 16), (17, 16), (100, 16), (333, 64)])
def test_windows_tile_the_series_with_room_on_each_side(rows, window) -> None:
    parts = windows(rows, window)
    kept = np.concatenate([np.arange(keep, stop) for _, _, keep, stop in parts])
    np.testing.assert_array_equal(kept, np.arange(rows))
    for start, end, keep, stop in parts:
        assert 0 <= start <= keep < stop <= end <= rows and end - start == min(rows, window)
        assert keep == 0 or keep - start >= window // 4
        assert stop == rows or end - stop >= window // 4


# ---- fill checks itself on the file


def test_fill_checks_the_methods_on_the_file_and_uses_the_winner(tmp_path, capsys) -> None:
    """On a smooth series with a trend, the untrained network is linear interpolation
    and the mean is far off: the check says which is used, and --method forces one."""
    source = daily_csv(tmp_path / "s.csv", rows=400)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    out = tmp_path / "out.csv"
    fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir)])
    printed = capsys.readouterr().out
    assert "draws of this file's own observed cells" in printed
    used = [line.split()[3] for line in printed.splitlines() if line.startswith(("a ", "b "))]
    # a and b's short gaps: the file has no long one, and a kind it fills none of is no row
    assert len(used) == 2 and "mean" not in used and "median" not in used, printed
    original = read_table(source, ["a", "b", "c"], ["date"])
    seen = np.isfinite(original.values)
    forced = tmp_path / "linear.csv"
    fill.main([str(source), "--output", str(forced), "--run-dir", str(run_dir), "--method",
               "mean"])
    assert "--method mean: every cell filled by it" in capsys.readouterr().out
    filled = read_table(forced, ["a", "b", "c"], ["date"]).values
    np.testing.assert_allclose(filled[~seen], np.broadcast_to([1.0] * 3, seen.shape)[~seen])


def test_a_file_too_short_to_check_says_so_and_uses_the_fallback(tmp_path, capsys) -> None:
    source = daily_csv(tmp_path / "short.csv", rows=20, missing=0.2)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    fill.main([str(source), "--output", str(tmp_path / "out.csv"), "--run-dir", str(run_dir)])
    printed = capsys.readouterr().out
    assert "too short to check" in printed and "a linear" in printed


def scores_of(**per_draw: list[float]) -> dict[str, dict[str, np.ndarray]]:
    """{kind: {method: MAE (DRAWS, 1)}}, one variable, the same for both kinds."""
    by_method = {m: np.array(v, dtype=float)[:, None] for m, v in per_draw.items()}
    return dict.fromkeys(choose.KINDS, by_method)


@pytest.mark.parametrize("model, mean, expected", [
    ([0.99, 0.99, 0.99, 0.99, 0.99], [1.5] * 5, "linear"),   # a hair better: noise
    ([0.97, 1.01, 0.96, 1.0, 0.97], [1.5] * 5, "linear"),    # a hair better, noisily
    ([0.5, 1.5, 0.6, 1.4, 0.7], [1.5] * 5, "linear"),        # better on the mean: noise
    ([0.5, 0.5, 0.5, 0.5, 1.01], [1.5] * 5, "model"),        # far better beyond the noise,
    # though not in each draw (the seasonal fill on a short seasonal file)
    ([0.9, 0.9, 0.9, 0.9, 0.9], [1.5] * 5, "model"),         # clearly, in every draw
    ([0.9, 0.9, 0.9, 0.9, 0.9], [0.8] * 5, "mean"),          # both clearly: the lower
    ([np.nan, 0.9, 0.9, 0.9, 0.9], [1.5] * 5, "model"),      # a draw that scored none
])
def test_linear_stays_unless_a_challenger_wins_beyond_the_noise(model, mean,
                                                                expected) -> None:
    scores = scores_of(linear=[1.0] * 5, model=model, mean=mean)
    assert choose.choose(scores) == dict.fromkeys(choose.KINDS, [expected])


def test_a_file_too_short_to_check_gets_one_baseline_over_every_variable() -> None:
    """Baselines only, on the MAE over the variables: the network never, and linear
    unless one wins clearly over them all."""
    linear = np.ones((5, 2))
    wins_on_one = {"linear": linear, "model": linear * 0.1,
                   "locf": np.tile([0.5, 1.6], (5, 1))}         # over both: 1.05
    wins_on_both = {**wins_on_one, "seasonal": np.tile([0.8, 0.9], (5, 1))}
    assert choose.choose(dict(short=wins_on_one), network=False) == {"short": ["linear"] * 2}
    assert choose.choose(dict(short=wins_on_both), network=False) == {"short": ["seasonal"] * 2}


def test_the_fill_row_never_reads_a_hidden_test_value(tmp_path) -> None:
    """train.py's "fill" row checks itself on the test rows as each draw leaves them
    seen: poisoning the cells a draw hides changes nothing it writes, nor any interval
    (fill's, the network's, linear interpolation's), each calibrated on that check."""
    table = read_table(daily_csv(tmp_path / "s.csv", rows=400), ["a", "b", "c"], ["date"])
    data = task.prepare(table, "s.csv", ["date"], 40, False, mask_seed=0, mask_draws=1)
    imputer = trained_looking(Imputer(input_size=3, hidden_size=8, extra_size=0,
                                      impl="torch"))
    median = np.zeros(3)
    _, _, fallback = choose.on_unseen_rows(imputer, data, 40, median, seed=0)
    clean = choose.on_test(imputer, data, 40, median, fallback, seed=0)[0]
    test, truth = data.parts["test"], data.truth("test").copy()
    for pattern, hidden in data.test_masks[0].items():
        data.z[test] = np.where(hidden, 1e30, truth)
        dirty = choose.on_test(imputer, data, 40, median, fallback, seed=0)[0]
        for method in choose.BANDED:
            for a, b in zip(dirty[pattern][method], clean[pattern][method], strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"{pattern} {method}")
    data.z[test] = truth


def test_gap_kinds_split_short_gaps_from_long_ones() -> None:
    seen = np.ones((30, 1), bool)
    seen[[2, 5, 6], 0] = False
    seen[10:20, 0] = False
    kinds = choose.gap_kinds(seen, FINE)
    np.testing.assert_array_equal(np.nonzero(kinds["short"][:, 0])[0], [2, 5, 6])
    np.testing.assert_array_equal(np.nonzero(kinds["long"][:, 0])[0], np.arange(10, 20))


# ---- the battery and torchrun


@pytest.mark.parametrize("name", battery.SERIES)
def test_each_battery_series_trains_in_a_dry_run(name, tmp_path) -> None:
    argv = dict(battery.battery_runs([name]))[name]
    if name not in ("co2", "sunspots", "synthetic", "co2_irregular", "elec_equip",
                    "business") and not os.environ.get(
            "RNN_TASKS_DATA_MIRROR"):
        pytest.skip("the dataset needs RNN_TASKS_DATA_MIRROR (no download in tests)")
    train_task.main([*argv, "--dry-run", "--mask-draws", "2", "--threads", "1", "--run-dir",
                     str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"model", "fill", "linear"} <= metrics["test"].keys()
    assert "mae@block_ratio_ci95_high" in metrics["test"]["fill"]
    assert metrics["fill_choice"]  # what fill would use, per variable and gap kind


def test_a_level_shift_is_in_the_synthetic_test_part_only(tmp_path) -> None:
    path = datasets.synthetic_csv(tmp_path)
    table = read_table(path, ["a", "b", "c"], ["date"])
    n_train, n_val = task.split_rows(len(table.values))
    jumps = np.abs(np.diff(table.values, axis=0)).max(axis=1)
    assert np.argmax(jumps) + 1 > n_train + n_val  # the largest step is in the test part


def test_torchrun_with_two_processes_equals_one(tmp_path) -> None:
    """The step calls only DDP's forward, and the loss is a mean over windows, so two
    processes, each with half of every batch, take the one process's steps."""
    from tests.test_distributed import assert_same_weights, launch
    source = daily_csv(tmp_path / "s.csv", rows=320)
    args = ["--csv", str(source), "--columns", "a", "b", "c", "--date-columns", "date",
            "--dry-run", "--window", "32", "--mask-draws", "2", "--batch-size", "8",
            "--device", "cpu"]
    for nproc in (1, 2):
        launch(nproc, f"{PACKAGE}.train", *args, "--run-dir", str(tmp_path / f"n{nproc}"))
    assert_same_weights(tmp_path / "n1", tmp_path / "n2", atol=1e-5)


def test_a_draw_that_is_not_finite_gives_null_spread_not_a_traceback() -> None:
    """A baseline exact on every hidden cell makes the model's ratio infinite; the spread of
    such draws is nan (null in metrics.json), where statistics.stdev raised AttributeError."""
    from tasks.series_impute.scores import spread
    assert all(math.isnan(v) for v in spread([1.0, float("inf"), 2.0]))
    mean, std, low, high = spread([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0) and low < 2.0 < high


def test_a_paired_ratio_is_the_ratio_of_the_means_and_one_exact_draw_cannot_blow_it_up(
        ) -> None:
    from tasks.series_impute.scores import ratio_spread, t_quantile_975
    assert ratio_spread([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (1.0, 1.0, 1.0)  # a tie
    ratio, low, high = ratio_spread([2.0, 4.0, 6.5], [1.0, 2.0, 3.0])
    # by hand: 12.5 / 6; a - ratio * b = (-1/12, -1/6, 0.25), sd 0.2205, over sqrt(3) x 2
    half = t_quantile_975(2) * 0.22048 / (math.sqrt(3) * 2)
    assert math.isclose(ratio, 12.5 / 6) and math.isclose(high - ratio, half, rel_tol=1e-4)
    assert math.isclose(ratio - low, half, rel_tol=1e-4)
    # a draw where the baseline is almost exact: the mean of per-draw ratios would be 34
    assert math.isclose(ratio_spread([0.1, 0.1, 0.1], [0.001, 0.1, 0.1])[0], 0.3 / 0.201)
    assert all(math.isnan(v) for v in ratio_spread([1.0, float("inf")], [1.0, 1.0]))


# ---- fill's choice weighs the check's noise; its interval is calibrated on the check


def classical_only(values: np.ndarray, season: np.ndarray | None
                   ) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """check()'s fills(seen) with the classical fills alone (the "model" a copy of
    linear interpolation, as an untrained network's)."""
    def fills(seen: np.ndarray) -> dict[str, np.ndarray]:
        each = [choose.classical_fills(values, s, np.zeros(values.shape[1]), season)
                for s in seen]
        out = {m: np.stack([e[m] for e in each]) for m in each[0]}
        return {"model": out["linear"], **out}
    return fills


def test_a_short_seasonal_file_is_filled_by_its_seasonal_fill() -> None:
    """Eight years of monthly rows, a yearly season under as much noise: on the check's
    long blocks the seasonal fill beats linear interpolation by far in most draws, not in
    all; fill must use it (issue 34: it kept linear unless it won every draw)."""
    monthly = Step(months=1)
    rng = np.random.default_rng(0)
    season = np.tile(np.sin(2 * np.pi * np.arange(12) / 12)[:, None], (8, 1))  # (96, 1)
    values = season + rng.normal(size=season.shape)
    observed = np.ones(values.shape, bool)
    assert choose.draws(len(values)) > choose.DRAWS  # a short file: more draws
    result = choose.check(classical_only(values, season), values, observed,
                          task.block_rows(monthly, len(values)), seed=0)
    long = result.scores["long"]
    assert not (long["seasonal"] < long["linear"]).all()  # it loses a draw or more
    assert choose.choose(result.scores)["long"] == ["seasonal"]


def test_interval_pieces_against_hand_computed_values() -> None:
    seen = np.array([[1, 0, 0, 0, 0, 1, 0]], bool).T
    np.testing.assert_array_equal(interval.distance(seen)[:, 0], [0, 1, 2, 2, 1, 0, 1])
    np.testing.assert_array_equal(interval.bin_of(np.array([1, 2, 3, 4, 7, 8, 50])),
                                  [0, 1, 1, 2, 2, 3, 3])
    scores = np.arange(1.0, 20.0)  # 19 scores: ceil(20 * 0.9) = 18th smallest
    assert interval.conformal_quantile(scores, 0.9) == 18.0
    assert interval.conformal_quantile(scores[:5], 0.9) == math.inf


def test_the_interval_covers_about_its_level_on_a_series_with_known_noise() -> None:
    """A smooth wave plus iid noise; a tenth of the cells are the file's real gaps. fill's
    recipe (check the rest, calibrate linear interpolation's errors on the check's hidden
    cells) must cover about 90% of the gaps' true values, not far more, nor far less."""
    rng = np.random.default_rng(5)
    t = np.arange(3000)[:, None]
    values = np.sin(2 * np.pi * t / 200 + np.arange(2)) + 0.3 * rng.normal(size=(3000, 2))
    observed = rng.random(values.shape) > 0.1
    result = choose.check(classical_only(values, None), values, observed, FINE, seed=0)
    linear = dict.fromkeys(choose.KINDS, ["linear"] * 2)
    calibration = interval.calibrate(*choose.check_errors(result, values, linear, FINE), 2,
                                     0.9)
    half, beyond = interval.half_width(calibration, observed,
                                       choose.gap_kinds(observed, FINE)["long"])
    filled = baselines.fill_linear(values, observed)
    inside = (np.abs(filled - values) <= half)[~observed]
    assert 0.85 <= inside.mean() <= 0.95 and len(inside) > 500
    assert not beyond.any() and (half[observed] == 0).all()


def test_fill_writes_each_filled_cells_interval_beside_its_column(tmp_path, capsys) -> None:
    source = daily_csv(tmp_path / "s.csv", rows=400)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    out, picture = tmp_path / "out.csv", tmp_path / "filled.png"
    assert fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir),
                      "--interval", "0.9", "--plot", str(picture)]) == 0
    assert "bounds from" in capsys.readouterr().out and picture.stat().st_size > 0
    with open(out, newline="") as f:
        header, *body = list(csv.reader(f))
    assert header == ["date", "a", "a_lo", "a_hi", "b", "b_lo", "b_hi", "c", "c_lo", "c_hi",
                      "note"]
    original = read_table(source, ["a", "b", "c"], ["date"]).values
    for j, name in enumerate(["a", "b", "c"]):
        at = header.index(name)
        missing = np.isnan(original[:, j])
        lower, value, upper = (np.array([float(row[at + k] or "nan") for row in body])
                               for k in (1, 0, 2))
        assert np.isnan(lower[~missing]).all() and np.isnan(upper[~missing]).all()
        assert (lower[missing] < value[missing]).all()
        assert (value[missing] < upper[missing]).all()


def test_a_gap_longer_than_the_check_hid_gets_the_widest_bounds_and_one_line(
        tmp_path, capsys) -> None:
    source = daily_csv(tmp_path / "s.csv", rows=400, missing=0.0)
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[151:251]:  # 100 days of column a: 50 from a reading at the middle
        row[1] = ""
    write_csv(source, rows)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    out = tmp_path / "out.csv"
    assert fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir),
                      "--interval", "0.9"]) == 0
    warned = [line for line in capsys.readouterr().out.splitlines()
              if "farther from an observed value than any the check hid" in line]
    assert len(warned) == 1, warned
    with open(out, newline="") as f:
        body = list(csv.reader(f))[1:]
    widths = np.array([float(row[3]) - float(row[2]) for row in body[150:250]])
    assert (widths[45:55] >= widths.max() - 0.02).all()  # the middle: the widest (2 decimals)


def test_a_file_with_no_gaps_has_no_bounds_to_write(tmp_path, capsys) -> None:
    source = daily_csv(tmp_path / "full.csv", rows=200, missing=0.0)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    out = tmp_path / "out.csv"
    assert fill.main([str(source), "--output", str(out), "--run-dir", str(run_dir),
                      "--interval", "0.9"]) == 0
    assert "no missing cell to fill, so no bounds to write" in capsys.readouterr().out
    with open(out, newline="") as f:
        header, *body = list(csv.reader(f))
    assert header[2:4] == ["a_lo", "a_hi"] and all(row[2] == row[3] == "" for row in body)


@pytest.mark.parametrize("level", ["0", "1", "1.5", "-0.1", "nan"])
def test_an_interval_level_outside_0_1_is_one_line(files, level, capsys) -> None:
    err = one_line_error(fill.main, [str(files["good"]), "--output", str(files["out"]),
                                     "--run-dir", str(files["run"]), "--interval", level],
                         capsys)
    assert "give a level between 0 and 1" in err and not files["out"].exists()


def test_an_interval_on_a_file_shorter_than_a_block_is_one_line(tmp_path, capsys) -> None:
    rows = [["date", "a", "b", "c"], ["2021-03-01", "1", "2", "2"],
            ["2021-03-02", "", "1", "3"], ["2021-03-03", "2", "", "4"]]
    source = write_csv(tmp_path / "in.csv", rows)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    err = one_line_error(fill.main, [str(source), "--output", str(tmp_path / "out.csv"),
                                     "--run-dir", str(run_dir), "--interval", "0.9"], capsys)
    assert "too few to calibrate an interval" in err and not (tmp_path / "out.csv").exists()


# ---- the files people have: short, business days, any era, odd inputs


def wave_csv(path: Path, dates: list[str], date_column: str = "date",
             missing: tuple[int, ...] = (3, 11)) -> Path:
    """date,a,b on `dates`: two waves with noise, `missing` rows of a empty."""
    values = series(len(dates), 2)
    return write_csv(path, [[date_column, "a", "b"],
                            *([d, "" if i in missing else f"{v[0]:.3f}", f"{v[1]:.3f}"]
                              for i, (d, v) in enumerate(zip(dates, values, strict=True)))])


def train_and_fill(source: Path, tmp_path: Path, capsys, date_column: str = "date"
                   ) -> tuple[str, int]:
    """A --dry-run train at the defaults, then fill of the same file: (printed, status)."""
    run_dir = tmp_path / "run"
    train_task.main(["--csv", str(source), "--columns", "a", "b", "--date-columns",
                     date_column, "--dry-run", "--mask-draws", "2", "--threads", "1",
                     "--run-dir", str(run_dir)])
    status = fill.main([str(source), "--output", str(tmp_path / "out.csv"), "--run-dir",
                        str(run_dir)])
    return capsys.readouterr().out, status


@pytest.mark.parametrize("rows, step", [(40, DAILY), (72, Step(months=1)), (153, DAILY)])
def test_a_short_file_trains_at_the_defaults_saying_how_it_is_cut(tmp_path, capsys, rows,
                                                                  step) -> None:
    dates = stamps("1990-01-01", rows, **({"months": 1} if step.months else {"days": 1}))
    source = wave_csv(tmp_path / "short.csv", [d[:10] for d in dates])
    printed, status = train_and_fill(source, tmp_path, capsys)
    cut = task.sizes(len(dates), step)
    assert f"rows {step.label} apart" in printed
    assert status == 0 and f"short file ({len(dates)} rows): window {cut.window}" in printed
    assert cut.window < task.WINDOW and cut.blocks == task.BLOCK_ROWS["coarse"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["window"] == cut.window  # recorded as used


@pytest.mark.parametrize("rows", [2, 20])
def test_a_file_too_short_to_learn_from_says_what_it_needs(tmp_path, capsys, rows) -> None:
    source = wave_csv(tmp_path / "tiny.csv", [d[:10] for d in stamps("2020-01-01", rows,
                                                                     days=1)], missing=())
    err = one_line_error(train_task.main, ["--csv", str(source), "--columns", "a", "b",
                                           "--date-columns", "date", "--run-dir",
                                           str(tmp_path / "run")], capsys)
    assert f"has {rows} rows" in err and f"at least {task.MIN_ROWS}" in err
    assert "--window" not in err


def test_business_days_are_a_calendar_whose_weekends_are_no_gaps(tmp_path, capsys) -> None:
    """Rows on pandas' business days with a few empty cells and one weekday holiday: read
    as business days (Friday then Monday one step), trained on, and filled with exit 0;
    the holiday stays out of the output, said in a line."""
    days = [f"{d:%Y-%m-%d}" for d in pd.bdate_range("2019-01-01", periods=400)]
    holiday = days.pop(200)
    source = wave_csv(tmp_path / "prices.csv", days, missing=(5, 50, 300))
    table = read_table(source, ["a", "b"], ["date"])
    assert table.step.label == "business days" and len(table.values) == 400
    assert str(table.dates[200])[:10] == holiday and table.file_rows[200] == -1
    assert pd.Timestamp(table.dates[4]).weekday() == 0  # 2019-01-07, a Monday, follows Friday
    printed, status = train_and_fill(source, tmp_path, capsys)
    assert status == 0 and "rows business days apart" in printed
    assert "filled 3 of 3 missing cells" in printed and holiday in printed
    written = read_table(tmp_path / "out.csv", ["a", "b"], ["date"])
    present = written.file_rows >= 0
    assert np.isfinite(written.values[present]).all() and present.sum() == 399


def test_a_daily_file_with_rows_dropped_is_read_on_the_models_daily_step(tmp_path,
                                                                        capsys) -> None:
    """pandas' dropna left most rows 2 days apart: with a daily model that is a daily file
    with rows left out (answered as such), not a file on another step."""
    days = [d[:10] for d in stamps("2021-01-01", 120, days=1)]
    source = wave_csv(tmp_path / "dropped.csv", days[::2], missing=(4,))
    assert read_table(source, ["a", "b"], ["date"]).step.label == "2 days"
    run_dir = saved_model(tmp_path / "run", ["a", "b"], ["date"])
    status = fill.main([str(source), "--output", str(tmp_path / "out.csv"), "--run-dir",
                        str(run_dir)])
    printed = capsys.readouterr().out
    assert status == 1 and "filled 1 of 119 missing cells" in printed
    assert "(its step is 1 day)" in printed  # the dropped rows: left out, said so


def test_a_record_thousands_of_years_long_trains_and_plots_on_a_year_axis(tmp_path,
                                                                         capsys) -> None:
    source = wave_csv(tmp_path / "old.csv", [str(y) for y in range(-6000, 0)], "year")
    printed, status = train_and_fill(source, tmp_path, capsys, "year")
    assert status == 0 and "rows 1 year apart" in printed
    assert (tmp_path / "run" / "test_block_a.png").stat().st_size > 0


def test_years_from_1_are_read_as_years(tmp_path) -> None:
    source = wave_csv(tmp_path / "early.csv", [str(y) for y in range(1, 61)], "year")
    table = read_table(source, ["a", "b"], ["year"])
    assert table.step.label == "1 year" and str(table.dates[0])[:10] == "0001-01-01"
    assert str(table.dates[-1])[:4] == "0060"


def test_fill_on_a_one_row_file_warns_nothing(tmp_path, capsys) -> None:
    source = write_csv(tmp_path / "one.csv", [["date", "a", "b"], ["2021-01-01", "1.5", ""]])
    run_dir = saved_model(tmp_path / "run", ["a", "b"], ["date"], step="about 1 day")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in divide"
        assert fill.main([str(source), "--output", str(tmp_path / "out.csv"), "--run-dir",
                          str(run_dir)]) == 1
    assert "the column has no value anywhere" in capsys.readouterr().out


def test_dates_with_and_without_an_offset_are_refused_naming_time_zones(tmp_path) -> None:
    source = dated_csv(tmp_path / "zones.csv", ["2021-01-01 00:00", "2021-01-02 00:00+01:00",
                                                "2021-01-03 00:00"])
    with pytest.raises(UserError, match="mixes dates with a time-zone offset"):
        read_table(source, ["x"], ["when"])


def test_a_dataset_and_a_csv_together_are_refused(files, capsys) -> None:
    err = one_line_error(train_task.main, ["--dataset", "co2_irregular", "--csv",
                                           str(files["good"]), "--columns", "a",
                                           "--date-columns", "date"], capsys)
    assert "--dataset co2_irregular and --csv" in err and "conflict" in err


# ---- cost: bounded memory and time however long the file


def test_impute_in_batches_of_windows_equals_one_pass(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    values, seen = rng.normal(size=(2, 300, 3)), rng.random((2, 300, 3)) > 0.3
    args = (values, seen, np.zeros((2, 300, 0)), np.zeros((2, 300, 3)), np.full(3, -np.inf),
            32)
    model = trained_looking(Imputer(input_size=3, hidden_size=8, extra_size=0, impl="torch"))
    whole = impute(model, *args)
    monkeypatch.setattr(model_module, "IMPUTE_BATCH", 3)
    np.testing.assert_allclose(impute(model, *args), whole, rtol=1e-5, atol=1e-6)


def test_a_long_file_is_scored_on_its_last_rows(tmp_path, capsys) -> None:
    assert task.split_rows(10**6)[1] == task.MOST_TEST_ROWS // 2
    assert 10**6 - sum(task.split_rows(10**6)) == task.MOST_TEST_ROWS
    source = wave_csv(tmp_path / "long.csv", [d[:16] for d in stamps("2020-01-01", 3000,
                                                                      hours=1)])
    table = read_table(source, ["a", "b"], ["date"])
    data = task.prepare(table, "long.csv", ["date"], 0, False, 0, 2, task.DRY_TEST_ROWS)
    assert len(data.parts["test"]) == task.DRY_TEST_ROWS  # as a --dry-run cuts it
    assert data.parts["test"][-1] == 2999 and data.n_train == 3000 - 600
    assert "long file (3000 rows)" in capsys.readouterr().out


def test_fill_checks_a_long_file_on_its_last_rows(tmp_path, capsys, monkeypatch) -> None:
    source = daily_csv(tmp_path / "s.csv", rows=400)
    run_dir = saved_model(tmp_path / "run", ["a", "b", "c"], ["date"])
    monkeypatch.setattr(fill, "CHECK_ROWS", 150)
    assert fill.main([str(source), "--output", str(tmp_path / "out.csv"), "--run-dir",
                      str(run_dir)]) == 0
    assert "own observed cells (its last 150 rows)" in capsys.readouterr().out


def test_the_scale_files_are_seeded_series_on_a_10_minute_step(tmp_path) -> None:
    from tasks.series_impute.scale import COLUMNS, scale_csv
    path = scale_csv(tmp_path / "s.csv", 500)
    assert path.read_bytes() == scale_csv(tmp_path / "again.csv", 500).read_bytes()
    table = read_table(path, COLUMNS, ["date"])
    assert table.step.label == "10 minutes" and 0 < np.isnan(table.values).sum() < 100
