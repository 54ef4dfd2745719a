"""The two rainfall tasks end to end: dry runs on the real file (when the mirror or a
fetched copy is present) and on a synthetic monthly CSV, and bad CSVs that must end in one
clear line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import UserError, run_main
from core.data import DATA_DIR, MIRROR_ENV
from tasks.rainfall_multi import train as multi
from tasks.rainfall_uni import train as uni

REPO = Path(__file__).resolve().parent.parent
DATASET = "Rainfall_data.csv"
MIRROR = os.environ.get(MIRROR_ENV)
HAVE_REAL_FILE = (DATA_DIR / DATASET).is_file() or bool(
    MIRROR and (Path(MIRROR) / DATASET).is_file())
METHODS = {"rainfall_uni": {"model", "ar12", "seasonal_naive", "climatology", "persistence"},
           "rainfall_multi": {"model", "ar12", "seasonal_naive", "climatology", "univariate"}}
# a small synthetic run: 12 test months, 12 validation months, 12 lags
SMALL = ["--test-months", "12", "--val-months", "12", "--dry-run"]


def run_task(task: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"tasks.{task}.train", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def check_outputs(task: str, run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == task and set(metrics["test"]) == METHODS[task]
    assert metrics["train_seconds"] > 0 and len(metrics["seeds"]) == 2
    assert list(run_dir.glob("*.png"))
    return metrics


def synthetic_csv(tmp_path: Path, months: int = 72) -> Path:
    """Seasonal rain with noise, and a humidity that leads it; headers with spaces."""
    rng = np.random.default_rng(0)
    t = np.arange(months)
    season = np.maximum(0, 300 * np.sin(2 * np.pi * (t - 3) / 12))
    rain = np.maximum(0, season + rng.normal(0, 40, months))
    humidity = 60 + 20 * np.sin(2 * np.pi * (t - 2) / 12) + rng.normal(0, 3, months)
    rows = [f"{2000 + i // 12},{i % 12 + 1},{humidity[i]:.2f},{rain[i]:.2f}"
            for i in range(months)]
    path = tmp_path / "monthly.csv"
    path.write_text("Year,Month,Relative Humidity,Total Rain\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.skipif(not HAVE_REAL_FILE, reason=f"no {DATASET}: set {MIRROR_ENV} to the "
                    "data mirror folder (or run `python -m core.data` with a network)")
@pytest.mark.parametrize("task", ["rainfall_uni", "rainfall_multi"])
def test_dry_run_on_the_real_file(task: str, tmp_path: Path) -> None:
    result = run_task(task, "--dry-run", "--run-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    metrics = check_outputs(task, tmp_path)
    if task == "rainfall_uni":
        assert {"rmse", "mae", "mase", "skill", "rmse_seeds"} <= set(metrics["test"]["model"])
        assert metrics["test"]["climatology"]["skill"] == 0
    else:
        assert {f"rmse@h{h}" for h in (1, 2, 3)} <= set(metrics["test"]["univariate"])


def test_uni_on_any_monthly_csv(tmp_path: Path) -> None:
    uni.main(["--csv", str(synthetic_csv(tmp_path)), "--target", "total_rain",
              "--run-dir", str(tmp_path), *SMALL])
    check_outputs("rainfall_uni", tmp_path)


def test_multi_on_any_monthly_csv(tmp_path: Path) -> None:
    multi.main(["--csv", str(synthetic_csv(tmp_path)), "--inputs", "Relative_Humidity",
                "Total Rain", "--target", "Total_Rain", "--horizon", "2", "--cell", "lstm",
                "--run-dir", str(tmp_path), *SMALL])
    metrics = check_outputs("rainfall_multi", tmp_path)
    assert "rmse@h2" in metrics["test"]["model"] and "rmse@h3" not in metrics["test"]["model"]


def bad_csvs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (CSV, what the error must say)."""
    good = synthetic_csv(tmp_path).read_text().splitlines()
    cases = {
        "no target": ("\n".join([good[0].replace("Total Rain", "Snow"), *good[1:]]),
                      r"no column 'Total Rain'; found: Year, Month, Relative Humidity, Snow"),
        "text": ("\n".join([*good[:5], good[5].rsplit(",", 1)[0] + ",heavy", *good[6:]]),
                 r"row 6 .* holds 'heavy', not a number"),
        "missing": ("\n".join([*good[:5], good[5].rsplit(",", 1)[0] + ",", *good[6:]]),
                    r"row 6 .* is empty"),
        "short": ("\n".join(good[:40]), r"has 39 rows; this run needs at least"),
    }
    out = {}
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        path.write_text(text + "\n")
        out[name] = (path, message)
    return out


@pytest.mark.parametrize("module", [uni, multi], ids=["uni", "multi"])
def test_bad_csvs_get_a_clear_message(module, tmp_path: Path) -> None:
    extra = ["--inputs", "Relative Humidity", "Total Rain"] if module is multi else []
    for path, message in bad_csvs(tmp_path).values():
        with pytest.raises(UserError, match=message):
            module.main(["--csv", str(path), "--target", "Total Rain", *extra, *SMALL,
                         "--run-dir", str(tmp_path / "run")])


@pytest.mark.parametrize("module", [uni, multi], ids=["uni", "multi"])
def test_bad_csv_exits_with_one_line(module, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """What `python -m tasks.X.train` does with a bad CSV: one line, exit status 2."""
    path, _ = bad_csvs(tmp_path)["no target"]
    extra = ["--inputs", "Relative Humidity", "Total Rain"] if module is multi else []
    with pytest.raises(SystemExit) as stopped:
        run_main(lambda: module.main(["--csv", str(path), "--target", "Total Rain", *extra,
                                 "--run-dir", str(tmp_path / "run")]))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no column 'Total Rain'" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_forecast_command_continues_after_the_last_month(tmp_path: Path, capsys) -> None:
    from tasks.rainfall_multi import forecast

    csv = synthetic_csv(tmp_path)
    multi.main(["--csv", str(csv), "--inputs", "Relative_Humidity", "Total Rain",
                "--target", "Total_Rain", "--horizon", "2", "--run-dir", str(tmp_path / "run"),
                *SMALL])
    capsys.readouterr()
    forecast.main(["--run-dir", str(tmp_path / "run")])
    lines = capsys.readouterr().out.splitlines()
    assert "last month 2005-12" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["2006-01", "2006-02"]
    values = [float(line.split()[2]) for line in lines[1:]]
    assert all(np.isfinite(v) and v >= 0 for v in values)


def test_forecast_without_a_trained_run_is_one_line(tmp_path: Path, capsys) -> None:
    from tasks.rainfall_uni import forecast

    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: forecast.main(["--run-dir", str(tmp_path)]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "python -m tasks.rainfall_uni.train" in err and len(err.strip().splitlines()) == 1
