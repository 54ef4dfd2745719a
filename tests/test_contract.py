"""The task contract (core.run, core.config, core.train) and run safety: a run folder is
never shared or silently replaced, every flag is checked where it is declared, and every
bad input or signal ends in one line, never a traceback."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.config import UserError, parse, run_main
from core.files import FolderLock, atomic_write_text
from core.report import write_metrics
from core.run import Run
from core.train import train_epoch
from tasks.char_transduce import train as char
from tasks.sin2cos import train as sin2cos
from tests.helpers import one_line_error

ROOT = Path(__file__).resolve().parents[1]
DRY = ["--dry-run"]


def python(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


# ---- run folders: never shared, never replaced without being asked

HOLD_LOCK = """
import sys, time
from core.files import FolderLock
FolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that holds `folder`'s lock until killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], cwd=ROOT,
                              text=True, stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_folder_in_use_by_a_live_process_is_refused(tmp_path, capsys):
    holder = hold_lock(tmp_path)
    try:
        err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path)], capsys)
        assert "in use by another run" in err and f"pid {holder.pid}" in err
        assert "frees itself" in err
    finally:
        holder.kill()
        holder.wait()
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])  # the kernel freed it with its process
    assert (tmp_path / "metrics.json").is_file()


@pytest.mark.parametrize("leftover", ["stale", "empty"])
def test_a_leftover_lock_file_means_nothing(tmp_path, leftover):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    text = f"host {socket.gethostname()} pid {dead.pid}\n" if leftover == "stale" else ""
    (tmp_path / ".lock").write_text(text)  # e.g. a full disk when it was made
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    assert (tmp_path / "metrics.json").is_file()


def test_a_lock_that_is_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / ".lock").mkdir()
    err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path)], capsys)
    assert ".lock is a folder" in err


def test_two_concurrent_runs_into_one_folder_cannot_mix(tmp_path):
    first = python("tasks.sin2cos.train", "--epochs", "500", "--run-dir", str(tmp_path))
    try:
        for _ in range(200):
            if (tmp_path / ".lock").exists():
                break
            time.sleep(0.1)
        second = python("tasks.sin2cos.train", *DRY, "--run-dir", str(tmp_path))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and "in use by another run" in err
    finally:
        first.kill()
        first.wait()


def test_an_earlier_run_is_kept_unless_overwrite_is_given(tmp_path, capsys):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    best = (tmp_path / "seed0" / "best.pt").read_bytes()
    err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path), "--lr", "0.01"],
                         capsys)
    assert "holds an earlier run" in err and "--overwrite" in err
    assert (tmp_path / "seed0" / "best.pt").read_bytes() == best
    sin2cos.main([*DRY, "--run-dir", str(tmp_path), "--lr", "0.01", "--overwrite"])
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["lr"] == 0.01
    assert not (tmp_path / ".replaced").exists()


def test_overwrite_deletes_only_what_a_run_wrote(tmp_path):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    (tmp_path / "my_data.csv").write_text("mine\n")
    (tmp_path / "my_backup.pt").write_bytes(b"mine")
    (tmp_path / "seed0" / "notes.txt").write_text("mine\n")
    sin2cos.main([*DRY, "--run-dir", str(tmp_path), "--overwrite", "--seed", "3"])
    assert (tmp_path / "my_data.csv").read_text() == "mine\n"
    assert (tmp_path / "my_backup.pt").read_bytes() == b"mine"
    assert (tmp_path / "seed0" / "notes.txt").is_file()
    assert not (tmp_path / "seed0" / "best.pt").exists()  # the earlier run's own file
    assert (tmp_path / "seed3" / "best.pt").is_file()


