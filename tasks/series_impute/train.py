"""series_impute: fill the gaps of a multivariate series with a bidirectional recurrent
imputer (after BRITS), beside mean, median, last-observation, linear and seasonal fills.

Data: seattle-weather.csv (fetched by name with its checksum), daily 2012-01-01 to
2015-12-31: precipitation (mm), temp_max, temp_min (deg C), wind (m/s). `--dataset
rainfall` imputes the four weather columns of the monthly Rainfall_data.csv, and any CSV
on a regular step works (10 minutes, hours, days, weeks, months, years; steps.py finds the
step from the dates): `--csv PATH --columns A B C --date-columns D`. Cells already missing
in the file, and rows it leaves out, are allowed: every method sees them as missing, and
none is scored.

Split by time: the last 20% of rows is test, the 10% before it validation, the rest
training; each part is imputed on its own (no method reads another part's rows), and every
statistic comes from the training rows. Scores are on entries that were observed and are
hidden on purpose, so the truth is known. Three patterns, each scored separately, with the
same masks for every method:

    points10, points50  each entry hidden with probability 0.1 / 0.5
    block               runs of 7-30 rows (3-6 for monthly or coarser rows), each in one
                        variable, until about 20% of each variable's entries are hidden

A test part holds only a few dozen hidden entries per variable under points10, so one
draw of the masks is a noisy score: the test is scored under --mask-draws draws (mask
seeds --mask-seed, +1, ...) of the same test rows, every method on the same draws, and
metrics.json has each score's mean over the draws, its standard deviation (_std) and the
95% interval of the mean (_ci95_low, _ci95_high); the model's also has its MAE over the
best baseline's, paired draw by draw (mae@P_ratio, with its interval). The intervals are
about the masks only: the test rows are the same in every draw. Validation (which picks
the best epoch and the seasonal variant) uses the draw of --mask-seed.

Training is self-supervised (as in BRITS and SAITS): every epoch draws fresh windows of
the training rows and fresh masks of all three patterns, and the loss is mostly on the
entries it hid. The metric is MAE (and RMSE) in units of each variable's training
standard deviation, averaged over the variables; per_variable.csv has them in the data's
own units. The model and its losses are described in model.py. `--adversarial` adds
GAIN's discriminator (Yoon et al. 2018): it guesses from the imputed series, and a hint
revealing most of the mask, which entries were seen, and the imputer is also trained to
fool it.

Baselines, none of which draws random numbers: `mean` and `median` (of the training
rows, per variable; the median is the better constant for MAE, and precipitation has many
dry days), `locf` (last observation carried forward, then backward at the start),
`linear` (interpolation in time), `seasonal` (training mean of the row's place in its
cycle: the day of the year smoothed over +-15 days, the week, the month, or the hour of
the day for rows under a day apart; none for rows a year or more apart), plus the local
offset (the interpolated difference from that mean) for the variables and patterns where
the offset is better on the validation masks; the run prints which.

    python -m tasks.series_impute.train                      # Seattle, daily, 1 seed
    python -m tasks.series_impute.train --adversarial
    python -m tasks.series_impute.train --dataset rainfall --calendar
    python -m tasks.series_impute.fill tasks/series_impute/gaps.csv --output filled.csv

The default run's numbers, and the command that made them, are in the README's table.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from functools import partial
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

from .model import Discriminator, Imputer, Model, as_inputs, impute, save_model
from .steps import Step, calendar, cycle_position
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
BLOCK_ROWS = {"fine": (7, 30), "coarse": (3, 6)}  # shortest and longest hidden run
BLOCK_SHARE = 0.2
TEST_SHARE, VAL_SHARE = 0.2, 0.1
SEASONAL_WIDTH = 15 / 366  # share of the cycle averaged on each side (+-15 days a year)
BASELINES = ("mean", "median", "locf", "linear", "seasonal")


@dataclass
class Config(RunConfig):
    dataset: str = arg("seattle", "dataset fetched by name (checksummed): daily Seattle "
                       "weather or monthly Rainfall_data.csv", choices=list(DATASETS))
    csv: str = arg("", "impute this CSV instead of --dataset: rows on one regular step, "
                   "oldest first (needs --columns and --date-columns)")
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
    hidden_size: int = arg(64, "hidden units of each direction's GRU cell", minimum=1)
    calendar: bool = arg(False, "feed each row's place in its cycle (sin, cos of the day "
                         "or the year) to the cells, beside the values and the mask: worth "
                         "it on monthly data (--dataset rainfall), where the season is most "
                         "of the signal; on the daily default it scored worse on validation")
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


def block_rows(step: Step) -> tuple[int, int]:
    """The shortest and longest hidden block, in rows."""
    return BLOCK_ROWS["coarse" if step.coarse else "fine"]


def check_sizes(cfg: Config, table: Table, source: str) -> tuple[int, int]:
    """Training and validation row counts, once the series is long enough for the window
    and the blocks, and every column has a training value; else a UserError."""
    n = len(table.values)
    n_train, n_val = split_rows(n)
    longest = block_rows(table.step)[1]
    require(n_train >= cfg.window, f"{source} has {n} rows, so {n_train} training rows; "
            f"--window {cfg.window} needs at least that many: lower --window")
    require(cfg.window > longest, f"--window {cfg.window} must exceed the longest hidden "
            f"block, {longest} rows")
    require(n_val > longest, f"{source} has {n} rows, so {n_val} validation rows; the "
            f"block pattern needs more than {longest}")
    require(not cfg.calendar or table.step.cycle is not None,
            f"--calendar: {source}'s rows are {table.step.label} apart, so they have no "
            "place in a day or a year to feed; drop --calendar")
    empty = [name for name, seen in zip(table.columns,
                                        np.isfinite(table.values[:n_train]).any(axis=0),
                                        strict=True) if not seen]
    require(not empty, f"{source}: column(s) {', '.join(empty)} have no value in the "
            f"training rows (the first {n_train}); nothing to learn them from")
    return n_train, n_val


@dataclass
class Data:
    """The series standardised with training statistics, its parts and their masks. Every
    array is (N, F) or (F,) over the whole grid unless said."""

    table: Table
    source: str              # the file's name
    date_columns: list[str]
    n_train: int
    z: np.ndarray            # standardised, NaN where missing in the file
    observed: np.ndarray     # bool, seen in the file
    mean: np.ndarray         # (F,) in the data's units
    std: np.ndarray
    low: np.ndarray          # (F,) the training range, standardised
    high: np.ndarray
    extra: np.ndarray        # (N, E) calendar features, E = 0 or 2
    parts: dict[str, np.ndarray]              # "val", "test": their rows
    val_masks: dict[str, np.ndarray]          # pattern: hidden (T_val, F)
    test_masks: list[dict[str, np.ndarray]]   # one {pattern: hidden (T_test, F)} per draw

    def truth(self, split: str) -> np.ndarray:
        return self.z[self.parts[split]]


def prepare(cfg: Config) -> Data:
    """Read, check and split the series; scale it by the training rows; draw the masks."""
    table, source, date_columns = load(cfg)
    n_train, n_val = check_sizes(cfg, table, source)
    values, n = table.values, len(table.values)
    train = values[:n_train]
    mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column would divide by zero
    observed = np.isfinite(values)
    parts = {"val": np.arange(n_train, n_train + n_val), "test": np.arange(n_train + n_val, n)}
    test_seen = observed[parts["test"]]
    data = Data(
        table, source, date_columns, n_train, (values - mean) / std, observed, mean, std,
        (np.nanmin(train, axis=0) - mean) / std, (np.nanmax(train, axis=0) - mean) / std,
        calendar(table.dates, table.step) if cfg.calendar else np.zeros((n, 0)), parts,
        fixed_masks(observed[parts["val"]], "val", table.step, cfg.mask_seed),
        [fixed_masks(test_seen, "test", table.step, cfg.mask_seed + d)
         for d in range(cfg.mask_draws)])
    left_out = int((table.file_rows < 0).sum())
    print(f"{source}: {n} rows {table.step.label} apart ({left_out} left out of the file) "
          f"of {', '.join(table.columns)}; train {n_train}, validation {n_val}, test "
          f"{len(parts['test'])}; {int((~observed).sum())} cells missing; test scored "
          f"under {cfg.mask_draws} mask draws")
    return data


# ---- missing patterns: which observed entries are hidden on purpose

def hide_points(observed: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Each observed entry hidden with probability `share`; in a short part where that
    hides none of a variable, one of its entries, so every variable is scored."""
    hidden = observed & (rng.random(observed.shape) < share)
    for v in np.nonzero(observed.any(axis=0) & ~hidden.any(axis=0))[0]:
        hidden[rng.choice(np.nonzero(observed[:, v])[0]), v] = True
    return hidden


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


