"""core.series, core.baselines and the forecasting metrics: window alignment, no peeking
at the future, train-only scaling, CSV checks, and baselines against hand-computed values
(and AR against statsmodels' AutoReg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.baselines import (
    ar_forecast,
    climatology,
    fit_ar,
    fit_climatology,
    persistence,
    seasonal_naive,
)
from core.config import UserError
from core.metrics import mase, seasonal_scale
from core.series import (
    StandardScaler,
    month_features,
    monthly_std,
    read_monthly_csv,
    targets,
    walk_forward,
    windows,
)


def test_first_target_is_index_lags() -> None:
    values = np.arange(10.0)[:, None]
    lags = 3
    x = windows(values, lags, np.array([lags, lags + 1]))
    np.testing.assert_array_equal(x[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(x[1, :, 0], [1, 2, 3])
    np.testing.assert_array_equal(targets(values[:, 0], np.array([lags]), 2), [[3, 4]])
    with pytest.raises(ValueError):
        windows(values, lags, np.array([lags - 1]))


def test_targets_past_the_end_are_nan() -> None:
    out = targets(np.arange(5.0), np.array([3, 4]), 3)
    np.testing.assert_array_equal(out[0, :2], [3, 4])
    assert np.isnan(out[0, 2]) and np.isnan(out[1, 1:]).all()


def test_windows_do_not_depend_on_the_origin_or_later() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 2))
    origins = np.arange(5, 30)
    before = windows(values, 5, origins)
    for o in origins:
        changed = values.copy()
        changed[o:] = np.nan  # anything read at or after the origin would show up as NaN
        np.testing.assert_array_equal(windows(changed, 5, np.array([o]))[0], before[o - 5])


def test_walk_forward_never_reads_a_future_value() -> None:
    series = np.zeros(40)
    series[30] = 1e6  # a forecaster that saw month 30 (or later) would predict the spike
    seen = []

    def peeking(past: np.ndarray) -> np.ndarray:
        seen.append(len(past))
        return np.array([past.max()] * 3)

    for h in (1, 2, 3):
        seen.clear()
        out = walk_forward(series, np.arange(25, 31), h, peeking)
        assert out.max() == 0.0
        assert seen == [t - h + 1 for t in range(25, 31)]


def test_walk_forward_refuses_a_month_without_past() -> None:
    with pytest.raises(ValueError, match="no past"):
        walk_forward(np.arange(10.0), np.array([1, 5]), 2, lambda past: past[-2:])


def test_walk_forward_hands_out_a_read_only_past() -> None:
    def writer(past: np.ndarray) -> np.ndarray:
        past[-1] = 0.0
        return past[-1:]

    with pytest.raises(ValueError):
        walk_forward(np.ones(10), np.array([5]), 1, writer)


def test_scaler_uses_training_rows_only() -> None:
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = StandardScaler.fit(train)
    np.testing.assert_allclose(scaler.mean, [2.0, 5.0])
    np.testing.assert_allclose(scaler.std, [1.0, 1.0])  # constant column: std 1, not 0
    test = np.array([[100.0, 7.0]])
    np.testing.assert_allclose(scaler.transform(test), [[98.0, 2.0]])
    np.testing.assert_allclose(scaler.inverse(scaler.transform(test)), test)


def test_month_features_put_december_next_to_january() -> None:
    f = month_features(np.array([1, 6, 7, 12]))
    assert f.shape == (4, 2)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0)
    assert np.linalg.norm(f[0] - f[3]) < np.linalg.norm(f[0] - f[1])
    np.testing.assert_allclose(f[0] + f[2], 0.0, atol=1e-12)  # January opposite July


def test_monthly_std() -> None:
    months = np.array([1, 1, 2, 2] + list(range(3, 13)))
    values = np.array([1.0, 3.0, 4.0, 4.0] + [0.0] * 10)
    std = monthly_std(values, months)
    assert std[0] == 1.0 and std[1] == 1.0 and std.shape == (12,)


# ---- baselines


def test_ar_equals_statsmodels_autoreg() -> None:
    ar_model = pytest.importorskip("statsmodels.tsa.ar_model",
                                   reason="statsmodels is a test-only reference")
    rng = np.random.default_rng(1)
    t = np.arange(200)
    series = 100 + 50 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 10, size=200)
    ours = fit_ar(series, 12)
    theirs = ar_model.AutoReg(series, lags=12, trend="c").fit()
    np.testing.assert_allclose(ours, theirs.params, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ar_forecast(ours, series, 5),
                               theirs.predict(start=200, end=204), atol=1e-6, rtol=0)


def test_ar_forecast_by_hand() -> None:
    coef = np.array([1.0, 0.5, 0.25])  # y_t = 1 + 0.5 y_{t-1} + 0.25 y_{t-2}
    out = ar_forecast(coef, np.array([9.0, 4.0, 2.0]), 2)
    first = 1 + 0.5 * 2 + 0.25 * 4
    np.testing.assert_allclose(out, [first, 1 + 0.5 * first + 0.25 * 2])


def test_simple_baselines_by_hand() -> None:
    past = np.arange(1.0, 25.0)  # 24 months: 1..24
    np.testing.assert_array_equal(seasonal_naive(past, 3), [13, 14, 15])
    np.testing.assert_array_equal(persistence(past, 2), [24, 24])
    months = np.tile(np.arange(1, 13), 2)
    means = fit_climatology(past, months)
    np.testing.assert_array_equal(means, np.arange(7.0, 19.0))  # (m + m + 12) / 2
    np.testing.assert_array_equal(climatology(means, np.array([12, 1])), [18, 7])
    with pytest.raises(ValueError):
        fit_climatology(past[:6], months[:6])


def test_mase_and_seasonal_scale_by_hand() -> None:
    train = np.array([0, 0, 10, 20])
    assert seasonal_scale(train, 2) == 15.0  # |10 - 0|, |20 - 0|
    assert mase(np.array([1.0, 2.0]), np.array([4.0, -1.0]), 15.0) == pytest.approx(0.2)


# ---- reading a monthly CSV


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def monthly_rows(n: int, value: str = "1.5") -> str:
    return "".join(f"{2000 + i // 12},{i % 12 + 1},{value}\n" for i in range(n))


def test_read_monthly_csv_matches_spaces_and_underscores(tmp_path: Path) -> None:
    path = write(tmp_path, "Year,Month,Relative Humidity\n" + monthly_rows(14))
    frame = read_monthly_csv(path, ["relative_humidity"], ["Year", "Month"], min_rows=14)
    assert frame.values.shape == (14, 1) and frame.columns == ["Relative Humidity"]
    np.testing.assert_array_equal(frame.months[:3], [1, 2, 3])
    np.testing.assert_array_equal(frame.months[12:], [1, 2])


def test_read_monthly_csv_single_date_column(tmp_path: Path) -> None:
    path = write(tmp_path, "date,rain\n2001-11-01,1\n2001-12-01,2\n2002-01-01,3\n")
    frame = read_monthly_csv(path, ["rain"], ["date"], min_rows=3)
    np.testing.assert_array_equal(frame.months, [11, 12, 1])


@pytest.mark.parametrize("text, message", [
    ("Year,Month,Rain\n" + monthly_rows(14), r"no column 'Precipitation'; found: Year, Month"),
    ("Year,Month,Precipitation\n" + monthly_rows(14).replace("2000,6,1.5", "2000,6,lots"),
     r"row 7 .* holds 'lots', not a number"),
    ("Year,Month,Precipitation\n" + monthly_rows(14, ""),
     r"row 2 .* is empty; 14 missing or non-numeric cells"),
    ("Year,Month,Precipitation\n" + monthly_rows(14).replace("2000,6,1.5", "2000,6,inf"),
     r"row 7 .* holds 'inf', not a number"),
    ("Year,Month,Precipitation\n" + monthly_rows(5), r"has 5 rows; this run needs at least 14"),
    ("Year,Month,Precipitation\n2000,1,1\n2000,3,1\n" + "2000,4,1\n" * 12,
     r"2000-01 then 2000-03: the rows must be consecutive months"),
])
def test_bad_csv_says_what_was_found(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_monthly_csv(write(tmp_path, text), ["Precipitation"], ["Year", "Month"],
                         min_rows=14)


# ---- issue 14: CSVs as spreadsheets export them, and dates pandas misreads


def dated_rows(n: int, date: str) -> str:
    """n monthly rows `<date>,1` from January 2000; `date` formats year y, month m."""
    return "".join(date.format(y=2000 + i // 12, m=i % 12 + 1) + ",1\n" for i in range(n))


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_semicolon_tab_and_bar_separated_csvs_are_read(tmp_path: Path, sep: str) -> None:
    text = "Year,Month,Precipitation\n" + monthly_rows(14)
    frame = read_monthly_csv(write(tmp_path, text.replace(",", sep)), ["Precipitation"],
                             ["Year", "Month"], min_rows=14)
    np.testing.assert_array_equal(frame.values[:, 0], np.full(14, 1.5))
    np.testing.assert_array_equal(frame.months[:3], [1, 2, 3])


def test_month_names_are_read_as_months(tmp_path: Path) -> None:
    names = ["Jan", "February", "mar", "Apr.", "May", "June", "Jul", "Aug", "Sept", "Oct",
             "NOV", "December"]
    text = "Year,Month,Rain\n" + "".join(f"{2000 + i // 12},{names[i % 12]},{i}\n"
                                         for i in range(14))
    frame = read_monthly_csv(write(tmp_path, text), ["Rain"], ["Year", "Month"], min_rows=14)
    np.testing.assert_array_equal(frame.months, [*range(1, 13), 1, 2])


@pytest.mark.parametrize("text, date_columns, message", [
    # pandas reads n/a, NA, null as missing: the message must quote what the file holds
    ("Year,Month,Precipitation\n" + monthly_rows(14).replace("2000,3,1.5", "2000,3,n/a"),
     ["Year", "Month"], r"row 4 .* holds 'n/a', not a number"),
    ("Year,Month,Precipitation,precipitation\n" + monthly_rows(14).replace("\n", ",2\n"),
     ["Year", "Month"], r"2 columns named like 'Precipitation': 'Precipitation' \(column 3\), "
                        r"'precipitation' \(column 4\)"),
    ("Year,Month,Precipitation\n" + monthly_rows(14).replace("2000,3,", "2000,13,"),
     ["Year", "Month"], r"row 4 holds '13'; a month must be 1-12 or an English month name"),
    ("Year,Month,Precipitation\n" + monthly_rows(14), ["Year"],
     r"holds years only \('2000'\); a single date column must hold full dates such as "
     r"2000-01 or 2000-01-31, or give year and month columns"),
    # 01/02/2000 is 1 February written day first; pandas reads 2 January
    ("date,Precipitation\n" + dated_rows(14, "01/{m:02d}/{y}"), ["date"],
     r"2000-01 then 2000-01: the rows must be consecutive months.*'01/01/2000' then "
     r"'01/02/2000'; they read as consecutive months day first: rewrite them as YYYY-MM-DD"),
    ("Year,Month,Precipitation\n" + monthly_rows(14), ["Year", "Month", "Day", "Hour"],
     r"at most 3 date columns \(year, month, day\), got 4"),
    ("Year,Month,Station,Precipitation\n" + monthly_rows(14).replace("\n", ",1\n"),
     ["Year", "Month", "Station"], r"2 or 3 columns named year and month \(and day\)"),
])
def test_bad_csv_input_is_named_as_the_file_writes_it(tmp_path: Path, text: str,
                                                      date_columns: list[str],
                                                      message: str) -> None:
    with pytest.raises(UserError, match=message) as error:
        read_monthly_csv(write(tmp_path, text), ["Precipitation"], date_columns, min_rows=14)
    assert "\n" not in str(error.value)


def test_single_date_column_of_year_months_is_read(tmp_path: Path) -> None:
    text = "date,Precipitation\n" + dated_rows(14, "{y}-{m:02d}")
    frame = read_monthly_csv(write(tmp_path, text), ["Precipitation"], ["date"], min_rows=14)
    np.testing.assert_array_equal(frame.months, [*range(1, 13), 1, 2])


def test_dates_with_time_zones_read_as_written_without_a_warning():
    import warnings

    import pandas as pd

    from core.series import parse_dates

    for cells in (["2020-01-01T00:00+01:00", "2020-07-01T00:00+02:00"],  # summer time
                  ["2020-01-01T00:00Z", "2020-01-02T00:00Z"]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stamps = parse_dates(pd.DataFrame({0: cells}), ["date"], [0], "f.csv")
            stamps.to_numpy().astype("datetime64[s]")
        assert [f"{s:%Y-%m-%d %H:%M}" for s in stamps] == [c[:10] + " 00:00" for c in cells]


def test_an_unreadable_date_gets_advice_for_any_step():
    import pandas as pd

    from core.config import UserError
    from core.series import parse_dates

    with pytest.raises(UserError) as error:
        parse_dates(pd.DataFrame({0: ["2020-01-01 00:00", "not a date"]}), ["date"], [0],
                    "hourly.csv")
    assert "one row per month" not in str(error.value) and "HH:MM" in str(error.value)
