"""sin2cos: read a window of sin(t) and predict cos(t) at every step.

A recurrent network has to infer the phase of the wave from what it has seen so far. The
first point of a window is ambiguous for a causal model (sin t = 0.5 fits cos t = +0.87
and -0.87), so the headline metric is the MSE on every point after the first.

Data: windows of sin(t0 + k*dt), k = 0..L-1, with a random start t0 (so a random phase)
and a random length L, drawn fresh every epoch. Validation and test are fixed sets of
random-phase windows, each from its own seed.
Baselines in the same run: predicting zero, and the exact linear 2-lag formula
cos t = (sin t cos dt - sin(t - dt)) / sin dt, the ceiling (defined from the second point on).

    python -m tasks.sin2cos.train                 # GRU(1, 32), seconds on a laptop CPU
    python -m tasks.sin2cos.train --cell rnn --impl core --stateful

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core import distributed, plots
from core.config import RunConfig, arg, parse, require, run_main
from core.layers import recurrent
from core.metrics import mse
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.train import seed_everything, train_epoch


@dataclass
class Config(RunConfig):
    cell: str = arg("gru", "recurrent cell", choices=["rnn", "lstm", "gru"])
    impl: str = arg("torch", "torch.nn's layer or core's hand-written cells (same weights)",
                    choices=["torch", "core"])
    hidden_size: int = arg(32, "hidden units", minimum=1)
    dt: float = arg(0.5, "time step between samples, in radians (0 < dt < pi)",
                    minimum=1e-6, maximum=math.pi - 1e-6)
    min_length: int = arg(20, "shortest training window", minimum=2)
    max_length: int = arg(80, "longest training window", minimum=2)
    batch_size: int = arg(64, "windows per batch", minimum=1)
    batches_per_epoch: int = arg(25, "fresh batches drawn per epoch", minimum=1)
    epochs: int = arg(20, "epochs of --batches-per-epoch batches", minimum=1)
    lr: float = arg(3e-2, "Adam learning rate, annealed to zero by a cosine schedule",
                   minimum=0)
    clip_norm: float = arg(1.0, "gradient norm clip (0: none)", minimum=0)
    stateful: bool = arg(False, "carry the hidden state (detached) between consecutive "
                                "windows of one long wave; evaluation warms the state up first")
    warmup: int = arg(20, "steps run before each evaluation window to warm up the state "
                          "(with --stateful)", minimum=1)
    eval_length: int = arg(100, "length of each validation and test window", minimum=2)
    eval_windows: int = arg(200, "number of validation windows and of test windows",
                            minimum=1)
    test_seed: int = arg(1234, "seed of the fixed test windows (validation: this + 1)",
                         minimum=0)

    def check(self) -> None:
        super().check()
        require(self.min_length <= self.max_length, f"need --min-length <= --max-length, "
                f"got {self.min_length} > {self.max_length}")


def waves(starts: torch.Tensor, length: int, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Start times (B,) -> sin and cos windows, each (B, length)."""
    t = starts[:, None] + dt * torch.arange(length, dtype=torch.float32)
    return torch.sin(t), torch.cos(t)