def hide(observed: np.ndarray, pattern: str, step: Step,
         rng: np.random.Generator) -> np.ndarray:
    """observed (T, F) bool -> hidden (T, F) bool, a subset of it, drawn by `pattern`."""
    if pattern == "block":
        return hide_blocks(observed, *block_rows(step), rng)
    return hide_points(observed, POINT_SHARE[pattern], rng)


def fixed_masks(observed: np.ndarray, split: str, step: Step,
                mask_seed: int) -> dict[str, np.ndarray]:
    """The validation masks, or one draw of the test masks: one stream per (seed, split,
    pattern), so each is reproducible on its own."""
    return {p: hide(observed, p, step,
                    np.random.default_rng([mask_seed, ("val", "test").index(split),
                                           PATTERNS.index(p)]))
            for p in PATTERNS}


# ---- baselines: each takes values (T, F), standardised, and seen (T, F); it reads values
# only where seen, and returns the series with every unseen entry filled.

def fill_constant(values: np.ndarray, seen: np.ndarray, level: np.ndarray) -> np.ndarray:
    """One value per variable, `level` (F,): the training mean (0 in standardised units)
    or median."""
    return np.where(seen, values, level)


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


def seasonal_profile(train: np.ndarray, positions: np.ndarray, period: int) -> np.ndarray:
    """train (N, F) standardised (NaN where missing), positions (N,) in the cycle ->
    (period, F): each place's training mean, over +-SEASONAL_WIDTH of the cycle."""
    width = round(SEASONAL_WIDTH * period)
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


