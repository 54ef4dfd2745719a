"""series_impute on irregular series (rows at any times): the seeded maker of the battery's
irregular series and its shipped example, gaps and interpolation in time rather than rows,
the season looked up by each row's own date, the imputer's three cells, training and fill
on the shipped example, and dates out of order or repeated as one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tasks.series_impute import baselines, fill, irregular
from tasks.series_impute import train as train_task
from tasks.series_impute.model import CELLS, Imputer, impute, interpolate, time_gaps
from tasks.series_impute.steps import DAY, Step, cycle_position, row_times
from tasks.series_impute.table import read_table
from tests.helpers import one_line_error

EXAMPLE = Path(irregular.__file__).with_name("irregular_example.csv")


def regular_frame(rows: int = 400) -> pd.DataFrame:
    dates = np.datetime64("2001-01-01") + np.arange(rows)
    return pd.DataFrame({"date": dates.astype(str), "x": np.arange(rows) * 0.5})


# ---- the maker and its example


def test_the_maker_is_seeded_drops_about_40_percent_and_leaves_no_regular_step(tmp_path
                                                                              ) -> None:
    frame = regular_frame()
    first, again = irregular.make_irregular(frame, "date"), irregular.make_irregular(frame,
                                                                                  "date")
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(irregular.make_irregular(frame, "date", seed=1))
    assert 0.35 <= 1 - len(first) / len(frame) <= 0.45
    path = irregular.write_csv(first, tmp_path / "irregular.csv")
    table = read_table(path, ["x"], ["date"])
    assert table.step.irregular and table.step.label == "about 1 day"
    assert "no regular step" in table.note
    # each kept row keeps its value, at a time within JITTER of a step of its own day
    kept = (first["x"] * 2).round().astype(int).to_numpy()
    np.testing.assert_allclose(table.times - kept, np.full(len(kept), table.times[0] - kept[0]),
                               atol=2 * irregular.JITTER)


def test_the_shipped_example_is_the_seeded_co2_record(tmp_path) -> None:
    pytest.importorskip("statsmodels")
    made = irregular.co2_irregular_csv(tmp_path)
    assert made.read_bytes() == EXAMPLE.read_bytes()
    assert EXAMPLE.stat().st_size < 100_000
    table = read_table(EXAMPLE, ["co2"], ["date"])
    assert table.step == Step(seconds=7 * DAY, irregular=True)


# ---- time, not rows


def test_linear_interpolation_is_in_time_with_uneven_gaps() -> None:
    values = np.array([[1.0], [9.0], [9.0], [4.0], [9.0]])
    seen = np.array([[True], [False], [False], [True], [False]])
    times = np.array([0.0, 1.0, 4.0, 6.0, 7.5])       # rows would give 1, 2, 3, 4, 4
    np.testing.assert_allclose(baselines.fill_linear(values, seen, times)[:, 0],
                               [1, 1.5, 3, 4, 4])
    filled, before, after = interpolate(values[None], seen[None], times[None])
    np.testing.assert_allclose(filled[0, :, 0], [1, 1.5, 3, 4, 4])
    np.testing.assert_allclose(before[0, :, 0], [0, 1, 4, 0, 1.5])
    span = 7.5 * 5 / 4  # no seen row after the last: five rows' worth of the mean gap
    np.testing.assert_allclose(after[0, :, 0], [0, 5, 2, 0, span])
    season = np.array([[0.0], [1.0], [1.0], [2.0], [0.0]])  # anomalies 1 at t=0, 2 at t=6
    np.testing.assert_allclose(
        baselines.fill_seasonal(values, seen, season, np.array([True]), times)[:, 0],
        [1, 1 + 7 / 6, 1 + 5 / 3, 4, 2])


def test_deltas_come_from_the_timestamps_forwards_and_backwards() -> None:
    """BRITS's example (Cao et al. 2018, figure 1): readings at times 0, 2, 7, 9, 14."""
    seen = np.array([[1, 0, 1, 1, 0], [0, 1, 0, 1, 1]], bool).T[None]   # (1, T, 2)
    times = np.array([[0.0, 2.0, 7.0, 9.0, 14.0]])
    np.testing.assert_array_equal(time_gaps(seen, times)[0].T,
                                  [[0, 2, 7, 2, 5], [0, 2, 5, 7, 5]])
    backward = times[:, -1:] - times[:, ::-1]          # as Imputer runs it: 0, 5, 7, 12, 14
    np.testing.assert_array_equal(time_gaps(seen[:, ::-1], backward)[0].T,
                                  [[0, 5, 2, 5, 7], [0, 5, 2, 7, 2]])
    rows = np.arange(5, dtype=float)[None]  # a regular series: its rows, as before
    np.testing.assert_array_equal(time_gaps(seen, rows), time_gaps(seen))


def test_a_regular_series_reads_the_same_with_its_row_times() -> None:
    """One code path: rows 0, 1, 2, ... as times give exactly the numbers of rows."""
    rng = np.random.default_rng(0)
    values, seen = rng.normal(size=(2, 50, 3)), rng.random((2, 50, 3)) > 0.4
    rows = np.tile(np.arange(50.0), (2, 1))
    for a, b in zip(interpolate(values, seen), interpolate(values, seen, rows), strict=True):
        np.testing.assert_array_equal(a, b)
    dates = np.datetime64("2020-01-01") + np.arange(5)
    np.testing.assert_array_equal(row_times(dates, Step(seconds=DAY)), np.arange(5.0))