def test_overwrite_keeps_the_earlier_run_when_the_new_one_is_refused(tmp_path, capsys):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # refused after the folder was chosen: nothing of the earlier run was touched
    cfg = parse(sin2cos.Config, [*DRY, "--run-dir", str(tmp_path), "--overwrite"])
    Run(cfg)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    # set aside as training starts, then ended before the new run saved anything: put back
    run = Run(cfg)
    run._move_earlier_run_aside()
    assert not (tmp_path / "metrics.json").exists()
    run._put_back_if_nothing_saved()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_runs_without_run_dir_go_to_new_folders_and_commands_take_the_newest(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sin2cos.main(DRY)
    sin2cos.main([*DRY, "--lr", "0.01"])  # the README's second example: never refused
    out = capsys.readouterr().out
    assert "writing to runs/sin2cos-2" in out
    assert json.loads(Path("runs/sin2cos/metrics.json").read_text())["config"]["lr"] == 0.03
    assert json.loads(Path("runs/sin2cos-2/metrics.json").read_text())["config"]["lr"] == 0.01
    sin2cos.main([*DRY, "--lr", "0.01", "--eval-only"])
    assert "--eval-only: runs/sin2cos-2 (the newest" in capsys.readouterr().out
    err = one_line_error(sin2cos.main, [*DRY, "--overwrite"], capsys)
    assert "--overwrite needs --run-dir" in err
    assert sorted(p.name for p in Path("runs").iterdir()) == ["sin2cos", "sin2cos-2"]


def test_preflight_checks_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        sin2cos.main([*DRY, "--preflight"])
    assert exit_info.value.code == 0
    assert "it will write to runs/sin2cos" in capsys.readouterr().out
    assert not Path("runs").exists()
    (tmp_path / "busy").mkdir()
    holder = hold_lock(tmp_path / "busy")
    try:
        err = one_line_error(sin2cos.main, ["--preflight", "--run-dir", "busy"], capsys)
        assert "in use by another run" in err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("content", [{"model": {}}, torch.zeros(3), "a string"])
def test_a_checkpoint_of_the_wrong_shape_is_one_line(tmp_path, capsys, content):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    torch.save(content, tmp_path / "seed0" / "last.pt")
    for flag in ("--resume", "--eval-only"):
        err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path), flag], capsys)
        assert "not a checkpoint of this project's training loop" in err


def test_resume_in_another_tasks_folder_names_the_task(tmp_path, capsys):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    err = one_line_error(char.main, ["--epochs", "2", "--run-dir", str(tmp_path), "--resume"],
                         capsys)
    assert "task sin2cos, not char_transduce" in err and len(err) < 200


def test_eval_only_scores_the_saved_model_without_training(tmp_path, capsys):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    before = json.loads((tmp_path / "metrics.json").read_text())["test"]["model"]
    last = (tmp_path / "seed0" / "last.pt").read_bytes()
    sin2cos.main([*DRY, "--run-dir", str(tmp_path), "--eval-only"])
    after = json.loads((tmp_path / "metrics.json").read_text())["test"]["model"]
    assert after == pytest.approx(before)
    assert (tmp_path / "seed0" / "last.pt").read_bytes() == last


def test_resume_may_raise_epochs_to_train_a_finished_run_longer(tmp_path):
    args = ["--seeds", "1", "--epochs", "2", "--src", "hello", "--tgt", "ohlol",
            "--lr", "0.001", "--run-dir", str(tmp_path)]
    char.main(args)
    char.main([*args[:3], "4", *args[4:], "--resume"])
    state = torch.load(tmp_path / "seed0" / "last.pt", weights_only=False)
    assert state["epoch"] == 3 and len(state["history"]["epochs"]) == 4


def test_resume_of_a_mistyped_folder_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "typo"
    err = one_line_error(sin2cos.main, ["--resume", "--run-dir", str(missing)], capsys)
    assert "no checkpoint" in err and not missing.exists()


def test_a_read_only_folder_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    tmp_path.chmod(0o555)
    try:
        assert "cannot" in one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path)],
                                          capsys)
    finally:
        tmp_path.chmod(0o755)


