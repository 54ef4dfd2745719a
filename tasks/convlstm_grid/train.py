"""convlstm_grid: forecast a moving 2-channel field on a grid with a ConvLSTM.

Given 5 frames of a field, predict the next 5. Each sequence holds 1-3 Gaussian blobs
moving at a constant random velocity and bouncing off the borders. Channel 0 is their
intensity; channel 1 is a signed second field carried by the same objects at a fixed
offset (think temperature beside humidity). Training draws fresh sequences every batch;
validation and test are fixed sets, each from its own seed, so --seed never moves them.

Model: a ConvLSTM (core.convlstm; torch.nn has none, so there is no --impl switch) reads
the 5 frames, then rolls out: from the top layer's h a 3x3 convolution predicts the
change from the last frame, and the predicted frame is fed back in for the next step.
Training is free-running (the model always sees its own predictions), with the loss on
all 5 steps, each divided by persistence's error at that step. The frames are folded
into patches (--patch 4: a 32x32x2 field becomes 8x8x32) so the recurrence runs on a
16x smaller grid and each 3x3 kernel sees 12 cells wide.
Baselines in the same run: persistence (repeat the last frame), the zero field, the mean
training field, and linear extrapolation x_t + k (x_t - x_{t-1}).

--cell predrnn forecasts with PredRNN instead (core.convlstm.PredRNN: a second memory
zigzags up the stack and on to the next step) and, in the same run, from the same seed,
on the same batches and for as many updates, trains the ConvLSTM of --hidden-size beside
it (metrics.json's `convlstm`, in seed<N>/convlstm/). PredRNN's width is chosen for
about the ConvLSTM's parameter count. PredRNN-V2's two training aids are flags:
--decouple-weight and --reverse-sampling.

    python -m tasks.convlstm_grid.train                    # 32x32, about 2 min, 1 thread
    python -m tasks.convlstm_grid.train --grid 12 --patch 2  # the seed project's 12x12 grid
    python -m tasks.convlstm_grid.train --cell predrnn     # PredRNN beside the ConvLSTM

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import plots
from core.config import RunConfig, arg, parse, require, run_main
from core.convlstm import ConvLSTM, PredRNN
from core.metrics import mse
from core.report import comparison_table
from core.run import Run, SeedResult
from core.train import History, seed_everything

CHANNELS = 2  # intensity, and the signed field carried beside it


@dataclass
class Config(RunConfig):
    grid: int = arg(32, "height and width of the field in cells", minimum=4)
    max_objects: int = arg(3, "each sequence has 1 to this many moving blobs", minimum=1)
    input_steps: int = arg(5, "frames the model reads (linear extrapolation needs 2)",
                           minimum=2)
    horizon: int = arg(5, "frames it predicts after them", minimum=1)
    cell: str = arg("convlstm", "the network: convlstm, or predrnn, which trains PredRNN and, "
                                "in the same run on the same batches, the ConvLSTM of "
                                "--hidden-size (metrics.json's `convlstm`)",
                    choices=["convlstm", "predrnn"])
    hidden_size: list[int] = arg([32, 32], "hidden channels of each ConvLSTM layer; with "
                                           "--cell predrnn, PredRNN gets as many layers, of "
                                           "the width that gives it about as many parameters")
    decouple_weight: float = arg(0.0, "--cell predrnn: weight of PredRNN-V2's decoupling "
                                      "loss, the mean |cosine| between what a step adds to "
                                      "C and to M (0: none)", minimum=0)
    reverse_sampling: float = arg(0.0, "--cell predrnn: PredRNN-V2's reverse scheduled "
                                       "sampling: in training, each input frame after the "
                                       "first is replaced by PredRNN's own forecast with "
                                       "this chance, falling linearly to 0 at half the "
                                       "epochs (0: never)", minimum=0, maximum=1)
    kernel_size: int = arg(3, "convolution kernel of the recurrent gates (odd)", minimum=1)
    head_kernel: int = arg(3, "kernel of the convolution that reads the change of the frame "
                              "from the top layer's h (odd)", minimum=1)
    patch: int = arg(4, "fold patch x patch cells into channels before the network "
                        "(1: none); must divide --grid", minimum=1)
    batch_size: int = arg(16, "sequences per batch, drawn fresh", minimum=1)
    batches_per_epoch: int = arg(40, "batches per epoch", minimum=1)
    epochs: int = arg(15, "epochs; the learning rate follows a cosine down to zero",
                      minimum=1)
    lr: float = arg(3e-3, "Adam learning rate", minimum=0)
    clip_norm: float = arg(1.0, "gradient norm clip (0: none)", minimum=0)
    balance_steps: bool = arg(True, "divide each step's training loss by persistence's MSE "
                                    "at that step (on training draws): the early steps, "
                                    "where persistence is hardest to beat, count as much "
                                    "as the late ones")
    eval_sequences: int = arg(256, "sequences in the validation set and in the test set",
                             minimum=1)
    test_seed: int = arg(1234, "seed of the fixed test set (validation: this + 1)",
                         minimum=0)
    show: int = arg(3, "test sequences drawn in predictions.png (at most --eval-sequences)",
                   minimum=1)

    def check(self) -> None:
        super().check()
        require(self.grid % self.patch == 0,
                f"--patch {self.patch} must divide --grid {self.grid}")
        require(self.kernel_size % 2 == 1 and self.head_kernel % 2 == 1,
                f"--kernel-size and --head-kernel must be odd, got {self.kernel_size} and "
                f"{self.head_kernel}")
        require(min(self.hidden_size) >= 1, f"--hidden-size must be positive, got "
                f"{self.hidden_size}")
        require((self.decouple_weight == 0 and self.reverse_sampling == 0)
                or self.cell == "predrnn", "--decouple-weight and --reverse-sampling are "
                "PredRNN-V2's: give --cell predrnn too")
        require(self.show <= self.eval_sequences, f"--show {self.show} is more than "
                f"--eval-sequences {self.eval_sequences}")


# Data ---------------------------------------------------------------------------------

def blob_width(grid: int) -> float:
    """The blobs' Gaussian sigma; sizes scale with the grid so `--grid 12` is the same
    problem, coarser (2.7 cells at 32)."""
    return grid / 12


def trajectories(count: int, grid: int, steps: int, rng: np.random.Generator,
                 max_objects: int = 3) -> np.ndarray:
    """Centres (count, steps, max_objects, 2 = y x) of blobs moving at a constant random
    velocity, 1-2.2 cells a step at 32, reflected off the walls at sigma and grid-1-sigma
    so that every centre stays inside the grid."""
    lo, hi = blob_width(grid), grid - 1 - blob_width(grid)
    position = rng.uniform(lo, hi, size=(count, max_objects, 2))
    speed = rng.uniform(0.03, 0.07, size=(count, max_objects, 1)) * grid
    angle = rng.uniform(0, 2 * math.pi, size=(count, max_objects))
    velocity = speed * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    centres = np.empty((count, steps, max_objects, 2))
    for t in range(steps):
        centres[:, t] = position
        position = position + velocity
        for wall, beyond in ((lo, position < lo), (hi, position > hi)):
            position = np.where(beyond, 2 * wall - position, position)  # reflect
            velocity = np.where(beyond, -velocity, velocity)
    return centres


def make_sequences(count: int, grid: int, steps: int, rng: np.random.Generator,
                   max_objects: int = 3) -> np.ndarray:
    """`count` sequences of `steps` frames with 1 to `max_objects` blobs each:
    (count, steps, 2, grid, grid) float32. Channel 0 is the intensity (0.5-1 a blob);
    channel 1 the same objects signed (+-0.5-1) and shifted by 1.5 sigma in a fixed
    random direction. Overlapping blobs add up."""
    sigma, k = blob_width(grid), max_objects
    centres = trajectories(count, grid, steps, rng, k)                    # (N, T, K, 2)
    active = np.arange(k)[None, :] < rng.integers(1, k + 1, size=(count, 1))  # (N, K)
    amplitude = rng.uniform(0.5, 1.0, size=(count, k)) * active
    signed = rng.choice([-1.0, 1.0], size=(count, k)) * rng.uniform(0.5, 1.0, (count, k))
    turn = rng.uniform(0, 2 * math.pi, size=(count, k))
    offset = 1.5 * sigma * np.stack([np.sin(turn), np.cos(turn)], axis=-1)   # (N, K, 2)
    cells = np.arange(grid)
    frames = np.empty((count, steps, CHANNELS, grid, grid), dtype=np.float32)
    for channel, (centre, weight) in enumerate([(centres, amplitude),
                                                (centres + offset[:, None], signed * active)]):
        # A 2-D Gaussian is the outer product of a column and a row profile.
        gy = np.exp(-((cells - centre[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, T, K, H)
        gx = np.exp(-((cells - centre[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, T, K, W)
        weighted = gy * weight[:, None, :, None]                          # (N, T, K, H)
        frames[:, :, channel] = weighted.swapaxes(-1, -2) @ gx               # (N, T, H, W)
    return frames


def split(frames: np.ndarray, input_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, C, H, W) -> inputs (N, input_steps, ...) and targets (N, T - input_steps, ...)."""
    x = torch.from_numpy(frames)
    return x[:, :input_steps], x[:, input_steps:]


