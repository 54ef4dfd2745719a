"""core.train's helpers: mini-batches, atomic checkpoints, resume checks, NaN handling."""

import io
from pathlib import Path

import pytest
import torch

import core.train
from core.config import UserError
from core.train import atomic_save, check_same_config, fit, load_checkpoint, shuffled_batches


def test_shuffled_batches_cover_every_row_once_and_keep_rows_together():
    x, y = torch.arange(10), torch.arange(10) * 10
    batches = shuffled_batches((x, y), 4)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in batches]).tolist()) == list(range(10))
    for bx, by in batches:
        assert torch.equal(by, bx * 10)


def test_atomic_save_leaves_no_temporary_file(tmp_path: Path):
    atomic_save({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "x.pt", keys=["a"])["a"], torch.ones(2))


def test_a_full_disk_during_torch_save_is_the_oserror_it_is(tmp_path: Path, monkeypatch):
    class FullDisk(io.BytesIO):
        def write(self, data):
            raise OSError(28, "No space left on device")
    monkeypatch.setattr(core.train, "open", lambda *args: FullDisk(), raising=False)
    with pytest.raises(OSError) as error:
        atomic_save({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert error.value.errno == 28 and not list(tmp_path.iterdir())


def test_broken_checkpoint_is_a_user_error(tmp_path: Path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "last.pt")


def test_resume_check_names_changed_settings_and_ignores_device():
    check_same_config({"lr": 0.1, "device": "cpu"}, {"lr": 0.1, "device": "cuda"}, Path("x"))
    with pytest.raises(UserError, match="lr: 0.1 -> 0.2"):
        check_same_config({"lr": 0.1}, {"lr": 0.2}, Path("x"))


def test_a_nan_validation_score_never_becomes_the_best(tmp_path: Path):
    model = torch.nn.Linear(1, 1)
    scores = iter([float("nan"), 2.0, 1.0, 3.0])
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.0), [(torch.ones(1),)],
                  lambda m, batch, carried: (m.weight.sum(), None),
                  lambda m: {"loss": next(scores)}, epochs=4, run_dir=tmp_path, config={})
    assert (history.best_epoch, history.best_value) == (2, 1.0)
