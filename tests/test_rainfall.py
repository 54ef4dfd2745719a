"""The two rainfall tasks end to end: dry runs on the real file (when the mirror or a
fetched copy is present) and on a synthetic monthly CSV, the scores' bootstrap intervals,
the forecast command, and bad CSVs, bad model files and the other task's run folder, which
must end in one clear line, never a traceback."""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import UserError, run_main
from core.data import DATA_DIR, MIRROR_ENV
from core.forecast import bootstrap_months, rmse_interval
from tasks.rainfall_multi import forecast as multi_forecast
from tasks.rainfall_multi import train as multi
from tasks.rainfall_uni import forecast as uni_forecast
from tasks.rainfall_uni import train as uni
from tests.helpers import one_line_error

REPO = Path(__file__).resolve().parent.parent
DATASET = "Rainfall_data.csv"
MIRROR = os.environ.get(MIRROR_ENV)
HAVE_REAL_FILE = (DATA_DIR / DATASET).is_file() or bool(
    MIRROR and (Path(MIRROR) / DATASET).is_file())
METHODS = {"rainfall_uni": {"model", "ar12", "seasonal_naive", "climatology", "persistence"},
           "rainfall_multi": {"model", "ar12", "seasonal_naive", "climatology", "univariate"}}
# a small synthetic run: 12 test months, 12 validation months, 12 lags
SMALL = ["--test-months", "12", "--val-months", "12", "--dry-run"]
INTERVAL = ("rmse", "rmse_lo", "rmse_hi", "vs_climatology", "vs_climatology_lo",
            "vs_climatology_hi")


def run_task(task: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"tasks.{task}.train", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def check_outputs(task: str, run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == task and set(metrics["test"]) == METHODS[task]
    assert metrics["train_seconds"] > 0 and len(metrics["seeds"]) == 2
    assert list(run_dir.glob("*.png")) and (run_dir / "model.pt").is_file()
    for method, scores in metrics["test"].items():
        for h in ([""] if task == "rainfall_uni" else
                  sorted({k.split("@")[1] for k in scores if k.startswith("rmse@")})):
            at = f"@{h}" if h else ""
            lo, point, hi = (scores[f"rmse{part}{at}"] for part in ("_lo", "", "_hi"))
            assert lo <= point <= hi, (method, h)
            assert all(f"{name}{at}" in scores for name in INTERVAL), (method, h)
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
        assert metrics["test"]["climatology"]["vs_climatology_lo"] == 1
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
    model = metrics["test"]["model"]
    assert model["vs_univariate_lo@h2"] <= model["vs_univariate@h2"] <= model["vs_univariate_hi@h2"]


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


# ---- the bootstrap interval

def test_bootstrap_interval_is_seeded_and_paired() -> None:
    rng = np.random.default_rng(0)
    truth, reference = rng.gamma(2, 50, 40), rng.gamma(2, 50, 40)
    forecast = truth + rng.normal(0, 30, 40)
    np.testing.assert_array_equal(bootstrap_months(40, 7), bootstrap_months(40, 7))
    assert not np.array_equal(bootstrap_months(40, 7), bootstrap_months(40, 8))
    out = rmse_interval(truth, forecast, reference, bootstrap_months(40, 7), "climatology")
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((forecast - truth) ** 2)))
    assert out["rmse_lo"] < out["rmse"] < out["rmse_hi"]
    assert out["vs_climatology_lo"] < out["vs_climatology"] < out["vs_climatology_hi"]
    # one draw that takes every month once is the point value itself
    whole = rmse_interval(truth, forecast, reference, np.arange(40)[None], "climatology")
    assert whole["rmse_lo"] == pytest.approx(out["rmse"]) == whole["rmse_hi"]
    # the same draws for a method and its reference: a method against itself is 1 exactly
    same = rmse_interval(truth, reference, reference, bootstrap_months(40, 7), "climatology")
    assert same["vs_climatology_lo"] == same["vs_climatology_hi"] == 1


def test_intervals_in_metrics_follow_the_seed(tmp_path: Path) -> None:
    csv = str(synthetic_csv(tmp_path))

    def climatology_interval(seed: int, folder: str) -> tuple[float, float]:
        uni.main(["--csv", csv, "--target", "total_rain", "--seed", str(seed), "--seeds", "1",
                  "--run-dir", str(tmp_path / folder), *SMALL])
        scores = json.loads((tmp_path / folder / "metrics.json").read_text())["test"]
        return scores["climatology"]["rmse_lo"], scores["climatology"]["rmse_hi"]

    first = climatology_interval(3, "a")
    assert climatology_interval(3, "b") == first
    assert climatology_interval(4, "c") != first


