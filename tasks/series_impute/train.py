"""series_impute: fill the gaps of a multivariate series with a bidirectional recurrent
imputer (after BRITS), beside mean, last-observation, linear and seasonal fills.

Data: seattle-weather.csv (fetched by name with its checksum), daily 2012-01-01 to
2015-12-31: precipitation (mm), temp_max, temp_min (deg C), wind (m/s). `--dataset
rainfall` imputes the four weather columns of the monthly Rainfall_data.csv, and any
daily or monthly CSV works: `--csv PATH --columns A B C --date-columns D`. Cells already
missing in the file are allowed: every method sees them as missing, and none is scored.

Split by time: the last 20% of rows is test, the 10% before it validation, the rest
training; each part is imputed on its own (no method reads another part's rows), and every
statistic comes from the training rows. Scores are on entries that were observed and are
hidden on purpose, so the truth is known. Three patterns, each scored separately, with the
same masks for every method (fixed by --mask-seed):

    points10, points50  each entry hidden with probability 0.1 / 0.5
    block               runs of 7-30 days (3-6 months for monthly rows), each in one
                        variable, until about 20% of each variable's entries are hidden

Training is self-supervised (as in BRITS and SAITS): every epoch draws fresh windows of
the training rows and fresh masks of all three patterns, and the loss is mostly on the
entries it hid. The metric is MAE (and RMSE) in units of each variable's training
standard deviation, averaged over the variables; per_variable.csv has them in the data's
own units. The model and its losses are described in model.py. `--adversarial` adds
GAIN's discriminator (Yoon et al. 2018): it guesses from the imputed series, and a hint
revealing most of the mask, which entries were seen, and the imputer is also trained to
fool it.

Baselines: `mean` (training mean per variable), `locf` (last observation carried forward,
then backward at the start), `linear` (interpolation in time), `seasonal` (training mean
of the day of the year, smoothed over +-15 days, or of the month), plus the local offset
(the interpolated difference from that mean) for the variables and patterns where the
offset is better on the validation masks; the run prints which.

    python -m tasks.series_impute.train                      # Seattle, daily, 1 seed
    python -m tasks.series_impute.train --adversarial
    python -m tasks.series_impute.train --dataset rainfall --calendar
    python -m tasks.series_impute.fill INPUT.csv --output FILLED.csv

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import plots
from core.config import MAX_SEED, RunConfig, arg, parse, require, run_main
from core.data import fetch
from core.files import atomic_write_text
from core.report import comparison_table
from core.run import Run, SeedResult
from core.train import fit, set_threads

from .model import (
    Discriminator,
    Imputer,
    Model,
    as_inputs,
    calendar,
    impute,
    save_model,
    year_position,
)
from .table import Table, read_table

# name: (file, columns, date columns)
DATASETS = {
    "seattle": ("seattle-weather.csv", ["precipitation", "temp_max", "temp_min", "wind"],
                ["date"]),
    "rainfall": ("Rainfall_data.csv", ["Specific_Humidity", "Relative_Humidity",
                                       "Temperature", "Precipitation"], ["Year", "Month"]),
}
PATTERNS = ("points10", "points50", "block")
POINT_SHARE = {"points10": 0.1, "points50": 0.5}
BLOCK_ROWS = {"daily": (7, 30), "monthly": (3, 6)}  # shortest and longest hidden run
BLOCK_SHARE = 0.2
TEST_SHARE, VAL_SHARE = 0.2, 0.1
SEASONAL_HALF_WIDTH = {"daily": 15, "monthly": 0}  # rows of the year averaged each side
BASELINES = ("mean", "locf", "linear", "seasonal")


@dataclass
class Config(RunConfig):
    dataset: str = arg("seattle", "dataset fetched by name (checksummed): daily Seattle "
                       "weather or monthly Rainfall_data.csv", choices=list(DATASETS))
    csv: str = arg("", "impute this CSV instead of --dataset: daily or monthly rows, oldest "
                   "first (needs --columns and --date-columns)")
    columns: list[str] = arg([], "columns to impute; none given: the dataset's four")
    date_columns: list[str] = arg([], "one column of dates, or year, month (and day) "
                                  "columns; none given: the dataset's")
    mask_seed: int = arg(12, "seed of the fixed validation and test masks, the same for "
                         "every method and every --seed", minimum=0, maximum=MAX_SEED)
    impl: str = arg("torch", "GRU cell of the imputer (and of the discriminator's layer): "
                    "torch.nn's or core's hand-written one (same weights)",
                    choices=["torch", "core"])
    hidden_size: int = arg(64, "hidden units of each direction's GRU cell", minimum=1)
    calendar: bool = arg(False, "feed each row's position in the year (sin, cos) to the "
                         "cells, beside the values and the mask: worth it on monthly data "
                         "(--dataset rainfall), where the season is most of the signal; "
                         "on the daily default it scored worse on validation")
    window: int = arg(64, "rows per training window, drawn from the training rows",
                      minimum=8)
    batch_size: int = arg(32, "windows per batch", minimum=1)
    batches_per_epoch: int = arg(16, "fresh batches (windows and masks) per epoch",
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
    adversarial: bool = arg(False, "also train GAIN's discriminator and add its "
                            "adversarial loss to the imputer's")
    adversarial_weight: float = arg(0.1, "weight of the adversarial loss (with "
                                    "--adversarial)", minimum=0)
    hint_rate: float = arg(0.9, "share of the mask the hint reveals to the discriminator "
                           "(GAIN); it is scored on the rest", minimum=0, maximum=0.99)
    discriminator_size: int = arg(16, "hidden units of the discriminator's bidirectional "
                                  "GRU", minimum=1)

    def check(self) -> None:
        super().check()
        require(not self.csv or (self.columns and self.date_columns),
                "--csv needs --columns (the series to impute) and --date-columns")


# ---- data

def load(cfg: Config) -> tuple[Table, str, list[str]]:
    """The table of the chosen dataset or --csv, its file name and its date columns."""
    if cfg.csv:
        path, columns, date_columns = Path(cfg.csv), cfg.columns, cfg.date_columns
    else:
        name, columns, date_columns = DATASETS[cfg.dataset]
        path = fetch(name)
        columns, date_columns = cfg.columns or columns, cfg.date_columns or date_columns
    return read_table(path, columns, date_columns), path.name, list(date_columns)


def split_rows(n: int) -> tuple[int, int]:
    """Row counts of training and validation; the test is the rest (the last 20%)."""
    n_test, n_val = round(TEST_SHARE * n), round(VAL_SHARE * n)
    return n - n_test - n_val, n_val


# ---- missing patterns: which observed entries are hidden on purpose

def hide_points(observed: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Each observed entry hidden with probability `share`."""
    return observed & (rng.random(observed.shape) < share)