@dataclass
class Baselines:
    """What the baselines learn from the training rows: the median and the seasonal
    profile at every row (None where the rows have no cycle), and per pattern the
    variables that get the seasonal offset (set on validation)."""

    median: np.ndarray                    # (F,) standardised
    season: np.ndarray | None             # (N, F)
    offset: dict[str, np.ndarray]         # pattern: (F,) bool

    @property
    def methods(self) -> tuple[str, ...]:
        return BASELINES if self.season is not None else BASELINES[:-1]

    def fill(self, data: Data, split: str, hidden: np.ndarray, pattern: str,
             offset: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{method: filled (T, F)} on `split` with `hidden` hidden; `offset` overrides the
        chosen seasonal variant."""
        rows = data.parts[split]
        values, seen = data.z[rows], data.observed[rows] & ~hidden
        fills = {"mean": fill_constant(values, seen, np.zeros(len(self.median))),
                 "median": fill_constant(values, seen, self.median),
                 "locf": fill_locf(values, seen), "linear": fill_linear(values, seen)}
        if self.season is not None:
            chosen = self.offset[pattern] if offset is None else offset
            fills["seasonal"] = fill_seasonal(values, seen, self.season[rows], chosen)
        return fills


def fit_baselines(data: Data) -> Baselines:
    """The median and the seasonal profile from the training rows; then, for each
    pattern, the offset for the variables where it is better on the validation masks."""
    train = data.z[:data.n_train]
    step, n_features = data.table.step, data.z.shape[1]
    season = None
    if step.cycle is None:
        print(f"seasonal baseline: none, rows {step.label} apart have no cycle (a day or a "
              "year) to average over")
    else:
        positions, period = cycle_position(data.table.dates, step)
        season = seasonal_profile(train, positions[:data.n_train], period)[positions]
    baselines = Baselines(np.nanmedian(train, axis=0), season, {})
    for p in PATTERNS:
        baselines.offset[p] = np.zeros(n_features, bool)
        if season is None:
            continue
        hidden, truth = data.val_masks[p], data.truth("val")
        plain = errors(truth, baselines.fill(data, "val", hidden, p)["seasonal"], hidden)[0]
        shifted = errors(truth, baselines.fill(data, "val", hidden, p,
                                               np.ones(n_features, bool))["seasonal"], hidden)[0]
        baselines.offset[p] = shifted < plain
        chosen = np.array(data.table.columns)[baselines.offset[p]]
        print(f"seasonal baseline, {p}: + offset for {', '.join(chosen) or 'no variable'}")
    return baselines


def baseline_draws(data: Data, baselines: Baselines) -> dict[str, list[dict[str, np.ndarray]]]:
    """{method: [{pattern: filled test rows (T, F)} per test draw]}."""
    out = {m: [] for m in baselines.methods}
    for masks in data.test_masks:
        by_pattern = {p: baselines.fill(data, "test", masks[p], p) for p in PATTERNS}
        for m in baselines.methods:
            out[m].append({p: by_pattern[p][m] for p in PATTERNS})
    return out


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


def t_quantile_975(df: int) -> float:
    """Student's t at 0.975 (the half-width of a 95% interval, in standard errors), by the
    Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5): within 0.01 of the tables
    from 4 degrees of freedom, 2.262 at 9."""
    z = statistics.NormalDist().inv_cdf(0.975)
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def spread(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, standard deviation and the 95% interval (low, high) of the mean of draws."""
    mean, std = statistics.fmean(values), statistics.stdev(values)
    half = t_quantile_975(len(values) - 1) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