# Baselines ----------------------------------------------------------------------------

def baseline_forecasts(x: torch.Tensor, horizon: int, mean_field: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
    """Inputs (N, T, C, H, W) -> each baseline's forecast (N, horizon, C, H, W)."""
    last, step = x[:, -1:], x[:, -1:] - x[:, -2:-1]
    ahead = torch.arange(1, horizon + 1, dtype=x.dtype).view(1, horizon, 1, 1, 1)
    return {"persistence": last.expand(-1, horizon, -1, -1, -1),
            "zero": torch.zeros_like(last).expand(-1, horizon, -1, -1, -1),
            "mean": mean_field.expand(len(x), horizon, -1, -1, -1),
            "linear_extrapolation": last + ahead * step}


def scores(y: torch.Tensor, prediction: torch.Tensor) -> dict[str, float]:
    """MSE at each horizon step ("mse@h1" ...) and over all of them ("mse")."""
    y, prediction = y.numpy(), prediction.numpy()
    per_step = {f"mse@h{k + 1}": mse(y[:, k], prediction[:, k]) for k in range(y.shape[1])}
    return {**per_step, "mse": mse(y, prediction)}


# Model --------------------------------------------------------------------------------

class Forecaster(nn.Module):
    """A ConvLSTM or PredRNN encoder, then an autoregressive rollout of `horizon` frames.

        frames (B, T, C, H, W) ─ fold patches ─> (B, T, C p², H/p, W/p) ─ RNN ─ state
        repeat horizon times:
            frame' = frame + head(h_top)         the change from the last frame
            state  = RNN.step(frame', state)     the prediction is fed back

    `hidden_size`: a list, one per layer, for ConvLSTM; PredRNN takes the list's length
    as its layer count and `predrnn_width` as every layer's width. With `decouple`, a
    1x1 convolution (PredRNN-V2's W_decouple) maps what each step adds to C and to M
    before the decoupling loss compares them.
    """

    def __init__(self, channels: int, hidden_size: list[int], kernel_size: int,
                 head_kernel: int, patch: int, cell: str = "convlstm",
                 predrnn_width: int = 0, decouple: bool = False) -> None:
        super().__init__()
        self.patch = patch
        folded = channels * patch**2
        if cell == "convlstm":
            self.rnn = ConvLSTM(folded, hidden_size, kernel_size,
                                num_layers=len(hidden_size), batch_first=True)
            top = hidden_size[-1]
        else:
            self.rnn = PredRNN(folded, predrnn_width, kernel_size,
                               num_layers=len(hidden_size), batch_first=True)
            top = predrnn_width
        self.head = nn.Conv2d(top, folded, head_kernel, padding="same")
        self.decouple = nn.Conv2d(top, top, 1, bias=False) if decouple else None

    def forward(self, x: torch.Tensor, horizon: int, decoupling: bool = False,
                hide: float = 0.0) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, C, H, W) -> forecast (B, horizon, C, H, W); with `decoupling` (a
        PredRNN built with `decouple`), (forecast, decoupling loss). `hide`: the chance
        that each input frame after the first is replaced by the model's own forecast of
        it (PredRNN-V2's reverse scheduled sampling, for training)."""
        increments = [] if decoupling else None             # each layer's (ΔC, ΔM), each step
        extra = {} if increments is None else {"increments": increments}
        b, t = x.shape[:2]
        folded = nn.functional.pixel_unshuffle(x.flatten(0, 1), self.patch)
        folded = folded.view(b, t, *folded.shape[1:])       # (B, T, C p², H/p, W/p)
        if hide > 0:
            frame = folded[:, 0]
            top, state = self.rnn.step(frame, None, **extra)
            for s in range(1, t):
                hidden = torch.rand(b, 1, 1, 1, device=x.device) < hide  # per sequence
                frame = torch.where(hidden, frame + self.head(top), folded[:, s])
                top, state = self.rnn.step(frame, state, **extra)
        else:
            top, state = self.rnn(folded, **extra)
            top, frame = top[:, -1], folded[:, -1]          # the top layer's last h
        out = []
        for k in range(horizon):
            frame = frame + self.head(top)
            out.append(frame)
            if k + 1 < horizon:
                top, state = self.rnn.step(frame, state, **extra)
        out = torch.stack(out, dim=1)                       # (B, horizon, C p², H/p, W/p)
        forecast = nn.functional.pixel_shuffle(out.flatten(0, 1), self.patch).view(
            b, horizon, *x.shape[2:])
        if decoupling:
            return forecast, decoupling_loss(self.decouple, increments)
        return forecast


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matching_width(channels: int, hidden_size: list[int], kernel_size: int,
                   head_kernel: int, patch: int) -> int:
    """The PredRNN width whose Forecaster has the parameter count nearest the ConvLSTM
    Forecaster's of `hidden_size`: an ST-LSTM layer holds about 9/4 the weights of a
    ConvLSTM layer as wide, so the fair rival is narrower."""
    target = parameter_count(Forecaster(channels, hidden_size, kernel_size, head_kernel,
                                        patch))
    return min(range(1, 2 * max(hidden_size) + 1), key=lambda width: abs(target - (
        parameter_count(Forecaster(channels, hidden_size, kernel_size, head_kernel, patch,
                                   "predrnn", width)))))


def decoupling_loss(adapter: nn.Conv2d, increments: list) -> torch.Tensor:
    """PredRNN-V2: the mean over layers, steps, batch and channels of
    |cos(W_decouple * ΔC, W_decouple * ΔM)|, each channel's cosine taken over the grid,
    so that C and M learn to hold different things."""
    delta_c = torch.stack([adapter(dc) for dc, _ in increments]).flatten(-2)  # (S, B, Hd, HW)
    delta_m = torch.stack([adapter(dm) for _, dm in increments]).flatten(-2)
    return nn.functional.cosine_similarity(delta_c, delta_m, dim=-1).abs().mean()


def predict(model: Forecaster, x: torch.Tensor, horizon: int, device: torch.device,
            batch_size: int = 128) -> torch.Tensor:
    """The model's forecasts for inputs x (N, T, C, H, W), in batches, on the CPU."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size].to(device), horizon).cpu()
                          for i in range(0, len(x), batch_size)])


# Report -------------------------------------------------------------------------------

def plot_predictions(y: torch.Tensor, forecasts: dict[str, torch.Tensor], path: Path,
                     show: int) -> None:
    """For `show` test sequences and each channel, a mosaic: rows the truth, each
    forecast, then each forecast's error; columns the horizon steps (one image per panel
    keeps the figure quick to draw)."""
    import matplotlib.pyplot as plt  # core.plots has already chosen the Agg backend

    horizon, size = y.shape[1], y.shape[-1]
    names = ["truth", *forecasts, *(f"{name} error" for name in forecasts)]
    fig, axes = plt.subplots(show, CHANNELS, squeeze=False,
                             figsize=(2 * horizon + 2, 1.1 * len(names) * show))
    for s in range(show):
        for channel in range(CHANNELS):
            truth = y[s, :, channel]                        # (horizon, H, W)
            guesses = [f[s, :, channel] for f in forecasts.values()]
            panels = [truth, *guesses, *(guess - truth for guess in guesses)]
            mosaic = torch.cat([torch.cat(list(frames), dim=1) for frames in panels])
            limit = float(truth.abs().max()) or 1.0         # mosaic: (rows H, horizon W)
            ax = axes[s, channel]
            ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([size * (k + 0.5) for k in range(horizon)],
                          [f"+{k + 1}" for k in range(horizon)], fontsize=7)
            ax.set_yticks([size * (r + 0.5) for r in range(len(names))], names, fontsize=7)
            for edge in range(1, horizon):
                ax.axvline(edge * size - 0.5, color="black", linewidth=0.5)
            for edge in range(1, len(names)):
                ax.axhline(edge * size - 0.5, color="black", linewidth=0.5)
            ax.set_title(f"test #{s}, channel {channel}", fontsize=8)
    fig.tight_layout()
    plots.save(fig, path, dpi=100)


def animate(x: torch.Tensor, y: torch.Tensor, prediction: torch.Tensor, path: Path) -> None:
    """A GIF of one test sequence, channel 0: the inputs, then truth beside the model."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    truth = torch.cat([x, y])                               # (T_in + horizon, C, H, W)
    model = torch.cat([x, prediction])
    limit = float(truth[:, 0].abs().max()) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.7))
    images = [ax.imshow(truth[0, 0], cmap="RdBu_r", vmin=-limit, vmax=limit) for ax in axes]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])

    def draw(t: int):
        stage = "input" if t < len(x) else f"+{t - len(x) + 1}"
        for ax, image, frames, name in zip(axes, images, (truth, model), ("truth", "model"),
                                           strict=True):
            image.set_data(frames[t, 0])
            ax.set_title(f"{name} {stage}", fontsize=9)
        return images

    FuncAnimation(fig, draw, frames=len(truth)).save(path, writer=PillowWriter(fps=2))
    plt.close(fig)


