"""series_impute: fill the gaps of a multivariate series with a bidirectional recurrent
imputer (after BRITS) that corrects a classical fill, beside mean, median, last-observation,
linear and seasonal fills.

Data: seattle-weather.csv (fetched by name with its checksum), daily 2012-01-01 to
2015-12-31: precipitation (mm), temp_max, temp_min (deg C), wind (m/s). `--dataset
rainfall` imputes the four weather columns of the monthly Rainfall_data.csv, and any CSV
on a regular step works (10 minutes, hours, days, weeks, months, years; steps.py finds the
step from the dates): `--csv PATH --columns A B C --date-columns D`. Cells already missing
in the file, and rows it leaves out, are allowed: every method sees them as missing, and
none is scored. So is a file on no regular step, each row at its own time (irregular):
the imputer's gaps and the baselines' interpolation are then in time, not rows, and
--cell auto gives its cells GRUI's decay (core.cells.GRUICell). battery.py runs this on
a set of real and synthetic series, regular and irregular (irregular.py).

Split by time (data.py): the last 20% of rows is test, the 10% before it validation, the
rest training; each part is imputed on its own, and every statistic comes from the
training rows. Scores are on entries that were observed and are hidden on purpose, in
three patterns (points10, points50: entries hidden with probability 0.1 / 0.5; block:
runs of 7-30 rows, 3-6 for monthly or coarser rows), the same masks for every method.
The file's length sets the rest (data.sizes, said in one line): a file of 40 to 300 rows
gets validation 20%, blocks of 3-6 rows and a shorter window; a long one is scored on
its last rows (at most 10,000 test rows, 400 in a --dry-run), so a run costs the same
beyond that length, but for reading and scaling the file.
The test is scored under --mask-draws draws of the masks over the same test rows;
metrics.json has each score's mean over the draws, its standard deviation (_std) and the
95% interval of the mean (_ci95_low, _ci95_high); the model's also has its MAE over the
best baseline's, the ratio of the means with an interval paired draw by draw (mae@P_ratio;
scores.ratio_spread). Validation (which
picks the best epoch, the seasonal variant and what fill uses) uses the draw of
--mask-seed.

Training is self-supervised (as in BRITS and SAITS): every epoch draws fresh windows of
the training rows and fresh masks of all three patterns, and the loss is mostly on the
entries it hid. The metric is MAE (and RMSE) in units of each variable's training
standard deviation, averaged over the variables; per_variable.csv has them in the data's
own units. The model (model.py) normalises each window by its own seen values and learns
a correction to linear interpolation and the seasonal fill, so an untrained network gives
interpolation and a series whose level leaves the training range is no harder. Once
trained, it keeps only the share of its correction that helps on the validation rows,
per variable and gap kind, the rest going to linear interpolation or the seasonal fill
(shrink.py), so it gives a classical fill back where it cannot beat it.
`--adversarial` adds GAIN's discriminator (Yoon et al. 2018), trained as GANs are: its
own optimizer, and the two updates alternating batch by batch (gan_epoch).

The "fill" row is what fill.py would write: per variable and gap kind, linear
interpolation unless the network or another baseline wins beyond the noise on fill's own
check, made on the rows the network never trained on with only the cells each test draw
leaves seen (choose.on_test); metrics.json's fill_choice says what fill chooses on those
rows. The same check calibrates the 90% interval fill --interval writes (interval.py):
the "fill" row has its coverage of the hidden test cells and its mean width over the
variable's std (coverage90@P, width90@P), "model" the same recipe on the network alone,
"linear" the naive one on linear interpolation, and width90@P_vs_linear the paired ratio.

    python -m tasks.series_impute.train                      # Seattle, daily, 1 seed
    python -m tasks.series_impute.train --adversarial
    python -m tasks.series_impute.train --dataset rainfall --calendar
    python -m tasks.series_impute.fill tasks/series_impute/gaps.csv --output filled.csv
    python -m tasks.series_impute.battery                    # every series of the battery

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from core import distributed
from core.config import MAX_SEED, RunConfig, UserError, arg, parse, require, run_main
from core.report import comparison_table
from core.run import Run, SeedResult, Seeds
from core.train import History, seed_everything, train_epoch

from .baselines import baseline_draws, fit_baselines
from .data import DATASETS, DRY_TEST_ROWS, MOST_TEST_ROWS, PATTERNS, Data, hide, load, prepare
from .evaluate import evaluate, impute_split, rival_scores, versus
from .model import CELLS, Discriminator, Imputer, as_inputs, masked_mae
from .report import report
from .scores import draw_scores, pattern_scores
from .shrink import describe_kept, fit_shrink


@dataclass
class Config(RunConfig):
    dataset: str = arg("", "daily Seattle weather or monthly Rainfall_data.csv "
                       "(fetched by name, checksummed), or a series made in datasets.py: "
                       "weekly co2, yearly sunspots, a synthetic one with a level shift; "
                       "none given: seattle, unless --csv", choices=list(DATASETS))
    csv: str = arg("", "impute this CSV instead of --dataset: rows oldest first, on one "
                   "regular step or at any times (needs --columns and --date-columns)")
    columns: list[str] = arg([], "columns to impute; none given: the dataset's four")
    date_columns: list[str] = arg([], "one column of dates (or of years), or year, month "
                                  "(and day) columns; none given: the dataset's")
    mask_seed: int = arg(12, "seed of the validation masks and of the first test draw, the "
                         "same for every method and every --seed", minimum=0,
                         maximum=MAX_SEED - 1000)
    mask_draws: int = arg(10, "draws of the test masks (mask seeds --mask-seed, +1, ...) "
                          "over the same test rows; scores are their mean and spread",
                          minimum=2, maximum=1000)
    impl: str = arg("torch", "GRU cell of the imputer (and of the discriminator's layer): "
                    "torch.nn's or core's hand-written one (same weights)",
                    choices=["torch", "core"])
    cell: str = arg("auto", "how the gaps reach the state (model.Direction): brits (BRITS's "
                    "decay), gru (none, the gaps a plain input), grui (core.cells.GRUICell, "
                    "whatever --impl says: torch has no GRUI); auto: brits on a regular "
                    "step, grui on an irregular series", choices=["auto", *CELLS])
    no_decay: bool = arg(True, "with --cell grui, also train the same network without the "
                         "decay (--cell gru), scored as the method no_decay, with GRUI's "
                         "paired ratio to it (mae@P_vs_no_decay)")
    hidden_size: int = arg(64, "hidden units of each direction's GRU cell", minimum=1)
    calendar: bool = arg(False, "feed each row's place in its cycle (sin, cos of the day "
                         "or the year) to the cells, beside the values and the mask: worth "
                         "it on monthly data (--dataset rainfall), where the season is most "
                         "of the signal; on the daily default it scored worse on validation")
    window: int = arg(0, "rows per training window, drawn from the training rows; 0: "
                      "64, or a third of the rows of a file under 300 rows (data.sizes)",
                      minimum=0)
    batch_size: int = arg(32, "windows per batch", minimum=1)
    batches_per_epoch: int = arg(16, "fresh batches (windows and masks) per epoch: the "
                                 "cost of an epoch, whatever the file's length",
                                 minimum=1)
    epochs: int = arg(45, "epochs of --batches-per-epoch batches", minimum=1)
    lr: float = arg(3e-3, "Adam learning rate, annealed to zero by a cosine schedule",
                    minimum=0)
    clip_norm: float = arg(1.0, "gradient norm clip (0: none)", minimum=0)
    seen_loss: float = arg(1.0, "weight of BRITS's loss on the entries the model sees "
                           "(each estimated before it is read), beside the loss on the "
                           "entries hidden on purpose", minimum=0)
    consistency: float = arg(0.1, "weight of the loss |forward - backward estimate|",
                             minimum=0)
    adversarial: bool = arg(False, "also train GAIN's discriminator, with its own "
                            "optimizer, alternating its update and the imputer's")
    adversarial_weight: float = arg(0.1, "weight of the adversarial loss (with "
                                    "--adversarial)", minimum=0)
    hint_rate: float = arg(0.9, "share of the mask the hint reveals to the discriminator "
                           "(GAIN); it is scored on the rest", minimum=0, maximum=0.99)
    discriminator_size: int = arg(16, "hidden units of the discriminator's bidirectional "
                                  "GRU", minimum=1)

    def check(self) -> None:
        super().check()
        require(not (self.csv and self.dataset), f"--dataset {self.dataset} and --csv "
                f"{self.csv} conflict: give one (--csv trains on your file)")
        require(not self.csv or (self.columns and self.date_columns),
                "--csv needs --columns (the series to impute) and --date-columns")
        if not self.csv:
            self.dataset = self.dataset or "seattle"  # recorded in config.json as used


# ---- the model's training: windows of the training rows with fresh masks

def batches(cfg: Config, data: Data, device: torch.device):
    """Fresh windows of the training rows, each with a fresh mask of a random pattern;
    the generator is seeded from torch's, which checkpoints save, so --resume redraws
    the same batches."""
    rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
    observed, z = data.observed[:data.n_train], np.nan_to_num(data.z[:data.n_train])
    for _ in range(cfg.batches_per_epoch):
        starts = rng.integers(0, data.n_train - cfg.window + 1, cfg.batch_size)
        index = starts[:, None] + np.arange(cfg.window)               # (B, W)
        file_seen = observed[index]                                   # (B, W, F)
        hidden = np.stack([hide(o, PATTERNS[rng.integers(len(PATTERNS))], data.sizes.blocks,
                                rng) for o in file_seen])
        x, m, e, s = as_inputs(z[index], file_seen & ~hidden, data.extra[index],
                               data.season[index], device)
        t = torch.tensor(data.times[index], device=device)           # (B, W) float64
        target = torch.tensor(z[index], dtype=torch.float32, device=device)
        yield x, m, e, s, t, target, torch.tensor(hidden, dtype=torch.float32, device=device)


def imputation_loss(cfg: Config, out: dict, target: torch.Tensor, hidden: torch.Tensor,
                    m: torch.Tensor) -> torch.Tensor:
    """The imputer's loss on one batch, from its forward's outputs: mostly on the entries
    hidden on purpose, each direction's estimates also on the seen ones (BRITS), and the
    two directions' agreement."""
    loss = masked_mae(out["imputed"], target, hidden)
    estimates = [*out["forwards"], *out["backwards"]]
    loss = loss + sum(masked_mae(est, target, hidden) + cfg.seen_loss
                      * masked_mae(est, target, m) for est in estimates) / len(estimates)
    return loss + cfg.consistency * (out["forwards"][2] - out["backwards"][2]).abs().mean()