def test_stale_temporaries_are_cleaned_and_files_follow_the_umask(tmp_path):
    (tmp_path / "seed0").mkdir()
    stale = tmp_path / "seed0" / "last.pt.x1y2.tmp"
    stale.write_bytes(b"half a checkpoint")
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    assert not stale.exists()
    mask = os.umask(0)
    os.umask(mask)
    for name in ("metrics.json", "seed0/best.pt", "seed0/last.pt", "seed0/history.csv",
                 "training_curve.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_folder_lock_is_released(tmp_path):
    lock = FolderLock(tmp_path)
    lock.acquire()
    assert (tmp_path / ".lock").read_text().split()[3] == str(os.getpid())
    lock.release()
    holder = hold_lock(tmp_path)  # another process can take it now
    holder.kill()
    holder.wait()


# ---- flags: declared ranges, finite floats, relations in check()

@pytest.mark.parametrize("argv, message", [
    (["--lr", "nan"], "--lr: must be a finite number"),
    (["--lr", "inf"], "--lr: must be a finite number"),
    (["--clip-norm", "nan"], "--clip-norm: must be a finite number"),
    (["--seed", "4294967296"], "--seed: must be at most"),
    (["--min-length", "50", "--max-length", "30"], "--min-length <= --max-length"),
    (["--resume", "--overwrite"], "exclude each other"),
    (["--hidden-size", "-3"], "--hidden-size: must be at least 1"),
    (["--lr", "-inf"], "--lr: must be a finite number, got -inf"),
    (["--lr", "-1e-3"], "--lr: must be at least 0, got -1e-3"),
    (["--hidden-size", "2.5"], "--hidden-size: expected an integer, got '2.5'"),
])
def test_bad_flags_are_one_line(argv, message, capsys):
    assert message in one_line_error(sin2cos.main, argv, capsys)


def test_a_diverging_run_stops_with_one_line(tmp_path):
    model = torch.nn.Linear(1, 1)
    with pytest.raises(UserError, match="diverged: the loss became nan"):
        train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), [(torch.ones(1),)],
                    lambda m, batch, carried: (m.weight.sum() * float("nan"), None))


def test_metrics_json_has_null_not_nan(tmp_path, capsys):
    write_metrics(tmp_path, task="t", seeds=[0], device="cpu", train_seconds=1.0, config={},
                  test={"model": {"rmse": float("nan"), "rmse_seeds": [1.0, float("inf")]}})
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["test"]["model"] == {"rmse": None, "rmse_seeds": [1.0, None]}
    assert "null" in capsys.readouterr().out


def test_full_disk_is_one_line(tmp_path, capsys):
    def fill() -> None:
        atomic_write_text(tmp_path / "x.json", "data")

    with pytest.MonkeyPatch.context() as patch:
        def no_space(*args, **kwargs):
            raise OSError(28, "No space left on device", str(tmp_path / "x.json"))
        patch.setattr("builtins.open", no_space)
        with pytest.raises(SystemExit) as exit_info:
            run_main(fill)
    assert exit_info.value.code == 2
    assert "no space left" in capsys.readouterr().err


def test_sigterm_saves_and_prints_how_to_resume(tmp_path):
    proc = python("tasks.sin2cos.train", "--epochs", "500", "--run-dir", str(tmp_path))
    for _ in range(600):
        if (tmp_path / "seed0" / "last.pt").exists():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "--resume" in err and "Traceback" not in err


# ---- evidence a person can read without a terminal

