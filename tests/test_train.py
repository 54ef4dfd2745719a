"""core.train's helpers: mini-batches, atomic checkpoints, resume checks, NaN handling."""

import io
from pathlib import Path

import pytest
import torch

import core.train
from core.config import UserError
from core.train import (
    Checkpoint,
    atomic_save,
    check_same_config,
    load_checkpoint,
    shuffled_batches,
    train_epoch,
)


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
    checkpoint = Checkpoint(tmp_path, {"model": model}, {})
    for epoch, score in zip(checkpoint.epochs(4), [float("nan"), 2.0, 1.0, 3.0], strict=True):
        checkpoint.save(epoch, {"loss": score})
    history = checkpoint.load_best()
    assert (history.best_epoch, history.best_value) == (2, 1.0)


def test_patience_stops_and_a_resumed_stopped_run_trains_no_more(tmp_path: Path):
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpoint = Checkpoint(tmp_path, {"model": model, "optimizer": optimizer}, {},
                            patience=2)
    done = []
    for epoch, score in zip(checkpoint.epochs(10), [3.0, 1.0, 2.0, 2.0, 0.5], strict=False):
        checkpoint.save(epoch, {"loss": score})
        done.append(epoch)
        if checkpoint.stopped:
            break
    assert done == [0, 1, 2, 3]
    again = Checkpoint(tmp_path, {"model": model, "optimizer": optimizer}, {"resume": True},
                       patience=2)
    assert list(again.epochs(10)) == [] and again.load_best().best_epoch == 1


def test_resume_restores_every_state_and_the_random_generators(tmp_path: Path):
    def train(epochs: int, resume: bool) -> list[float]:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
        checkpoint = Checkpoint(tmp_path, {"model": model, "optimizer": optimizer,
                                           "scheduler": scheduler},
                                {"resume": resume, "epochs": 4})
        for epoch in checkpoint.epochs(epochs):
            batches = [(torch.randn(8, 3), torch.randn(8, 1))]
            loss = train_epoch(model, optimizer, batches, lambda m, b, c: (
                torch.nn.functional.mse_loss(m(b[0]), b[1]), None))
            scheduler.step()
            checkpoint.save(epoch, {"loss": loss})
        return [e["loss"] for e in checkpoint.history.epochs]

    unbroken = train(4, resume=False)
    for path in tmp_path.iterdir():
        path.unlink()
    train(2, resume=False)  # "interrupted" after two epochs
    assert train(4, resume=True) == unbroken