def hide_blocks(observed: np.ndarray, shortest: int, longest: int,
                rng: np.random.Generator) -> np.ndarray:
    """Runs of `shortest`..`longest` rows, each in one variable, until about BLOCK_SHARE
    of every variable's observed entries are hidden (so each variable is scored). Runs
    never touch (a free row between two in one variable): each is one gap of its drawn
    length."""
    rows, variables = observed.shape
    longest = min(longest, rows)
    hidden = np.zeros(observed.shape, dtype=bool)
    for v in range(variables):
        goal = BLOCK_SHARE * observed[:, v].sum()
        for _ in range(100 * rows):  # bounded: a short series may have no room left
            if (hidden[:, v] & observed[:, v]).sum() >= goal:
                break
            length = int(rng.integers(shortest, longest + 1))
            start = int(rng.integers(0, rows - length + 1))
            if not hidden[max(start - 1, 0):start + length + 1, v].any():
                hidden[start:start + length, v] = True
    return hidden & observed


def hide(observed: np.ndarray, pattern: str, frequency: str,
         rng: np.random.Generator) -> np.ndarray:
    """observed (T, F) bool -> hidden (T, F) bool, a subset of it, drawn by `pattern`."""
    if pattern == "block":
        return hide_blocks(observed, *BLOCK_ROWS[frequency], rng)
    return hide_points(observed, POINT_SHARE[pattern], rng)


def fixed_masks(observed: np.ndarray, split: str, frequency: str,
                mask_seed: int) -> dict[str, np.ndarray]:
    """The validation or test masks: one stream per (seed, split, pattern), so each is
    reproducible on its own."""
    return {p: hide(observed, p, frequency,
                    np.random.default_rng([mask_seed, ("val", "test").index(split),
                                           PATTERNS.index(p)]))
            for p in PATTERNS}