def gan_epoch(cfg: Config, imputer: torch.nn.Module, discriminator: torch.nn.Module,
              optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
              batches) -> float:
    """--adversarial: one pass of GAIN's two alternating updates (Yoon et al. 2018), each
    network with its own optimizer. For each batch, the discriminator first learns which
    entries of the imputed series were seen (a hint reveals most of the mask; it is
    scored on the rest); then the imputer learns its own loss plus fooling the
    discriminator, whose weights it does not change. Under torchrun both arrive wrapped
    in DDP. Returns the imputer's mean loss."""
    optimizer, d_optimizer = optimizers
    raw_discriminator = getattr(discriminator, "module", discriminator)
    imputer.train()
    discriminator.train()
    total, count = 0.0, 0
    for batch in batches:
        (x, m, e, s, t, target, hidden), weight = distributed.shard(batch)
        out = imputer(x, m, e, s, t)
        completed = m * x + (1 - m) * out["imputed"]    # the seen entries, and the fills
        reveal = (torch.rand_like(m) < cfg.hint_rate).float()
        hint, judged = reveal * m + 0.5 * (1 - reveal), 1 - reveal
        # 1. the discriminator, on the imputed series held constant
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            discriminator(completed.detach(), hint), m, reduction="none")
        d_loss = (bce * judged).sum() / judged.sum().clamp(min=1)
        d_optimizer.zero_grad(set_to_none=True)
        (d_loss * weight).backward()
        d_optimizer.step()
        # 2. the imputer: its loss, and -log D on the judged entries it filled
        raw_discriminator.requires_grad_(False)
        logits = raw_discriminator(completed, hint)
        raw_discriminator.requires_grad_(True)
        fooled = judged * (1 - m)
        g_loss = (torch.nn.functional.softplus(-logits) * fooled).sum() / fooled.sum().clamp(
            min=1)
        loss = imputation_loss(cfg, out, target, hidden, m) + cfg.adversarial_weight * g_loss
        if not torch.isfinite(loss):
            raise UserError(f"training diverged: the loss became {loss.item()}; try a lower "
                            "--lr (last.pt still holds the epoch before)")
        optimizer.zero_grad(set_to_none=True)
        (loss * weight).backward()
        if cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(imputer.parameters(), cfg.clip_norm)
        optimizer.step()
        total, count = total + loss.item(), count + 1
    return total / max(count, 1)