def test_history_csv_and_one_line_per_epoch_without_a_terminal(tmp_path):
    proc = python("tasks.sin2cos.train", *DRY, "--run-dir", str(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "sin2cos seed 0 epoch 1/2" in out and "sin2cos seed 0 epoch 2/2" in out
    rows = (tmp_path / "seed0" / "history.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["epoch", "train_loss", "mse"]
    assert {"seconds", "lr"} <= set(rows[0].split(",")) and len(rows) == 3


def test_ctrl_c_outside_the_training_loop_is_one_line(capsys):
    def interrupted() -> None:
        raise KeyboardInterrupt  # e.g. while plotting, or building the model

    with pytest.raises(SystemExit) as exit_info:
        run_main(interrupted)
    assert exit_info.value.code == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted"


@pytest.mark.parametrize("argv, message", [
    (["--patch", "0"], "--patch: must be at least 1, got 0"),
    (["--patch", "-2"], "--patch: must be at least 1, got -2"),
    (["--eval-sequences", "0"], "--eval-sequences: must be at least 1"),
    (["--patch", "3"], "--patch 3 must divide --grid 32"),
])
def test_convlstm_flags_blame_the_right_flag(argv, message, capsys):
    from tasks.convlstm_grid import train as convlstm

    assert message in one_line_error(convlstm.main, argv, capsys)


def test_a_command_whose_reader_goes_away_stops_quietly():
    # the shell's `... | head -1`: the reader closes the pipe after one line
    command = ("from core.config import run_main\n"
               "def main():\n"
               "    for i in range(200000):\n"
               "        print('line', i)\n"
               "run_main(main)\n")
    writer = subprocess.Popen([sys.executable, "-c", command], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout.readline() == "line 0\n"
    writer.stdout.close()
    err = writer.stderr.read()
    assert writer.wait(timeout=60) == 141 and err == ""


def test_out_of_memory_is_one_line_naming_the_size_flags(capsys):
    def too_big() -> None:
        parse(sin2cos.Config, ["--hidden-size", "100000000"])
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 400000000000 bytes")

    for failing in (too_big, lambda: (_ for _ in ()).throw(MemoryError())):
        with pytest.raises(SystemExit) as exit_info:
            run_main(failing)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: out of memory") and "--hidden-size 100000000" in err


def test_main_returning_a_status_is_the_exit_status():
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: 1)
    assert exit_info.value.code == 1


# ---- nothing lost to a kill or a planted link (issue 28)

def test_overwrite_killed_after_setting_aside_leaves_the_earlier_run_findable(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first = subprocess.run([sys.executable, "-m", "tasks.sin2cos.train", *DRY], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    # unbuffered, so its line arrives as it is printed and the kill lands before it trains
    new = subprocess.Popen([sys.executable, "-m", "tasks.sin2cos.train", "--epochs", "500",
                            "--run-dir", "runs/sin2cos", "--overwrite"], cwd=tmp_path,
                           env=env | {"PYTHONUNBUFFERED": "1"}, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in new.stdout:
            if "until this one finishes" in line:
                break
        new.send_signal(signal.SIGKILL)  # no atexit, no cleanup: the worst moment
    finally:
        new.kill()
        new.wait()
    earlier = tmp_path / "runs" / "sin2cos-replaced"
    assert (earlier / "metrics.json").is_file() and (earlier / "seed0" / "last.pt").is_file()
    # a command finds it by its files (the newest run with a checkpoint: it, unless the
    # kill came after the new run's first save on a slow machine), and the next plain run
    # deletes nothing of it
    newest = ("runs/sin2cos" if (tmp_path / "runs" / "sin2cos" / "seed0" / "last.pt").is_file()
              else "runs/sin2cos-replaced")
    again = subprocess.run([sys.executable, "-m", "tasks.sin2cos.train", *DRY, "--eval-only"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and f"--eval-only: {newest} (" in again.stdout
    plain = subprocess.run([sys.executable, "-m", "tasks.sin2cos.train", *DRY], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert (earlier / "seed0" / "last.pt").is_file()


@pytest.mark.parametrize("fails", ["rename", "_remove"])
def test_overwrite_interrupted_while_setting_aside_keeps_a_whole_run(tmp_path, monkeypatch,
                                                                     fails):
    import core.run

    sin2cos.main([*DRY, "--run-dir", str(tmp_path / "run")])
    files = sorted(p.relative_to(tmp_path / "run") for p in (tmp_path / "run").rglob("*")
                   if p.is_file() and p.name != ".lock")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill at that instant: nothing after it runs

    monkeypatch.setattr(core.run.os if fails == "rename" else core.run, fails, killed)
    run = Run(parse(sin2cos.Config, [*DRY, "--run-dir", str(tmp_path / "run"), "--overwrite"]))
    with pytest.raises(KeyboardInterrupt):
        run.data_checked()
    monkeypatch.undo()
    whole = tmp_path / ("run" if fails == "rename" else "run-replaced")
    assert sorted(p.relative_to(whole) for p in whole.rglob("*")
                  if p.is_file() and p.name != ".lock") == files
    # the next --overwrite clears a half copy and finishes the job
    sin2cos.main([*DRY, "--run-dir", str(tmp_path / "run"), "--overwrite"])
    assert not list(tmp_path.glob(".run-replaced*"))


def test_a_resumed_overwrite_deletes_the_run_it_replaced_when_it_finishes(
        tmp_path, monkeypatch, capsys):
    from core.train import Checkpoint

    run = tmp_path / "run"
    sin2cos.main([*DRY, "--run-dir", str(run)])
    save = Checkpoint.save

    def stopped_after_the_first_epoch(self, epoch, metrics, stop=False):
        if epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C once a checkpoint was saved
        save(self, epoch, metrics, stop)

    monkeypatch.setattr(Checkpoint, "save", stopped_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        sin2cos.main([*DRY, "--run-dir", str(run), "--overwrite"])
    monkeypatch.undo()
    aside = tmp_path / "run-replaced"
    assert (aside / "metrics.json").is_file()
    capsys.readouterr()
    sin2cos.main([*DRY, "--run-dir", str(run), "--resume"])
    out = capsys.readouterr().out
    assert f"{aside}, which is deleted when this one finishes" in out
    assert f"deleted {aside}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert json.loads((run / "run.json").read_text()) == {"task": "sin2cos"}


def test_a_kill_while_deleting_the_replaced_run_leaves_no_half_run(tmp_path, monkeypatch):
    import core.run
    from core.run import DELETING, run_folders

    run = tmp_path / "run"
    sin2cos.main([*DRY, "--run-dir", str(run)])
    remove = core.run._remove

    def killed_after_one_file(folder, names):
        if folder.name.startswith(DELETING):
            remove(folder, list(names)[:1])
            raise KeyboardInterrupt  # as kill -9 midway: nothing after it runs
        remove(folder, names)

    monkeypatch.setattr(core.run, "_remove", killed_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        sin2cos.main([*DRY, "--run-dir", str(run), "--overwrite"])
    monkeypatch.undo()
    assert run_folders("sin2cos", tmp_path) == [run]  # what is left is no run, by any name
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["run"]
    sin2cos.main([*DRY, "--run-dir", str(run), "--eval-only"])  # the next run ends the job
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_run_without_checkpoint_points_to_the_run_it_replaced(tmp_path, capsys):
    """As a hang-up (SIGHUP) during --overwrite leaves it, before the new run saved a
    checkpoint: every command says the folder's run saved none, and where the earlier
    run is."""
    run, aside = tmp_path / "run", tmp_path / "run-replaced"
    sin2cos.main([*DRY, "--run-dir", str(aside)])  # the earlier run, as --overwrite moved it
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"task": "sin2cos", "replaces": aside.name}))
    (run / ".run-files").write_text("run.json\n")
    for flags in (["--eval-only"], ["--resume"], []):
        err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(run), *flags], capsys)
        assert "saved no checkpoint" in err and f"--run-dir {aside}" in err, flags
        assert "--overwrite" in err and "--resume continues" not in err
    sin2cos.main([*DRY, "--run-dir", str(aside), "--eval-only"])


def test_a_lock_or_manifest_that_is_a_link_is_refused(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("theirs\n")
    for name, flags in ((".lock", []), (".run-files", ["--overwrite"])):
        folder = tmp_path / name.strip(".")
        folder.mkdir()
        (folder / name).symlink_to(victim)
        err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(folder), *flags], capsys)
        assert "symbolic link" in err
        assert victim.read_text() == "theirs\n"


def test_a_lock_or_manifest_that_is_a_hard_link_is_never_written(tmp_path, capsys):
    """O_NOFOLLOW stops symbolic links only: a hard link to a user's file saved as the
    lock is refused, and a hard-linked manifest is replaced, never written through."""
    victim = tmp_path / "notes.txt"
    victim.write_text("theirs\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.link(victim, locked / ".lock")
    err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(locked)], capsys)
    assert "hard link" in err and victim.read_text() == "theirs\n"
    listed = tmp_path / "listed"
    sin2cos.main([*DRY, "--run-dir", str(listed)])
    (listed / ".run-files").unlink()
    os.link(victim, listed / ".run-files")  # as a kill during --overwrite's links leaves
    sin2cos.main([*DRY, "--run-dir", str(listed), "--eval-only"])
    assert victim.read_text() == "theirs\n"


def test_the_manifest_lists_each_file_once_however_often_a_command_rewrites_it(tmp_path):
    sin2cos.main([*DRY, "--run-dir", str(tmp_path)])
    listed = (tmp_path / ".run-files").read_text().splitlines()
    for _ in range(2):
        sin2cos.main([*DRY, "--run-dir", str(tmp_path), "--eval-only"])
    again = (tmp_path / ".run-files").read_text().splitlines()
    assert sorted(again) == sorted(set(again)) and set(listed) <= set(again)
    assert "run.json" in again


def test_a_seed_folder_linked_out_of_the_run_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run" / "seed0").symlink_to(tmp_path / "elsewhere")
    err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path / "run")], capsys)
    assert "link out of the run folder" in err
    assert not list((tmp_path / "elsewhere").iterdir())


def test_overwrite_never_acts_on_a_manifest_entry_outside_the_folder(tmp_path):
    run = tmp_path / "run"
    sin2cos.main([*DRY, "--run-dir", str(run)])
    (tmp_path / "victim2.txt").write_text("theirs\n")
    (tmp_path / "elsewhere.txt").write_text("theirs\n")
    (run / "outside.txt").symlink_to(tmp_path / "elsewhere.txt")
    with open(run / ".run-files", "a") as manifest:
        manifest.write("../victim2.txt\noutside.txt\n" + str(tmp_path / "victim2.txt") + "\n")
    sin2cos.main([*DRY, "--run-dir", str(run), "--overwrite"])
    assert (tmp_path / "victim2.txt").read_text() == "theirs\n"
    assert (tmp_path / "elsewhere.txt").read_text() == "theirs\n"
    assert (run / "outside.txt").is_symlink() and not (run / "victim2.txt").exists()


def test_commands_take_the_run_of_their_task_that_trained_last(tmp_path, monkeypatch):
    from core.run import run_folders, trained_run

    monkeypatch.chdir(tmp_path)

    def fake_run(name: str, task: str, trained: float, answered: float) -> None:
        folder = Path("runs") / name
        (folder / "seed0").mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"task": task}))
        for file, when in (("seed0/last.pt", trained), ("model.pt", answered)):
            (folder / file).write_bytes(b"x")
            os.utime(folder / file, (when, when))

    fake_run("sin2cos", "sin2cos", trained=100, answered=900)  # --eval-only rewrote it
    fake_run("sin2cos-2", "sin2cos", trained=200, answered=300)
    fake_run("sin2cos-9", "sin2cos-9", trained=999, answered=999)  # a copied task's run
    fake_run("mine", "sin2cos", trained=150, answered=150)  # any name: its files say whose
    assert [p.name for p in run_folders("sin2cos")] == ["sin2cos", "mine", "sin2cos-2"]
    assert trained_run("sin2cos", "") == Path("runs/sin2cos-2")