# ---- baselines: each takes values (T, F), standardised, and seen (T, F); it reads values
# only where seen, and returns the series with every unseen entry filled.

def fill_mean(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The training mean, which is 0 in standardised units."""
    return np.where(seen, values, 0.0)


def fill_linear(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Linear interpolation in time between the nearest seen rows; flat beyond the first
    and last; the training mean for a variable never seen."""
    rows = np.arange(len(values))
    out = np.zeros(values.shape)
    for f in range(values.shape[1]):
        known = seen[:, f]
        if known.any():
            out[:, f] = np.interp(rows, rows[known], values[known, f])
    return np.where(seen, values, out)


def fill_locf(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The last seen value carried forward; before the first, the first carried back."""
    out = np.zeros(values.shape)
    for f in range(values.shape[1]):
        known = np.nonzero(seen[:, f])[0]
        if len(known):
            # index of the last seen row at or before each row (the first, before it)
            last = np.searchsorted(known, np.arange(len(values)), side="right") - 1
            out[:, f] = values[known[np.maximum(last, 0)], f]
    return np.where(seen, values, out)


def seasonal_profile(train: np.ndarray, positions: np.ndarray, frequency: str) -> np.ndarray:
    """train (N, F) standardised (NaN where missing), positions (N,) in the year ->
    (P, F): each day's (month's) training mean, over +-half-width rows of the year."""
    period = 366 if frequency == "daily" else 12
    width = SEASONAL_HALF_WIDTH[frequency]
    profile = np.zeros((period, train.shape[1]))
    for p in range(period):
        distance = np.abs(positions - p)
        near = np.minimum(distance, period - distance) <= width
        if near.any() and np.isfinite(train[near]).any(axis=0).all():
            profile[p] = np.nanmean(train[near], axis=0)
    return profile


def fill_seasonal(values: np.ndarray, seen: np.ndarray, season: np.ndarray,
                  offset: np.ndarray) -> np.ndarray:
    """season (T, F): the profile at each row. With offset[f], variable f also gets the
    local difference from its season, interpolated between the nearest seen rows."""
    anomaly = fill_linear(np.where(seen, values - season, 0.0), seen)
    return np.where(seen, values, season + np.where(offset, anomaly, 0.0))


# ---- scores

def errors(truth: np.ndarray, filled: np.ndarray, hidden: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """MAE and RMSE (F,) of each variable over its hidden entries (NaN if it has none)."""
    mae, rmse = np.full(truth.shape[1], np.nan), np.full(truth.shape[1], np.nan)
    for f in range(truth.shape[1]):
        d = (filled - truth)[hidden[:, f], f]
        if len(d):
            mae[f], rmse[f] = np.abs(d).mean(), np.sqrt((d ** 2).mean())
    return mae, rmse


def pattern_scores(truth: np.ndarray, filled: dict[str, np.ndarray],
                   hidden: dict[str, np.ndarray]) -> dict[str, float]:
    """{"mae@points10": ..., "rmse@block": ...}: standardised errors, mean over variables."""
    scores = {}
    for p in PATTERNS:
        mae, rmse = errors(truth, filled[p], hidden[p])
        scores[f"mae@{p}"], scores[f"rmse@{p}"] = float(np.nanmean(mae)), float(np.nanmean(rmse))
    return scores


def per_variable_csv(fills: dict[str, dict[str, np.ndarray]], truth: np.ndarray,
                     masks: dict[str, np.ndarray], names: list[str], std: np.ndarray,
                     notes: dict[str, np.ndarray]) -> str:
    """per_variable.csv: each method's MAE and RMSE per pattern and variable in the data's
    own units; `notes` (pattern: (F,)) says which seasonal variant each variable used."""
    lines = ["method,pattern,variable,mae,rmse,hidden_entries,seasonal_variant"]
    for method, by_pattern in fills.items():
        for p in PATTERNS:
            mae, rmse = errors(truth, by_pattern[p], masks[p])
            for f, name in enumerate(names):
                note = notes[p][f] if method == "seasonal" else ""
                lines.append(f"{method},{p},{name},{mae[f] * std[f]:.6g},"
                             f"{rmse[f] * std[f]:.6g},{int(masks[p][:, f].sum())},{note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.seeds = 2, 2, 1

    # ---- data: split by time; every statistic from the training rows only
    table, source, date_columns = load(cfg)
    values, frequency, names = table.values, table.frequency, table.columns
    n, n_features = values.shape
    n_train, n_val = split_rows(n)
    shortest, longest = BLOCK_ROWS[frequency]
    unit = "days" if frequency == "daily" else "months"
    require(n_train >= cfg.window, f"{source} has {n} rows, so {n_train} training rows; "
            f"--window {cfg.window} needs at least that many: lower --window")
    require(cfg.window > longest, f"--window {cfg.window} must exceed the longest hidden "
            f"block, {longest} {unit}")
    require(n_val > longest, f"{source} has {n} rows, so {n_val} validation rows; the "
            f"block pattern needs more than {longest} {unit}")
    train = values[:n_train]
    empty = [name for name, seen in zip(names, np.isfinite(train).any(axis=0), strict=True)
             if not seen]
    require(not empty, f"{source}: column(s) {', '.join(empty)} have no value in the "
            f"training rows (the first {n_train}); nothing to learn them from")
    mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column would divide by zero
    z = (values - mean) / std
    low, high = (np.nanmin(train, axis=0) - mean) / std, (np.nanmax(train, axis=0) - mean) / std
    observed = np.isfinite(values)
    extra = calendar(table.dates, frequency) if cfg.calendar else np.zeros((n, 0))
    position = year_position(table.dates, frequency)
    parts = {"val": np.arange(n_train, n_train + n_val), "test": np.arange(n_train + n_val, n)}
    masks = {s: fixed_masks(observed[rows], s, frequency, cfg.mask_seed)
             for s, rows in parts.items()}
    print(f"{source}: {n} {frequency} rows of {', '.join(names)}; train {n_train}, "
          f"validation {n_val}, test {len(parts['test'])}; "
          f"{int((~observed).sum())} cells missing in the file")

    # ---- baselines on exactly the masks the model is scored on
    profile = seasonal_profile(z[:n_train], position[:n_train], frequency)

    def baseline_fills(split: str, pattern: str) -> dict[str, np.ndarray]:
        rows = parts[split]
        seen = observed[rows] & ~masks[split][pattern]
        season = profile[position[rows]]
        return {"mean": fill_mean(z[rows], seen), "locf": fill_locf(z[rows], seen),
                "linear": fill_linear(z[rows], seen),
                "seasonal": fill_seasonal(z[rows], seen, season, np.zeros(n_features, bool)),
                "seasonal+offset": fill_seasonal(z[rows], seen, season,
                                                 np.ones(n_features, bool))}

    # the seasonal baseline adds the offset for a variable and pattern where it is
    # better on the validation masks
    offset = {}
    for p in PATTERNS:
        fills = baseline_fills("val", p)
        plain = errors(z[parts["val"]], fills["seasonal"], masks["val"][p])[0]
        shifted = errors(z[parts["val"]], fills["seasonal+offset"], masks["val"][p])[0]
        offset[p] = shifted < plain
        print(f"seasonal baseline, {p}: + offset for "
              f"{', '.join(np.array(names)[offset[p]]) or 'no variable'}")

    def baselines_on(split: str) -> dict[str, dict[str, np.ndarray]]:
        """{method: {pattern: filled (T, F)}} for the baselines."""
        out = {m: {} for m in BASELINES}
        for p in PATTERNS:
            fills = baseline_fills(split, p)
            fills["seasonal"] = np.where(offset[p], fills["seasonal+offset"], fills["seasonal"])
            for m in BASELINES:
                out[m][p] = fills[m]
        return out

    truth = {s: z[rows] for s, rows in parts.items()}
    filled_baselines = {s: baselines_on(s) for s in parts}
    for split in parts:
        scored = {m: pattern_scores(truth[split], filled_baselines[split][m], masks[split])
                  for m in BASELINES}
        print(f"{'validation' if split == 'val' else 'test'} baselines, standardised units:")
        print(comparison_table(scored, [f"mae@{p}" for p in PATTERNS]))
    baselines = {m: pattern_scores(truth["test"], filled_baselines["test"][m], masks["test"])
                 for m in BASELINES}

    run = Run(cfg)  # after the data: a bad CSV leaves no run folder behind
    device = run.device

    # ---- model inputs for validation and test: the three patterns as a batch of three
    def eval_batch(split: str) -> tuple[np.ndarray, ...]:
        """values, seen (3, T, F) and calendar (3, T, E), for impute()."""
        rows = parts[split]
        seen = np.stack([observed[rows] & ~masks[split][p] for p in PATTERNS])
        return np.stack([z[rows]] * 3), seen, np.stack([extra[rows]] * 3)

    val_batch, test_batch = eval_batch("val"), eval_batch("test")
    observed_train, z_train = observed[:n_train], np.nan_to_num(z[:n_train])

    def batches():
        """Fresh windows of the training rows, each with a fresh mask of a random pattern;
        the generator is seeded from torch's, which checkpoints save, so --resume redraws
        the same batches."""
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
        for _ in range(cfg.batches_per_epoch):
            starts = rng.integers(0, n_train - cfg.window + 1, cfg.batch_size)
            index = starts[:, None] + np.arange(cfg.window)            # (B, W)
            file_seen = observed_train[index]                         # (B, W, F)
            hidden = np.stack([hide(o, PATTERNS[rng.integers(len(PATTERNS))], frequency, rng)
                               for o in file_seen])
            x, m, e = as_inputs(z_train[index], file_seen & ~hidden, extra[index], device)
            target = torch.tensor(z_train[index], dtype=torch.float32, device=device)
            yield x, m, e, target, torch.tensor(hidden, dtype=torch.float32, device=device)

    def masked_mae(estimate: torch.Tensor, target: torch.Tensor,
                   where: torch.Tensor) -> torch.Tensor:
        return ((estimate - target).abs() * where).sum() / where.sum().clamp(min=1)

    def loss_fn(model: Model, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, m, e, target, hidden = batch
        out = model.imputer(x, m, e)
        # the imputation itself, on the entries hidden on purpose
        loss = masked_mae(out["imputed"], target, hidden)
        # every estimate of each direction (history, features, mixed): on the hidden
        # entries, and, as in BRITS, on the seen ones (each estimated before it is read)
        estimates = [*out["forwards"], *out["backwards"]]
        loss = loss + sum(masked_mae(est, target, hidden) + cfg.seen_loss
                          * masked_mae(est, target, m) for est in estimates) / len(estimates)
        loss = loss + cfg.consistency * (out["forwards"][2] - out["backwards"][2]).abs().mean()
        if model.discriminator is None:
            return loss
        # GAIN: the hint reveals the mask where `reveal`, 0.5 elsewhere; the discriminator
        # is scored on the entries left open, learning which were seen ...
        discriminator = model.discriminator
        imputed = m * x + (1 - m) * out["imputed"]
        reveal = (torch.rand_like(m) < cfg.hint_rate).float()
        hint = reveal * m + 0.5 * (1 - reveal)
        judged = 1 - reveal
        bce = nn.functional.binary_cross_entropy_with_logits(
            discriminator(imputed.detach(), hint), m, reduction="none")
        d_loss = (bce * judged).sum() / judged.sum().clamp(min=1)
        # ... and the imputer learns to make its entries look seen, -log D, through the
        # discriminator's weights held constant (they learn from d_loss only)
        frozen = {k: v.detach() for k, v in discriminator.named_parameters()}
        logits = torch.func.functional_call(discriminator, frozen, (imputed, hint))
        fooled = judged * (1 - m)
        g_loss = (nn.functional.softplus(-logits) * fooled).sum() / fooled.sum().clamp(min=1)
        return loss + cfg.adversarial_weight * g_loss + d_loss

    def validate(model: Model) -> dict[str, float]:
        filled = impute(model.imputer, *val_batch, low, high)
        scores = pattern_scores(truth["val"], dict(zip(PATTERNS, filled, strict=True)),
                                masks["val"])
        maes = {f"val_mae@{p}": scores[f"mae@{p}"] for p in PATTERNS}
        return {"val_mae": float(np.mean(list(maes.values()))), **maes}

    # ---- train, one model per seed; each scored on the test masks once, at its best
    def train_seed(seed: int, seed_dir: Path, resume: bool) -> SeedResult:
        imputer = Imputer(n_features, cfg.hidden_size, extra.shape[1], cfg.impl)
        discriminator = (Discriminator(n_features, cfg.discriminator_size, cfg.impl)
                         if cfg.adversarial else None)
        model = Model(imputer, discriminator).to(device)
        set_threads(cfg.threads, model)
        if seed == cfg.seed:
            run.describe(model, f"bidirectional GRU imputer ({cfg.impl})"
                         + (" + discriminator" if cfg.adversarial else ""))
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        history = fit(model, optimizer, batches, loss_fn, validate, epochs=cfg.epochs,
                      run_dir=seed_dir, config=asdict(cfg), monitor="val_mae",
                      clip_norm=cfg.clip_norm, scheduler=scheduler, resume=resume,
                      eval_only=cfg.eval_only, desc=f"{run.task} seed {seed}")
        filled = dict(zip(PATTERNS, impute(imputer, *test_batch, low, high), strict=True))
        state = {k: v.detach().cpu().clone() for k, v in imputer.state_dict().items()}
        return SeedResult({"model": pattern_scores(truth["test"], filled, masks["test"])},
                          history, {"filled": filled, "state": state})

    seeds = run.each_seed(train_seed)

    # ---- report: the model (median over seeds) beside every baseline
    results = {**seeds.test(), **baselines}
    keys = [f"{kind}@{p}" for p in PATTERNS for kind in ("mae", "rmse")]
    print(f"\ntest, standardised units (error / training std, mean over variables), median "
          f"over {len(run.seeds)} seed(s); training {seeds.seconds:.1f} s in all")
    print(comparison_table(results, keys))
    for p in PATTERNS:
        best = min(BASELINES, key=lambda m: baselines[m][f"mae@{p}"])
        ratio = results["model"][f"mae@{p}"] / baselines[best][f"mae@{p}"]
        print(f"{p}: model MAE / best baseline ({best}) = {ratio:.3f}")

    # the seed best on validation is the one fill.py uses
    chosen = min(range(len(run.seeds)), key=lambda i: seeds.results[i].history.best_value)
    imputer = Imputer(n_features, cfg.hidden_size, extra.shape[1], cfg.impl)
    imputer.load_state_dict(seeds.results[chosen].outputs["state"])
    save_model(run.dir / "model.pt", imputer, columns=names,
               date_columns=date_columns,
               frequency=frequency, calendar=cfg.calendar, mean=mean.tolist(),
               std=std.tolist(), low=(low * std + mean).tolist(),
               high=(high * std + mean).tolist())

    run.finish(results, seeds.seconds)
    shown = seeds.median("mae@block")
    fills = {"model": shown.outputs["filled"], **filled_baselines["test"]}
    notes = {p: np.where(offset[p], "+offset", "plain") for p in PATTERNS}
    atomic_write_text(run.dir / "per_variable.csv",
                      per_variable_csv(fills, truth["test"], masks["test"], names, std, notes))
    rows = parts["test"]
    for f, name in enumerate(names):
        hidden = masks["test"]["block"][:, f]
        runs = np.nonzero(hidden)[0]
        start = max(int(runs[0]) - 20, 0) if len(runs) else 0  # from just before a gap
        shown_rows = rows[start:start + (180 if frequency == "daily" else len(rows))]
        in_units = {m: np.where(hidden, fills[m]["block"][:, f] * std[f] + mean[f], np.nan)
                    for m in ("linear", "model")}
        plots.lines({"truth": values[shown_rows, f],
                     **{m: v[shown_rows - rows[0]] for m, v in in_units.items()}},
                    run.dir / f"test_block_{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png",
                    f"{name}: test rows, block pattern (lines where entries were hidden)",
                    xlabel="date", ylabel=name, x=table.dates[shown_rows])
    plots.training_curve(shown.history.epochs, run.dir / "training_curve.png",
                         keys=["val_mae"], unit="standardised MAE")
    print(f"wrote {run.dir}/metrics.json, per_variable.csv, model.pt, seed*/best.pt and "
          f"plots; fill a CSV: python -m {__package__}.fill INPUT.csv --output OUT.csv "
          f"--run-dir {run.dir}")
    return results


if __name__ == "__main__":
    run_main(main)