def print_report(test: dict[str, dict[str, float]], horizon: int, seconds: float) -> None:
    """MSE per step of every method, the model's ratios to its rivals, and (with PredRNN)
    both networks' training time."""
    columns = [f"mse@h{k + 1}" for k in range(horizon)] + ["mse"]
    print(comparison_table(test, columns))
    width = max(len(method) for method in test) + 9
    for name in ["convlstm"] * ("convlstm" in test) + ["persistence", "zero"]:
        ratios = "".join(f"{test['model'][m] / test[name][m]:>14.3f}" for m in columns)
        print(f"{'model/' + name:<{width}}{ratios}")
    if "convlstm" in test:
        mine, rival = test["model"]["train_seconds"], test["convlstm"]["train_seconds"]
        print(f"training: PredRNN {mine:.1f} s, ConvLSTM {rival:.1f} s "
              f"({mine / rival:.2f}x), {seconds:.1f} s in all")
    else:
        print(f"{seconds:.1f} s training")


def main(argv: list[str] | None = None) -> None:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.batch_size, cfg.eval_sequences = 2, 2, 8, 16
        cfg.show = min(cfg.show, cfg.eval_sequences)
    run = Run(cfg)
    device = run.device
    steps = cfg.input_steps + cfg.horizon

    def sequences(count: int, rng: np.random.Generator) -> np.ndarray:
        return make_sequences(count, cfg.grid, steps, rng, cfg.max_objects)

    # Data: fixed validation and test sets; training sequences are drawn fresh below.
    val_x, val_y = split(sequences(cfg.eval_sequences,
                                   np.random.default_rng(cfg.test_seed + 1)), cfg.input_steps)
    test_x, test_y = split(sequences(cfg.eval_sequences, np.random.default_rng(cfg.test_seed)),
                           cfg.input_steps)
    # The mean field and the step weights come from training draws (the stream of --seed).
    sample_x, sample_y = split(sequences(512, np.random.default_rng(cfg.seed)),
                               cfg.input_steps)
    run.data_checked()  # --preflight ends here
    mean_field = torch.cat([sample_x, sample_y], dim=1).mean(dim=(0, 1))[None, None]
    persistence = (sample_y - sample_x[:, -1:]).pow(2).mean(dim=(0, 2, 3, 4))  # (horizon,)
    step_weight = (persistence.mean() / persistence if cfg.balance_steps
                   else torch.ones(cfg.horizon)).view(1, -1, 1, 1, 1).to(device)

    # Baselines on exactly the test targets the model is scored on.
    baselines = {name: scores(test_y, forecast) for name, forecast in
                 baseline_forecasts(test_x, cfg.horizon, mean_field).items()}
    print(comparison_table(baselines, ["mse@h1", f"mse@h{cfg.horizon}", "mse"]))

    def batches():
        # Seeded from numpy's global stream, which last.pt saves: --resume draws the same.
        rng = np.random.default_rng(np.random.randint(2**31))
        for _ in range(cfg.batches_per_epoch):
            x, y = split(sequences(cfg.batch_size, rng), cfg.input_steps)
            yield x.to(device), y.to(device)

    def loss(model: Forecaster, batch: tuple[torch.Tensor, torch.Tensor],
             decouple_weight: float = 0.0, hide: float = 0.0) -> torch.Tensor:
        """The squared error of the free-running forecast at every step (weighted by
        step), plus PredRNN-V2's decoupling term when asked for."""
        x, y = batch
        if decouple_weight > 0:
            forecast, decoupling = model(x, cfg.horizon, decoupling=True, hide=hide)
        else:
            forecast, decoupling = model(x, cfg.horizon, hide=hide), 0.0
        error = (forecast - y).pow(2)                       # free-running, every step
        return (error * step_weight).mean() + decouple_weight * decoupling

    def validate(model: Forecaster) -> dict[str, float]:
        return scores(val_y, predict(model, val_x, cfg.horizon, device))

    # PredRNN's width: about the ConvLSTM's parameter count, so neither wins by size.
    predrnn_width = matching_width(CHANNELS, cfg.hidden_size, cfg.kernel_size, cfg.head_kernel,
                                   cfg.patch) if cfg.cell == "predrnn" else 0

    def train_one(cell: str, seed: int, name: str) -> tuple[Forecaster, History]:
        # Both networks start from the seed's streams: the same batches, in the same order.
        seed_everything(seed)
        decouple = cell == "predrnn" and cfg.decouple_weight > 0
        model = Forecaster(CHANNELS, cfg.hidden_size, cfg.kernel_size, cfg.head_kernel,
                           cfg.patch, cell, predrnn_width, decouple).to(device)
        layers = (f"ConvLSTM {cfg.hidden_size}" if cell == "convlstm"
                  else f"PredRNN {len(cfg.hidden_size)} x {predrnn_width}")
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        weight = cfg.decouple_weight if decouple else 0.0
        hiding = cfg.reverse_sampling if cell == "predrnn" else 0.0

        def hide() -> float:  # the scheduler counts the epochs, and --resume restores it
            return hiding * max(0.0, 1 - 2 * scheduler.last_epoch / cfg.epochs)

        def step(model: Forecaster, batch: tuple[torch.Tensor, torch.Tensor], carried: None):
            """One training step's loss; the shared loop then does zero_grad, backward,
            clipping and the optimizer's step. Nothing is carried over."""
            return loss(model, batch, weight, hide()), None

        history = run.fit(model, optimizer, batches, step, validate, seed=seed, name=name,
                          about=f"{layers} kernel {cfg.kernel_size} patch {cfg.patch}",
                          monitor="mse", clip_norm=cfg.clip_norm, scheduler=scheduler)
        return model, history

    # --cell predrnn: PredRNN is the model, the ConvLSTM trains beside it in seed<N>/convlstm/.
    networks = {"model": cfg.cell} | ({"convlstm": "convlstm"} if cfg.cell == "predrnn"
                                      else {})

    def train_seed(seed: int) -> SeedResult:
        results, outputs, histories = {}, {}, {}
        for name, cell in networks.items():
            model, histories[name] = train_one(cell, seed, "" if name == "model" else name)
            # Evaluate the best-on-validation weights on the test set, once.
            outputs[name] = predict(model, test_x, cfg.horizon, device)
            results[name] = scores(test_y, outputs[name])
            if len(networks) > 1:
                results[name]["train_seconds"] = histories[name].seconds
        history = histories["model"]
        history.seconds = sum(h.seconds for h in histories.values())  # the time all took
        return SeedResult(results, history, outputs)

    seeds = run.each_seed(train_seed)
    test = {**seeds.test(), **baselines}
    print_report(test, cfg.horizon, seeds.seconds)
    run.finish(test, seeds.seconds)
    shown = seeds.median("mse")
    plots.training_curve(shown.history.epochs, run.dir / "training_curve.png", keys=["mse"],
                         unit="MSE")
    names = {"model": "PredRNN", "convlstm": "ConvLSTM"} if len(networks) > 1 else {}
    plot_predictions(test_y, {names.get(k, k): v for k, v in shown.outputs.items()},
                     run.dir / "predictions.png", cfg.show)
    animate(test_x[0], test_y[0], shown.outputs["model"][0], run.dir / "predictions.gif")
    print(f"wrote {run.dir}/metrics.json, seed*/best.pt, predictions.png/.gif, "
          "training_curve.png")


if __name__ == "__main__":
    run_main(main)