def random_starts(count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Start times uniform over many periods, so phase and position are both random."""
    return torch.rand(count, generator=generator) * 20 * math.pi


def eval_set(cfg: Config, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed random-phase windows: warm-up inputs (B, warmup), inputs and targets (B, L)."""
    starts = random_starts(cfg.eval_windows, torch.Generator().manual_seed(seed))
    warm, _ = waves(starts - cfg.warmup * cfg.dt, cfg.warmup, cfg.dt)
    x, y = waves(starts, cfg.eval_length, cfg.dt)
    return warm, x, y


class Sin2Cos(nn.Module):
    """Recurrent layer over the sine samples, then a linear read-out at every step."""

    def __init__(self, cell: str, impl: str, hidden_size: int) -> None:
        super().__init__()
        # torch.nn's layer (nn.GRU for --cell gru), or core's drop-in with --impl core
        self.rnn = recurrent(cell, impl, 1, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, state=None):
        """x (B, T) -> prediction (B, T), final state."""
        out, state = self.rnn(x.unsqueeze(-1), state)  # (B, T, H)
        return self.head(out).squeeze(-1), state


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def predict(model: Sin2Cos, warm: torch.Tensor, x: torch.Tensor, stateful: bool,
            device: torch.device) -> np.ndarray:
    """The model's cos predictions for windows x; a stateful model first reads `warm`."""
    with torch.no_grad():
        state = model(warm.to(device))[1] if stateful else None
        return model(x.to(device), state)[0].cpu().numpy()


def linear_2lag(x: np.ndarray, dt: float) -> np.ndarray:
    """cos t = (sin t cos dt - sin(t - dt)) / sin dt; zero at the first point (no lag)."""
    prediction = np.zeros_like(x)
    prediction[:, 1:] = (x[:, 1:] * math.cos(dt) - x[:, :-1]) / math.sin(dt)
    return prediction


def scores(y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    return {"mse": mse(y, prediction), "mse_after_first": mse(y[:, 1:], prediction[:, 1:])}


def main(argv: list[str] | None = None) -> None:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.eval_windows = 2, 3, 16
    run = Run(cfg)
    device = run.device

    # Data: fixed validation and test windows; training windows are drawn fresh below.
    val_warm, val_x, val_y = eval_set(cfg, cfg.test_seed + 1)
    test_warm, test_x, test_y = eval_set(cfg, cfg.test_seed)
    run.data_checked()  # --preflight ends here

    # Baselines on exactly the test windows the model is scored on.
    y = test_y.numpy()
    baselines = {"zero": scores(y, np.zeros_like(y)),
                 "linear_2lag": scores(y, linear_2lag(test_x.numpy(), cfg.dt))}

    def batches():
        """Windows of one random length per batch. Stateful: consecutive windows of the
        same B long waves, so the state carried from one batch belongs to the next; each
        epoch's stream starts afresh."""
        starts = random_starts(cfg.batch_size)
        for _ in range(cfg.batches_per_epoch):
            length = int(torch.randint(cfg.min_length, cfg.max_length + 1, ()))
            if not cfg.stateful:
                starts = random_starts(cfg.batch_size)
            x, target = waves(starts, length, cfg.dt)
            starts = starts + length * cfg.dt
            yield x.to(device), target.to(device)

    def step(model: Sin2Cos, batch: tuple[torch.Tensor, torch.Tensor], state):
        """One batch's loss (train_epoch then does zero_grad, backward, clip and the
        optimizer's step). With --stateful the final state, detached from this batch's
        graph, is handed to the next batch (each epoch starts with None)."""
        x, target = batch
        prediction, state = model(x, state if cfg.stateful else None)
        loss = nn.functional.mse_loss(prediction, target)
        return loss, detach(state) if cfg.stateful else None

    def validate(model: Sin2Cos) -> dict[str, float]:
        return scores(val_y.numpy(), predict(model, val_warm, val_x, cfg.stateful, device))

    def train_seed(seed: int) -> SeedResult:
        model = Sin2Cos(cfg.cell, cfg.impl, cfg.hidden_size).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        # best.pt, last.pt and history.csv in seed<N>/; --resume restores all three
        checkpoint = run.checkpoint(seed, monitor="mse_after_first", model=model,
                                    optimizer=optimizer, scheduler=scheduler)
        trained = distributed.wrap(model)  # under torchrun, DDP averages the gradients
        for epoch in checkpoint.epochs(cfg.epochs):
            loss = train_epoch(trained, optimizer, batches(), step, cfg.clip_norm)
            scheduler.step()
            checkpoint.save(epoch, {"train_loss": loss, **validate(model)})
        history = checkpoint.load_best()
        # Evaluate the best-on-validation weights on the test windows, once.
        prediction = predict(model, test_warm, test_x, cfg.stateful, device)
        return SeedResult(seed, {"model": scores(y, prediction)}, history, prediction)

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return  # under torchrun, process 0 alone reports
    test = {**seeds.test(), **baselines}
    print(comparison_table(test, ["mse", "mse_after_first"]))
    ratio = test["model"]["mse_after_first"] / test["zero"]["mse_after_first"]
    print(f"model / zero (after the first point): {ratio:.2e}; {seeds.seconds:.1f} s training")

    run.finish(test, seeds.seconds)
    shown = seeds.median("mse_after_first")
    plots.training_curve(shown.history.epochs, run.dir / "training_curve.png",
                         keys=["mse_after_first"])
    two_lag = linear_2lag(test_x.numpy(), cfg.dt)
    for i in range(min(3, len(y))):
        plots.lines({"cos (truth)": y[i], "sin (input)": test_x.numpy()[i],
                     "linear 2-lag": two_lag[i], "model": shown.outputs[i]},
                    run.dir / f"test_window_{i}.png", title=f"test window {i}",
                    x=np.arange(cfg.eval_length) * cfg.dt, xlabel="t - t0 (radians)")
    print(f"wrote {run.dir}/metrics.json, seed*/best.pt, last.pt, history.csv and plots")


if __name__ == "__main__":
    run_main(main)