def draw_scores(truth: np.ndarray, draws: list[dict[str, np.ndarray]],
                masks: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """One method's fills under every test draw -> {metric: mean over the draws,
    metric_std, metric_ci95_low, metric_ci95_high}."""
    per_draw = [pattern_scores(truth, f, m) for f, m in zip(draws, masks, strict=True)]
    out = {}
    for key in per_draw[0]:
        mean, std, low, high = spread([d[key] for d in per_draw])
        out |= {key: mean, f"{key}_std": std, f"{key}_ci95_low": low,
                f"{key}_ci95_high": high}
    return out


def paired_ratios(model: list[dict[str, np.ndarray]], best: dict[str, str],
                  draws: dict[str, list[dict[str, np.ndarray]]], data: Data) -> dict[str, float]:
    """The model's MAE over the best baseline's (`best`: pattern -> method), draw by draw
    on the same masks -> {"mae@p_ratio": mean, _ratio_ci95_low, _ratio_ci95_high}.
    Pairing removes what the draws share (a hard draw is hard for both), so this interval
    is narrower than the two methods' own."""
    truth, out = data.truth("test"), {}
    for p in PATTERNS:
        ratios = [float(np.nanmean(errors(truth, m[p], masks[p])[0])
                        / np.nanmean(errors(truth, b[p], masks[p])[0]))
                  for m, b, masks in zip(model, draws[best[p]], data.test_masks, strict=True)]
        mean, _, low, high = spread(ratios)
        out |= {f"mae@{p}_ratio": mean, f"mae@{p}_ratio_ci95_low": low,
                f"mae@{p}_ratio_ci95_high": high}
    return out


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
        hidden = np.stack([hide(o, PATTERNS[rng.integers(len(PATTERNS))], data.table.step,
                                rng) for o in file_seen])
        x, m, e = as_inputs(z[index], file_seen & ~hidden, data.extra[index], device)
        target = torch.tensor(z[index], dtype=torch.float32, device=device)
        yield x, m, e, target, torch.tensor(hidden, dtype=torch.float32, device=device)


def masked_mae(estimate: torch.Tensor, target: torch.Tensor,
               where: torch.Tensor) -> torch.Tensor:
    return ((estimate - target).abs() * where).sum() / where.sum().clamp(min=1)


def adversarial_loss(cfg: Config, discriminator: Discriminator, x: torch.Tensor,
                     m: torch.Tensor, imputed: torch.Tensor) -> torch.Tensor:
    """GAIN: the hint reveals the mask where `reveal`, 0.5 elsewhere; the discriminator
    is scored on the entries left open, learning which were seen, and the imputer learns
    to make its entries look seen, -log D, through the discriminator's weights held
    constant (they learn from d_loss only)."""
    imputed = m * x + (1 - m) * imputed
    reveal = (torch.rand_like(m) < cfg.hint_rate).float()
    hint = reveal * m + 0.5 * (1 - reveal)
    judged = 1 - reveal
    bce = nn.functional.binary_cross_entropy_with_logits(
        discriminator(imputed.detach(), hint), m, reduction="none")
    d_loss = (bce * judged).sum() / judged.sum().clamp(min=1)
    frozen = {k: v.detach() for k, v in discriminator.named_parameters()}
    logits = torch.func.functional_call(discriminator, frozen, (imputed, hint))
    fooled = judged * (1 - m)
    g_loss = (nn.functional.softplus(-logits) * fooled).sum() / fooled.sum().clamp(min=1)
    return cfg.adversarial_weight * g_loss + d_loss


def step(cfg: Config, model: Model, batch: tuple[torch.Tensor, ...],
         carried: None) -> tuple[torch.Tensor, None]:
    """One training step's loss (the shared loop then does zero_grad, backward, clipping
    and the optimizer's step); nothing is carried from one batch to the next."""
    x, m, e, target, hidden = batch
    out = model.imputer(x, m, e)
    # the imputation itself, on the entries hidden on purpose
    loss = masked_mae(out["imputed"], target, hidden)
    # every estimate of each direction (history, features, mixed): on the hidden entries,
    # and, as in BRITS, on the seen ones (each estimated before it is read)
    estimates = [*out["forwards"], *out["backwards"]]
    loss = loss + sum(masked_mae(est, target, hidden) + cfg.seen_loss
                      * masked_mae(est, target, m) for est in estimates) / len(estimates)
    loss = loss + cfg.consistency * (out["forwards"][2] - out["backwards"][2]).abs().mean()
    if model.discriminator is not None:
        loss = loss + adversarial_loss(cfg, model.discriminator, x, m, out["imputed"])
    return loss, None


def impute_split(imputer: Imputer, data: Data, split: str,
                 masks: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The model's fills of `split` under each {pattern: hidden} of `masks`, all of them
    one batch of len(masks) x 3 sequences."""
    rows = data.parts[split]
    seen = np.stack([data.observed[rows] & ~m[p] for m in masks for p in PATTERNS])
    filled = impute(imputer, np.stack([data.z[rows]] * len(seen)), seen,
                    np.stack([data.extra[rows]] * len(seen)), data.low, data.high)
    return [dict(zip(PATTERNS, filled[3 * i:3 * i + 3], strict=True))
            for i in range(len(masks))]


def validate(data: Data, model: Model) -> dict[str, float]:
    filled = impute_split(model.imputer, data, "val", [data.val_masks])[0]
    scores = pattern_scores(data.truth("val"), filled, data.val_masks)
    maes = {f"val_mae@{p}": scores[f"mae@{p}"] for p in PATTERNS}
    return {"val_mae": float(np.mean(list(maes.values()))), **maes}


def build_model(cfg: Config, data: Data) -> Model:
    imputer = Imputer(data.z.shape[1], cfg.hidden_size, data.extra.shape[1], cfg.impl)
    discriminator = (Discriminator(data.z.shape[1], cfg.discriminator_size, cfg.impl)
                     if cfg.adversarial else None)
    return Model(imputer, discriminator)


# ---- report

def print_verdicts(results: dict[str, dict[str, float]], best: dict[str, str]) -> None:
    """Per pattern: the model's interval beside the best baseline's, and their paired
    ratio; "beats" only when the whole interval of the ratio is below 1."""
    for p in PATTERNS:
        key, model = f"mae@{p}", results["model"]
        low, high = model[f"{key}_ratio_ci95_low"], model[f"{key}_ratio_ci95_high"]
        verdict = "beats it" if high < 1 else "loses to it" if low > 1 else "within the noise"
        shown = {m: f"{results[m][key]:.3f} [{results[m][key + '_ci95_low']:.3f}, "
                    f"{results[m][key + '_ci95_high']:.3f}]" for m in ("model", best[p])}
        print(f"{p}: model {shown['model']} vs {best[p]} {shown[best[p]]} (95% intervals); "
              f"model / {best[p]} = {model[key + '_ratio']:.3f} [{low:.4f}, {high:.4f}] "
              f"paired over the draws: {verdict}")


def per_variable_csv(fills: dict[str, list[dict[str, np.ndarray]]], data: Data,
                     offset: dict[str, np.ndarray]) -> str:
    """per_variable.csv: each method's MAE and RMSE per pattern and variable in the data's
    own units, the mean over the test draws (and the hidden entries per draw); the
    seasonal variant says whether the variable got the offset."""
    lines = ["method,pattern,variable,mae,rmse,hidden_entries,seasonal_variant"]
    truth = data.truth("test")
    for method, draws in fills.items():
        for p in PATTERNS:
            scores = [errors(truth, f[p], m[p]) for f, m in zip(draws, data.test_masks,
                                                               strict=True)]
            mae = np.mean([s[0] for s in scores], axis=0) * data.std
            rmse = np.mean([s[1] for s in scores], axis=0) * data.std
            hidden = np.mean([m[p].sum(axis=0) for m in data.test_masks], axis=0)
            for f, name in enumerate(data.table.columns):
                note = ("+offset" if offset[p][f] else "plain") if method == "seasonal" else ""
                lines.append(f"{method},{p},{name},{mae[f]:.6g},{rmse[f]:.6g},"
                             f"{hidden[f]:.4g},{note}")
    return "\n".join(lines) + "\n"


def plot_block(data: Data, fills: dict[str, dict[str, np.ndarray]], run_dir: Path) -> None:
    """test_block_<variable>.png: a stretch of test rows from just before the first hidden
    block of the first draw, the truth and the fills drawn only where it was hidden."""
    rows, table = data.parts["test"], data.table
    for f, name in enumerate(table.columns):
        hidden = data.test_masks[0]["block"][:, f]
        runs = np.nonzero(hidden)[0]
        start = max(int(runs[0]) - 20, 0) if len(runs) else 0  # from just before a gap
        shown = rows[start:start + (len(rows) if table.step.coarse else 180)]
        lines = {m: np.where(hidden, filled["block"][:, f] * data.std[f] + data.mean[f],
                             np.nan)[shown - rows[0]] for m, filled in fills.items()}
        plots.lines({"truth": table.values[shown, f], **lines},
                    run_dir / f"test_block_{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png",
                    f"{name}: test rows, block pattern (lines where entries were hidden)",
                    xlabel="date", ylabel=name, x=table.dates[shown])


def main(argv: list[str] | None = None) -> dict:
    cfg = parse(Config, argv, __doc__)
    if cfg.dry_run:
        cfg.epochs, cfg.batches_per_epoch, cfg.seeds = 2, 2, 1

    # ---- data, split by time; baselines on exactly the masks the model is scored on
    data = prepare(cfg)
    fitted = fit_baselines(data)
    draws = baseline_draws(data, fitted)
    baselines = {m: draw_scores(data.truth("test"), d, data.test_masks)
                 for m, d in draws.items()}
    print(f"test baselines, standardised units, mean over {cfg.mask_draws} mask draws:")
    print(comparison_table(baselines, [f"mae@{p}" for p in PATTERNS]))
    best = {p: min(baselines, key=lambda m: baselines[m][f"mae@{p}"]) for p in PATTERNS}

    run = Run(cfg)  # after the data: a bad CSV leaves no run folder behind
    device = run.device

    # ---- train, one model per seed; each scored on the test draws once, at its best
    def train_seed(seed: int) -> SeedResult:
        model = build_model(cfg, data).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        about = (f"bidirectional GRU imputer ({cfg.impl})"
                 + (" + discriminator" if cfg.adversarial else ""))
        history = run.fit(model, optimizer, partial(batches, cfg, data, device),
                          partial(step, cfg), partial(validate, data), seed=seed, about=about,
                          monitor="val_mae", clip_norm=cfg.clip_norm, scheduler=scheduler)
        filled = impute_split(model.imputer, data, "test", data.test_masks)
        scores = (draw_scores(data.truth("test"), filled, data.test_masks)
                  | paired_ratios(filled, best, draws, data))
        state = {k: v.detach().cpu().clone() for k, v in model.imputer.state_dict().items()}
        return SeedResult({"model": scores}, history, {"filled": filled, "state": state})

    seeds = run.each_seed(train_seed)

    # ---- report: the model (median over seeds) beside every baseline
    results = {**seeds.test(), **baselines}
    print(f"\ntest MAE, standardised units (error / training std, mean over variables), "
          f"mean and standard deviation over {cfg.mask_draws} mask draws (RMSE too in "
          f"metrics.json), median over {len(run.seeds)} seed(s); training "
          f"{seeds.seconds:.1f} s in all")
    print(comparison_table(results, [f"mae@{p}{s}" for p in PATTERNS for s in ("", "_std")]))
    print_verdicts(results, best)

    # the seed best on validation is the one fill.py uses
    chosen = seeds.best_on_validation()
    imputer = Imputer(data.z.shape[1], cfg.hidden_size, data.extra.shape[1], cfg.impl)
    imputer.load_state_dict(chosen.outputs["state"])
    save_model(run.dir / "model.pt", imputer, columns=data.table.columns,
               date_columns=data.date_columns,
               step=data.table.step.label, calendar=cfg.calendar, mean=data.mean.tolist(),
               std=data.std.tolist(), low=(data.low * data.std + data.mean).tolist(),
               high=(data.high * data.std + data.mean).tolist())

    run.finish(results, seeds.seconds)
    shown = seeds.median("mae@block")
    fills = {"model": shown.outputs["filled"], **draws}
    atomic_write_text(run.dir / "per_variable.csv", per_variable_csv(fills, data, fitted.offset))
    plot_block(data, {best["block"]: draws[best["block"]][0],
                      "model": shown.outputs["filled"][0]}, run.dir)
    plots.training_curve(shown.history.epochs, run.dir / "training_curve.png",
                         keys=["val_mae"], unit="standardised MAE")
    print(f"wrote {run.dir}/metrics.json, per_variable.csv, model.pt, seed*/best.pt and "
          f"plots; fill a CSV: python -m {__package__}.fill INPUT.csv --output OUT.csv "
          f"--run-dir {run.dir}")
    return results


if __name__ == "__main__":
    run_main(main)