def test_the_season_is_looked_up_by_each_rows_own_date() -> None:
    stamps = np.array(["2021-01-01T20:00", "2021-01-03T05:00", "2021-02-01T12:00"],
                      dtype="datetime64[s]")
    positions, period = cycle_position(stamps, Step(seconds=DAY, irregular=True))
    np.testing.assert_array_equal(positions, [0, 2, 31])
    assert period == 366
    np.testing.assert_allclose(row_times(stamps, Step(seconds=DAY, irregular=True)),
                               [0, 33 / 24, 30 + 16 / 24])


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_imputes_an_irregular_window_without_reading_hidden_values(cell) -> None:
    torch.manual_seed(0)
    model = Imputer(input_size=2, hidden_size=8, extra_size=0, impl="torch", cell=cell)
    with torch.no_grad():  # the head starts at zero: give it weights, or it is interpolation
        model.head[2].weight.normal_(0, 0.5)
    rng = np.random.default_rng(1)
    values, seen = rng.normal(size=(1, 40, 2)), rng.random((1, 40, 2)) > 0.3
    times = np.cumsum(rng.uniform(0.3, 3.0, 40))[None]
    args = (np.zeros((1, 40, 0)), np.zeros((1, 40, 2)), np.full(2, -np.inf), 16)
    clean = impute(model, values, seen, args[0], args[1], args[2], args[3], times)
    poisoned = impute(model, np.where(seen, values, 1e30), seen, *args, times)
    np.testing.assert_array_equal(clean, poisoned)
    stretched = impute(model, values, seen, *args, times * 3)  # the gaps reach the cells
    assert np.abs(stretched - clean)[~seen].max() > 1e-4


# ---- training and fill on the shipped example


@pytest.mark.parametrize("cell, used", [("auto", "grui"), ("gru", "gru")])
def test_the_irregular_example_trains_and_fills(tmp_path, capsys, cell, used) -> None:
    run_dir = tmp_path / "run"
    train_task.main(["--csv", str(EXAMPLE), "--columns", "co2", "--date-columns", "date",
                     "--cell", cell, "--dry-run", "--mask-draws", "2", "--threads", "1",
                     "--run-dir", str(run_dir)])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["config"]["cell"] == used
    assert {"model", "fill", "linear", "seasonal"} <= metrics["test"].keys()
    assert "read as an irregular series" in capsys.readouterr().out
    out = tmp_path / "filled.csv"
    assert fill.main([str(EXAMPLE), "--output", str(out), "--run-dir", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert "draws of this file's own observed cells" in printed
    original, filled = (read_table(p, ["co2"], ["date"]) for p in (EXAMPLE, out))
    seen = np.isfinite(original.values)
    assert np.isfinite(filled.values).all() and (~seen).sum() > 0
    np.testing.assert_array_equal(filled.values[seen], original.values[seen])
    np.testing.assert_array_equal(filled.dates, original.dates)


def test_fill_refuses_a_file_far_from_the_models_step(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    train_task.main(["--csv", str(EXAMPLE), "--columns", "co2", "--date-columns", "date",
                     "--dry-run", "--mask-draws", "2", "--threads", "1", "--run-dir",
                     str(run_dir)])
    daily = irregular.write_csv(irregular.make_irregular(
        regular_frame().rename(columns={"x": "co2"}), "date"), tmp_path / "daily.csv")
    err = one_line_error(fill.main, [str(daily), "--output", str(tmp_path / "out.csv"),
                                     "--run-dir", str(run_dir)], capsys)
    assert "has rows about 1 day apart but" in err and "about 1 week apart" in err


# ---- dates out of order or repeated: one line each


@pytest.mark.parametrize("dates, message", [
    (["2020-01-01 10:00", "2020-01-02 09:30", "2020-01-02 09:00", "2020-01-04 01:00"],
     "rows 3 and 4 are 2020-01-02 09:30 then 2020-01-02 09:00"),
    (["2020-01-01 10:00", "2020-01-02 09:30", "2020-01-02 09:30", "2020-01-04 01:00"],
     "rows 3 and 4 have the same date, 2020-01-02 09:30"),
    (["2020-01-01 10:00:05+01:00", "2020-01-01 10:00:05+02:00", "2020-01-04 01:00+02:00"],
     "rows 2 and 3 have the same date, 2020-01-01 10:00:05"),
])
def test_unsorted_or_repeated_times_are_one_line(tmp_path, capsys, dates, message) -> None:
    rows = ["date,x", *(f"{d},{i}" for i, d in enumerate(dates))]
    source = tmp_path / "bad.csv"
    source.write_text("\n".join(rows) + "\n")
    argv = ["--csv", str(source), "--columns", "x", "--date-columns", "date", "--run-dir",
            str(tmp_path / "run")]
    assert message in one_line_error(train_task.main, argv, capsys)
    assert not (tmp_path / "run").exists()