# ---- the forecast commands: what they read, and every way it can be wrong

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dry run of each task on the synthetic CSV: {"csv", "rainfall_uni", "rainfall_multi"}."""
    folder = tmp_path_factory.mktemp("trained")
    csv = synthetic_csv(folder)
    uni.main(["--csv", str(csv), "--target", "total_rain", "--run-dir",
              str(folder / "uni"), *SMALL])
    multi.main(["--csv", str(csv), "--inputs", "Relative_Humidity", "Total Rain", "--target",
                "Total_Rain", "--horizon", "2", "--run-dir", str(folder / "multi"), *SMALL])
    return {"csv": csv, "rainfall_uni": folder / "uni", "rainfall_multi": folder / "multi"}


FORECASTS = {"rainfall_uni": uni_forecast, "rainfall_multi": multi_forecast}


@pytest.mark.parametrize("task", ["rainfall_uni", "rainfall_multi"])
def test_forecast_help_shows_its_own_usage(task: str) -> None:
    result = subprocess.run([sys.executable, "-m", f"tasks.{task}.forecast", "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m tasks.{task}.forecast ")
    assert ".train" not in result.stdout.split("\n\n")[0]


@pytest.mark.parametrize("task,other", [("rainfall_multi", "rainfall_uni"),
                                        ("rainfall_uni", "rainfall_multi")])
def test_forecast_refuses_the_other_tasks_run(task: str, other: str, trained, capsys) -> None:
    err = one_line_error(FORECASTS[task].main, ["--run-dir", str(trained[other])], capsys)
    assert f"is a model of {other}, not of {task}" in err


@pytest.mark.parametrize("damage,message", [
    ("cut", "not a model file torch can load"),
    ("empty", "the file is empty"),
    ("flipped", "corrupt: checksum mismatch"),
    ("foreign", "not a rainfall_uni model (it lacks 'task'"),
])
def test_forecast_refuses_a_damaged_model(damage: str, message: str, trained, tmp_path,
                                          capsys) -> None:
    import torch

    run_dir = tmp_path / "run"
    shutil.copytree(trained["rainfall_uni"], run_dir)
    path = run_dir / "model.pt"
    data = path.read_bytes()
    if damage == "cut":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flipped":
        saved = torch.load(path, weights_only=True)
        saved["lags"] = 0  # a changed field: its forecast would fail or mislead
        torch.save(saved, path)
    else:  # a checkpoint of the training loop, as an older forecast command read
        shutil.copyfile(run_dir / "seed0" / "best.pt", path)
    err = one_line_error(uni_forecast.main, ["--run-dir", str(run_dir)], capsys)
    assert message in err and "model.pt" in err


def unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `path` unreadable: mode 000, and for root (who reads it anyway) an open() that
    answers as the system does for anyone else."""
    path.chmod(0)
    if os.access(path, os.R_OK):
        real_open = builtins.open

        def denied(file, *args, **kwargs):
            if Path(str(file)) == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)
        monkeypatch.setattr(builtins, "open", denied)


def test_an_unreadable_csv_is_one_line_naming_permission(trained, tmp_path, monkeypatch,
                                                         capsys) -> None:
    csv = tmp_path / "locked.csv"
    shutil.copyfile(trained["csv"], csv)
    unreadable(csv, monkeypatch)
    err = one_line_error(multi_forecast.main, ["--run-dir", str(trained["rainfall_multi"]),
                                               "--csv", str(csv)], capsys)
    assert "Permission denied" in err and str(csv) in err
    err = one_line_error(uni.main, ["--csv", str(csv), "--target", "Total Rain", *SMALL,
                                    "--run-dir", str(tmp_path / "run")], capsys)
    assert "Permission denied" in err


def test_forecast_without_run_dir_reads_the_newest_trained_run(trained, tmp_path,
                                                               monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    shutil.copytree(trained["rainfall_multi"], tmp_path / "runs" / "rainfall_multi")
    (tmp_path / "runs" / "rainfall_multi-2").mkdir()  # begun, never finished: no model.pt
    assert multi_forecast.main([]) == 0
    captured = capsys.readouterr()
    assert "using runs/rainfall_multi/model.pt" in captured.err
    assert [line.split()[0] for line in captured.out.splitlines()[1:]] == ["2006-01",
                                                                          "2006-02"]


def test_forecast_says_which_months_it_cannot_answer(trained, tmp_path, capsys) -> None:
    """Two Januaries too large to add up in float64: January's climatology is infinite, so
    January is refused with its reason and February still answered; exit status 1."""
    lines = trained["csv"].read_text().splitlines()
    for row in (1, 13):  # 2000-01 and 2001-01
        lines[row] = lines[row].rsplit(",", 1)[0] + ",1e308"
    csv = tmp_path / "huge.csv"
    csv.write_text("\n".join(lines) + "\n")
    assert multi_forecast.main(["--run-dir", str(trained["rainfall_multi"]), "--csv",
                                str(csv)]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[1].startswith("'2006-01': not answered: the training climatology")
    assert out[2].startswith("2006-02  model")
    assert "1 of 2 input(s) not answered" in captured.err
    assert multi_forecast.main(["--run-dir", str(trained["rainfall_multi"]), "--csv",
                                str(csv), "--json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "refused" in records[0] and records[1]["model"] >= 0


def test_a_moved_clone_still_forecasts_from_a_csv_kept_with_the_task(tmp_path: Path) -> None:
    """A CSV inside the task's folder needs no manifest entry, and model.pt keeps its path
    from the project's root: after the clone is renamed, forecast still finds it."""
    clone = tmp_path / "clone"
    for part in ("core", "tasks/rainfall_uni"):
        shutil.copytree(REPO / part, clone / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(REPO / "tasks" / "__init__.py", clone / "tasks" / "__init__.py")
    shutil.copytree(REPO / "data", clone / "data", ignore=lambda folder, names: [
        n for n in names if n != "manifest.json"])
    synthetic_csv(clone / "tasks" / "rainfall_uni").rename(
        clone / "tasks" / "rainfall_uni" / "series.csv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def command(folder: Path, module: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", f"tasks.rainfall_uni.{module}", *args],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=300)

    # the full path, as a user may type it: model.pt keeps it from the root all the same
    trained = command(clone, "train", "--csv", str(clone / "tasks/rainfall_uni/series.csv"),
                      "--target", "Total Rain", *SMALL)
    assert trained.returncode == 0, trained.stderr
    moved = clone.rename(tmp_path / "renamed")
    answered = command(moved, "forecast")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.startswith("series.csv: last month 2005-12")
