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
--decouple-weight and --reverse-sampling. The two networks train in one epoch loop below:
each epoch's batches are drawn once and each network takes its pass over them, and each
keeps its own checkpoints (seed<N>/ and seed<N>/convlstm/) and its own training seconds;
a stop between the two saves of an epoch is resumed by training the rival on that epoch.

Beside this file: data.py draws the sequences, baselines.py holds the baselines and the
metric, model.py the Forecaster, figures.py the pictures.

    python -m tasks.convlstm_grid.train                    # 32x32, about 2 min, 1 thread
    python -m tasks.convlstm_grid.train --grid 12 --patch 2  # the seed project's 12x12 grid
    python -m tasks.convlstm_grid.train --cell predrnn     # PredRNN beside the ConvLSTM

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import distributed, plots
from core.config import RunConfig, UserError, arg, parse, require, run_main
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.train import seed_everything, train_epoch

from .baselines import baseline_forecasts, scores
from .data import CHANNELS, make_sequences, split
from .figures import animate, plot_predictions
from .model import Forecaster, matching_width, predict


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

def draw(cfg: Config, count: int, rng: np.random.Generator
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` fresh sequences (data.py), split into the frames read and those predicted:
    (count, --input-steps, C, H, W) and (count, --horizon, C, H, W)."""
    frames = make_sequences(count, cfg.grid, cfg.input_steps + cfg.horizon, rng,
                            cfg.max_objects)
    return split(frames, cfg.input_steps)


# Model --------------------------------------------------------------------------------

def networks(cfg: Config, seed: int, predrnn_width: int, device: torch.device
             ) -> dict[str, Forecaster]:
    """The model (--cell); with --cell predrnn, its ConvLSTM rival too, started as --cell
    convlstm would start it: from the seed's generator, which is then put back, so that
    PredRNN's own draws go on as if it trained alone."""
    models = {"model": Forecaster(CHANNELS, cfg.hidden_size, cfg.kernel_size, cfg.head_kernel,
                                  cfg.patch, cfg.cell, predrnn_width,
                                  cfg.decouple_weight > 0).to(device)}
    if cfg.cell == "predrnn":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            models["convlstm"] = Forecaster(CHANNELS, cfg.hidden_size, cfg.kernel_size,
                                            cfg.head_kernel, cfg.patch).to(device)
    return models


# Report -------------------------------------------------------------------------------

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


def plot_report(shown: SeedResult, x: torch.Tensor, y: torch.Tensor, cfg: Config,
                folder: Path) -> None:
    """One seed's training curve, its test forecasts beside the truth, and a GIF."""
    plots.training_curve(shown.history.epochs, folder / "training_curve.png", keys=["mse"],
                         unit="MSE")
    names = {"model": "PredRNN", "convlstm": "ConvLSTM"} if cfg.cell == "predrnn" else {}
    plot_predictions(y, {names.get(k, k): v for k, v in shown.outputs.items()},
                     folder / "predictions.png", cfg.show)
    animate(x[0], y[0], shown.outputs["model"][0], folder / "predictions.gif")


def main(argv: list[str] | None = None) -> None:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.batch_size, cfg.eval_sequences = 2, 2, 8, 16
        cfg.show = min(cfg.show, cfg.eval_sequences)
    run = Run(cfg)
    device = run.device

    # Data: fixed validation and test sets; training sequences are drawn fresh below.
    val_x, val_y = draw(cfg, cfg.eval_sequences, np.random.default_rng(cfg.test_seed + 1))
    test_x, test_y = draw(cfg, cfg.eval_sequences, np.random.default_rng(cfg.test_seed))
    # The mean field and the step weights come from training draws (the stream of --seed).
    sample_x, sample_y = draw(cfg, 512, np.random.default_rng(cfg.seed))
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
            x, y = draw(cfg, cfg.batch_size, rng)
            yield x.to(device), y.to(device)

    def step(model: Forecaster, batch: tuple[torch.Tensor, torch.Tensor], carried: None,
             decouple_weight: float = 0.0, hide: float = 0.0):
        """One batch's loss (train_epoch then does zero_grad, backward, clip and the
        optimizer's step): the squared error of the free-running forecast at every step,
        weighted by step, plus PredRNN-V2's decoupling term when asked for. `hide`: the
        chance of reverse scheduled sampling. Nothing is carried over."""
        x, y = batch
        if decouple_weight > 0:
            forecast, decoupling = model(x, cfg.horizon, decoupling=True, hide=hide)
        else:
            forecast, decoupling = model(x, cfg.horizon, hide=hide), 0.0
        error = (forecast - y).pow(2)                       # free-running, every step
        return (error * step_weight).mean() + decouple_weight * decoupling, None

    def validate(model: Forecaster) -> dict[str, float]:
        return scores(val_y, predict(model, val_x, cfg.horizon, device))

    # PredRNN's width: about the ConvLSTM's parameter count, so neither wins by size.
    predrnn_width = matching_width(CHANNELS, cfg.hidden_size, cfg.kernel_size, cfg.head_kernel,
                                   cfg.patch) if cfg.cell == "predrnn" else 0
    if predrnn_width:
        print(f"PredRNN: {len(cfg.hidden_size)} layers of {predrnn_width} channels, beside the "
              f"ConvLSTM {cfg.hidden_size}")

    def train_seed(seed: int) -> SeedResult:
        models = networks(cfg, seed, predrnn_width, device)
        optimizers = {n: torch.optim.Adam(m.parameters(), lr=cfg.lr) for n, m in models.items()}
        schedulers = {n: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=cfg.epochs)
                      for n, o in optimizers.items()}
        # best.pt, last.pt and history.csv in seed<N>/ (the rival's in seed<N>/convlstm/);
        # --resume restores them all, the rival's first (see below)
        checkpoints = {n: run.checkpoint(seed, "" if n == "model" else n, monitor="mse",
                                         model=models[n], optimizer=optimizers[n],
                                         scheduler=schedulers[n]) for n in reversed(models)}
        checkpoint = checkpoints["model"]
        rival = checkpoints.get("convlstm", checkpoint)
        # PredRNN saves each epoch first, its rival second. The rival's random state (its
        # last.pt's, or the state it was made in) is where its next epoch begins, after a
        # stop between the two saves too (kill -9 included): the rival is then an epoch
        # behind, and that epoch's batches are drawn again from here, PredRNN skips it and
        # the rival trains it from the random state PredRNN's last.pt kept, as it would
        # have without the stop.
        done = {n: len(c.history.epochs) for n, c in checkpoints.items()}
        lag = done["model"] - len(rival.history.epochs)  # 1 after a stop between the saves
        if lag not in (0, 1):
            raise UserError(f"{run.seed_dir(seed)}: the two networks' last.pt hold epochs "
                            f"{sorted(done.values())}, which no stop between their saves "
                            "leaves; start afresh with --overwrite")
        rival.restore_random_state()
        trained = {n: distributed.wrap(m) for n, m in models.items()}  # DDP under torchrun
        # Each network's own seconds (kept in its history, so --resume goes on counting).
        seconds = {n: c.history.epochs[-1]["train_seconds"] if c.history.epochs else 0.0
                   for n, c in checkpoints.items()}
        for epoch in (rival if lag else checkpoint).epochs(cfg.epochs):
            began = time.perf_counter()
            shared = list(batches())  # drawn once: every network trains on these batches
            drawn = time.perf_counter() - began
            # PredRNN-V2's aids, the model's alone: reverse sampling's chance falls
            # linearly to 0 at half the epochs.
            aids = {"decouple_weight": cfg.decouple_weight,
                    "hide": cfg.reverse_sampling * max(0.0, 1 - 2 * epoch / cfg.epochs)}
            for name, model in models.items():
                if done[name] > epoch:  # saved before the stop: on from its saved state
                    checkpoints[name].restore_random_state()
                    continue
                began = time.perf_counter()
                own_step = (lambda m, batch, c, aids=aids: step(m, batch, c, **aids)
                            ) if name == "model" else step
                loss = train_epoch(trained[name], optimizers[name], shared, own_step,
                                   cfg.clip_norm)
                schedulers[name].step()
                metrics = validate(model)
                seconds[name] += drawn + time.perf_counter() - began
                checkpoints[name].save(epoch, {"train_loss": loss, **metrics,
                                               "train_seconds": seconds[name]})
        results, outputs = {}, {}
        for name, model in models.items():
            checkpoints[name].load_best()
            # Evaluate the best-on-validation weights on the test set, once.
            outputs[name] = predict(model, test_x, cfg.horizon, device)
            results[name] = scores(test_y, outputs[name])
            if len(models) > 1:
                results[name]["train_seconds"] = seconds[name]
        history = checkpoint.history
        history.seconds = sum(seconds.values())  # the time all took
        return SeedResult(seed, results, history, outputs)

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return  # under torchrun, process 0 alone reports
    test = {**seeds.test(), **baselines}
    print_report(test, cfg.horizon, seeds.seconds)
    run.finish(test, seeds.seconds)
    # The plots show the seed of the median test MSE.
    plot_report(seeds.median("mse"), test_x, test_y, cfg, run.dir)
    print(f"wrote {run.dir}/metrics.json, seed*/best.pt, predictions.png/.gif, "
          "training_curve.png")


if __name__ == "__main__":
    run_main(main)