def test_a_stray_file_at_a_numbered_name_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sin2cos.main(DRY)
    Path("runs/sin2cos-2").write_text("a stray file\n")
    sin2cos.main(DRY)
    assert "writing to runs/sin2cos-3" in capsys.readouterr().out


def test_preflight_checks_the_data_and_where_the_folder_would_go(tmp_path, capsys):
    from tasks.rainfall_uni import train as rainfall_uni

    err = one_line_error(rainfall_uni.main, ["--csv", str(tmp_path / "missing.csv"),
                                             "--preflight"], capsys)
    assert "missing.csv" in err
    (tmp_path / "a_file").write_text("")
    err = one_line_error(sin2cos.main, ["--preflight", "--run-dir",
                                        str(tmp_path / "a_file" / "run")], capsys)
    assert "cannot use" in err and not (tmp_path / "a_file").is_dir()


def test_a_checkpoint_cut_short_by_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    def cut_short(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 "
                           "vs 38")

    monkeypatch.setattr(torch, "save", cut_short)
    err = one_line_error(sin2cos.main, [*DRY, "--run-dir", str(tmp_path)], capsys)
    assert "no space left" in err
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_read_only_filesystem_is_one_line(capsys):
    def read_only() -> None:
        raise OSError(30, "Read-only file system", "/mnt/ro/filled.csv")

    with pytest.raises(SystemExit) as exit_info:
        run_main(read_only)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write /mnt/ro/filled.csv") and len(err.splitlines()) == 1


def test_a_closed_standard_output_is_one_line():
    done = subprocess.run(["bash", "-c", f"'{sys.executable}' -m tasks.sin2cos.train --help >&-"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "standard output is closed" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_checks_nproc_and_prints_help_once():
    make = ["make", "-s", "-o", ".venv/.installed", "sin2cos"]
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    for bad in ("0", "abc", "-1"):
        done = subprocess.run([*make, f"NPROC={bad}"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0 and "NPROC must be a number of processes" in done.stderr
        assert "Traceback" not in done.stderr
    done = subprocess.run([*make, "NPROC=2", "ARGS=--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.count("usage:") == 1