def validate(cfg: Config, data: Data, imputer: Imputer) -> dict[str, float]:
    filled = impute_split(cfg, imputer, data, "val", [data.val_masks])[0]
    scores = pattern_scores(data.truth("val"), filled, data.val_masks)
    maes = {f"val_mae@{p}": scores[f"mae@{p}"] for p in PATTERNS}
    return {"val_mae": float(np.mean(list(maes.values()))), **maes}


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.seeds = 2, 2, 1

    # ---- data, split by time; baselines on exactly the masks the model is scored on
    data = prepare(*load(cfg.dataset, cfg.csv, cfg.columns, cfg.date_columns), cfg.window,
                   cfg.calendar, cfg.mask_seed, cfg.mask_draws,
                   DRY_TEST_ROWS if cfg.dry_run else MOST_TEST_ROWS)
    cfg.window = data.sizes.window  # recorded in config.json as chosen
    if cfg.cell == "auto":
        cfg.cell = "grui" if data.table.step.irregular else "brits"
    run = Run(cfg)  # after the data: a bad CSV leaves no run folder behind
    # --preflight ends here; a resume refuses the series edited since
    run.data_checked(values_sha256=hashlib.sha256(data.table.values.tobytes()).hexdigest())
    device = run.device
    fitted = fit_baselines(data)
    draws = baseline_draws(data, fitted)
    baselines = {m: draw_scores(data.truth("test"), d, data.test_masks)
                 for m, d in draws.items()}
    print(f"test baselines, standardised units, mean over {cfg.mask_draws} mask draws:")
    print(comparison_table(baselines, [f"mae@{p}" for p in PATTERNS]))
    best = {p: min(baselines, key=lambda m: baselines[m][f"mae@{p}"]) for p in PATTERNS}

    def step(model: Imputer, batch: tuple[torch.Tensor, ...], carried: None):
        """One batch's loss (train_epoch then does zero_grad, backward, clip and the
        optimizer's step). `model` may be DDP's wrapper: only its forward is called."""
        x, m, e, s, t, target, hidden = batch
        return imputation_loss(cfg, model(x, m, e, s, t), target, hidden, m), None

    # ---- train, one model per seed; each scored on the test draws once, at its best
    def fit(seed: int, cell: str, name: str = "") -> tuple[Imputer, History]:
        """One imputer with `cell`, trained in seed<N>/ (seed<N>/<name>/ for a rival)."""
        size, extra = data.z.shape[1], data.extra.shape[1]
        imputer = Imputer(size, cfg.hidden_size, extra, cfg.impl, cell).to(device)
        optimizer = torch.optim.Adam(imputer.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        discriminator = d_optimizer = None
        if cfg.adversarial:  # GAIN's discriminator, its own network and optimizer
            discriminator = Discriminator(size, cfg.discriminator_size, cfg.impl).to(device)
            d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr)
        checkpoint = run.checkpoint(seed, name, monitor="val_mae", model=imputer,
                                    optimizer=optimizer, scheduler=scheduler,
                                    discriminator=discriminator, d_optimizer=d_optimizer)
        trained = distributed.wrap(imputer)  # under torchrun, DDP averages the gradients
        for epoch in checkpoint.epochs(cfg.epochs):
            if cfg.adversarial:
                loss = gan_epoch(cfg, trained, distributed.wrap(discriminator),
                                 (optimizer, d_optimizer), batches(cfg, data, device))
            else:
                loss = train_epoch(trained, optimizer, batches(cfg, data, device), step,
                                   cfg.clip_norm)
            scheduler.step()
            checkpoint.save(epoch, {"train_loss": loss, **validate(cfg, data, imputer)})
        history = checkpoint.load_best()
        # how much of its correction it keeps, the rest going to linear or seasonal fill
        print(f"{name or 'model'} keeps of its correction, on validation: "
              + describe_kept(data.table.columns, *fit_shrink(cfg, data, imputer)))
        return imputer, history

    # ---- train, one model per seed; each scored on the test draws once, at its best
    def train_seed(seed: int) -> SeedResult:
        imputer, history = fit(seed, cfg.cell)
        result = evaluate(cfg, data, imputer, seed, history, fitted, best, draws)
        if cfg.cell == "grui" and cfg.no_decay:  # the decay's worth, in the same run
            rival = impute_split(cfg, fit(seed, "gru", "no_decay")[0], data, "test",
                                 data.test_masks)
            result.test["no_decay"] = rival_scores(data, rival, best, draws)
            result.test["model"] |= versus(data, result.outputs["filled"], rival, "no_decay")
        return result

    seeds = Seeds(run.task)
    for seed in run.seeds:
        seed_everything(seed)
        seeds.add(train_seed(seed))
    if not distributed.is_main():
        return {}  # under torchrun, process 0 alone reports
    return report(cfg, data, run, seeds, baselines, fitted, best, draws)


if __name__ == "__main__":
    run_main(main)
