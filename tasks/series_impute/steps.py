"""The step between a series' rows, found from its dates, and the cycle each row sits in.

A regular series has one step: a fixed length of time (10 minutes, an hour, a day, a
week) or a number of calendar months (a month, a quarter, a year), whose length in days
varies. The step is the most common gap between consecutive rows; every other gap must
be a whole number of steps, and the steps skipped are rows the file left out:

    dates   03-01  03-08  03-15  03-29  04-05      step 1 week (the most common gap)
    grid    0      1      2      4      5          row 3 (03-22) left out: missing cells

A calendar with regular holes has a step and closed places in the week: business days
(no Saturday or Sunday row: pandas' "B"), or any step of a day or less whose rows never
fall on some weekdays or hours of the week. Its rows are the open places only, so Friday
then Monday is one step, not two with a row left out:

    dates   Thu 01-01  Fri 01-02  Mon 01-05  Tue 01-06      business days
    grid    0          1          2          3              (no weekend rows to fill)

A calendar is read so when the file spans at least MIN_WEEKS weeks, some place of the
week never has a row, and the open places hold at least OPEN_SHARE of their rows. A
row missing on an open place (a weekday holiday) is a row the file left out, as on any
step: a missing row of the grid, which the imputer reads as missing, but which fill.py
leaves out of what it writes without counting it unanswered (the market, the office
was closed that day; there is no value to fill). The label names the calendar:
"business days", "1 day except Fri, Sat", "1 hour except week steps 0-7, 20-31" (steps of
the week from Monday 00:00).

A file given an expected step (fill.py gives the model's) is read on it whenever its
dates fall on it: a daily file whose incomplete rows were dropped (most gaps 2 days) is
daily with rows left out, not a step of 2 days.

A gap that is not a whole number of steps (03-08 then 03-11) leaves the series with no
regular step: it is then irregular, each row at its own time. Its nominal step is the
median gap, rounded to a whole number of the largest unit under it ("about 1 week"); it
sets the cycle, the length of hidden blocks and the unit of the rows' times below:

    dates   03-01 09:00  03-09 02:00  03-14 20:00  03-29 11:00      about 1 week
    times   0            1.10         1.93         4.06             (weeks since the first)

Each row's time (`row_times`) is what the imputer's gaps and the baselines' interpolation
read: the grid position for a regular series (0, 1, 2, 4, ...: rows), the time since the
first row in nominal steps for an irregular one. The dates must rise, each once, to the
second: a date out of order or repeated is refused naming the rows, never sorted or
merged (either is more likely a mistake in the file than a reading to guess about). A
time-zone offset is dropped as core.series.parse_dates does, each row on the wall clock
it is written in; so around a change to or from summer time the rows' times can be an
hour off, and the fall-back hour can repeat a date (refused as above).

The cycle gives the seasonal baseline its profile and --calendar its sin and cos:

    step under a day        the day   (position: the step of the day, hour 0..23)
    a day to under a year   the year  (day or week of the year, or the month)
    a year or more          none      (no seasonal baseline, no --calendar)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import UserError

DAY = 86_400  # seconds
WEEK = 7 * DAY
MONDAY = 4 * DAY  # 1970-01-05, the first Monday after numpy's day 0: week steps count from it
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_WEEKS = 4      # a place of the week closed this many times over is the calendar's
OPEN_SHARE = 0.9   # the open places must hold this share of their rows (else: left out)
ROOM = 4           # a calendar of holes has at most this many places per row of the file
YEAR_DAYS = 365.25
# (name, seconds): a fixed step is written in the largest unit that divides it
UNITS = (("week", 7 * DAY), ("day", DAY), ("hour", 3600), ("minute", 60), ("second", 1))


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Step:
    """Rows `seconds` apart (a fixed step), or `months` calendar months apart; `irregular`:
    rows at their own times, typically `seconds` apart (the nominal step); `closed`: the
    steps of the week (from Monday 00:00) on which a fixed step has no rows (business
    days: 5, 6)."""

    seconds: int = 0
    months: int = 0
    irregular: bool = False
    closed: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """"10 minutes", "1 day", "1 week", "3 months", "1 year", "about 1 week" (irregular):
        how messages and model.pt write the step (`from_label` reads it back)."""
        if self.irregular:
            return "about " + Step(seconds=self.seconds).label
        if self.closed:
            if self.seconds == DAY and self.closed == (5, 6):
                return "business days"
            return f"{Step(seconds=self.seconds).label} except {_places(self)}"
        if self.months:
            return (plural(self.months // 12, "year") if self.months % 12 == 0
                    else plural(self.months, "month"))
        name, size = next((n, s) for n, s in UNITS if self.seconds % s == 0)
        return plural(self.seconds // size, name)

    @classmethod
    def from_label(cls, label: str) -> Step:
        if label.startswith("about "):
            return cls(seconds=cls.from_label(label[len("about "):]).seconds, irregular=True)
        if label == "business days":
            return cls(seconds=DAY, closed=(5, 6))
        if " except " in label:
            base, places = label.split(" except ")
            seconds = cls.from_label(base).seconds
            closed: list[int] = []
            if places.startswith("week steps "):
                for run in places[len("week steps "):].split(", "):  # "0-7" or "12"
                    first, _, last = run.partition("-")
                    closed += range(int(first), int(last or first) + 1)
            else:
                closed = [WEEKDAYS.index(day) for day in places.split(", ")]
            return cls(seconds=seconds, closed=tuple(closed))
        count, unit = label.split()
        unit = unit.rstrip("s")
        if unit in ("month", "year"):
            return cls(months=int(count) * (12 if unit == "year" else 1))
        return cls(seconds=int(count) * dict(UNITS)[unit])

    @property
    def coarse(self) -> bool:
        """A month or longer: hidden blocks are counted in a few rows, not weeks of them."""
        return self.months > 0 or self.seconds >= 28 * DAY

    @property
    def cycle(self) -> str | None:
        """"day", "year", or None for a step of a year or more."""
        if self.months:
            return "year" if self.months < 12 else None
        if self.seconds < DAY:
            return "day"
        return "year" if self.seconds < 365 * DAY else None


def _places(step: Step) -> str:
    """The closed places of a holed calendar: weekdays for daily rows ("Sat, Sun"), else
    runs of steps of the week ("0-7, 20-31")."""
    if step.seconds == DAY:
        return ", ".join(WEEKDAYS[i] for i in step.closed)
    runs: list[list[int]] = []
    for i in step.closed:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return "week steps " + ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


def week_step(seconds: np.ndarray, size: int) -> np.ndarray:
    """Each time's place in its week, in steps of `size` seconds from Monday 00:00."""
    return (seconds - MONDAY) % WEEK // size


def open_times(first: int, last: int, step: Step) -> np.ndarray:
    """Seconds of every row a fixed step has from `first` to `last`: each step, less the
    closed places of the week."""
    every = np.arange(first, last + 1, step.seconds, dtype=np.int64)
    return every[~np.isin(week_step(every, step.seconds), step.closed)]


def seconds_of(dates: np.ndarray) -> np.ndarray:
    """datetime64 (N,) -> int64 seconds since 1970."""
    return np.asarray(dates, dtype="datetime64[s]").astype(np.int64)


def nominal_step(seconds: np.ndarray) -> Step:
    """The irregular step of rows at `seconds` (N,): their median gap, as a whole number of
    the largest unit not above it (0.98 weeks: 7 days, "about 1 week")."""
    median = float(np.median(np.diff(seconds)))
    size = next((s for _, s in UNITS if s <= median), 1)
    return Step(seconds=max(round(median / size), 1) * size, irregular=True)


def row_times(dates: np.ndarray, step: Step | None) -> np.ndarray:
    """Each row's time (N,) float64, as the imputer and the baselines read it: the grid
    position for a regular series (rows; a row left out is a row of the grid), the time
    since the first row in nominal steps for an irregular one."""
    if step is None or not step.irregular:
        return np.arange(len(dates), dtype=np.float64)
    seconds = seconds_of(dates)
    return (seconds - seconds[0]) / step.seconds


def into_cycle(dates: np.ndarray, step: Step) -> np.ndarray:
    """Seconds since the start of each row's cycle (its day or its year)."""
    seconds = seconds_of(dates)
    unit = "datetime64[D]" if step.cycle == "day" else "datetime64[Y]"
    start = seconds_of(np.asarray(dates, dtype="datetime64[s]").astype(unit))
    return seconds - start


def cycle_position(dates: np.ndarray, step: Step) -> tuple[np.ndarray, int]:
    """Dates (N,) -> each row's place in its cycle, 0..period-1, and the period: the hour
    of the day (hourly rows), the day of the year (daily), the month (monthly)."""
    if step.cycle is None:
        raise ValueError(f"rows {step.label} apart are in no cycle")
    if step.months:
        months = np.asarray(dates, dtype="datetime64[M]").astype(np.int64) % 12
        return months // step.months, math.ceil(12 / step.months)
    length = DAY if step.cycle == "day" else 366 * DAY
    return into_cycle(dates, step) // step.seconds, math.ceil(length / step.seconds)


def calendar(dates: np.ndarray, step: Step) -> np.ndarray:
    """Dates (N,) -> (N, 2) sin and cos of the row's place in its cycle (the day or the
    year), so December sits next to January and 23:00 next to midnight."""
    if step.months:
        fraction = np.asarray(dates, dtype="datetime64[M]").astype(np.int64) % 12 / 12
    else:
        length = DAY if step.cycle == "day" else YEAR_DAYS * DAY
        fraction = into_cycle(dates, step) / length
    angle = 2 * math.pi * fraction
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def shown(stamp: pd.Timestamp) -> str:
    """A date as messages write it: with the time of day only when it has one (and its
    seconds only when they are not zero). Built from its parts, not strftime, which
    refuses years before 1 (a record thousands of years long)."""
    day = f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}"
    if stamp.second:
        return f"{day} {stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
    return f"{day} {stamp.hour:02d}:{stamp.minute:02d}" if stamp != stamp.normalize() else day


def _in_months(stamps: pd.Series) -> bool:
    """True when every row is on one day of the month (or on every month's last day) at
    one time of day: a step of calendar months."""
    day, time = stamps.dt.day, stamps - stamps.dt.normalize()
    return bool((time == time.iloc[0]).all()
                and ((day == day.iloc[0]).all() or stamps.dt.is_month_end.all()))


def _holed(seconds: np.ndarray) -> Step | None:
    """A calendar with regular holes that rows at `seconds` keep, or None: the largest
    step dividing every gap (a day or less), with the places of the week no row ever
    takes, once the rows span MIN_WEEKS weeks and fill OPEN_SHARE of the open places."""
    size = int(np.gcd.reduce(np.diff(seconds)))
    span = int(seconds[-1] - seconds[0])
    if DAY % size or span < MIN_WEEKS * WEEK or span // size + 1 > ROOM * len(seconds):
        return None
    closed = np.setdiff1d(np.arange(WEEK // size), week_step(seconds, size))
    step = Step(seconds=size, closed=tuple(int(c) for c in closed))
    if not len(closed) or len(seconds) < OPEN_SHARE * len(
            open_times(int(seconds[0]), int(seconds[-1]), step)):
        return None
    return step


def _grid(stamps: pd.Series, seconds: np.ndarray, step: Step) -> np.ndarray | None:
    """Each row's place on the grid of a regular `step` (0, 1, 2, 4, ...), or None when a
    date falls off it."""
    if step.months:
        if not _in_months(stamps):
            return None
        index = (stamps.dt.year * 12 + stamps.dt.month).to_numpy(np.int64)
        offset = index - index[0]
        return None if (offset % step.months).any() else offset // step.months
    offset = seconds - seconds[0]
    if (offset % step.seconds).any():
        return None
    if not step.closed:
        return offset // step.seconds
    if np.isin(week_step(seconds, step.seconds), step.closed).any():
        return None
    return np.searchsorted(open_times(int(seconds[0]), int(seconds[-1]), step), seconds)


def infer_step(stamps: pd.Series, filename: str, raw: Callable[[int], str],
               expected: Step | None = None) -> tuple[Step | None, np.ndarray, str]:
    """The step of rows dated `stamps` (oldest first), each row's place on the grid of
    steps (0, 1, 2, 4, ... where a row is left out; 0, 1, 2, 3, ... for an irregular
    series, whose rows are its own) and, for an irregular series, a line saying why it has
    no regular step (else ""); None, [0] and "" for a single row. `expected` (regular):
    the step to read the rows on if their dates fall on it. `raw(row)` is a row's date as
    the file writes it, for messages. A UserError when a date repeats or falls."""
    if len(stamps) < 2:
        return None, np.zeros(len(stamps), dtype=np.int64), ""
    seconds = seconds_of(stamps.to_numpy())

    def both(r: int) -> str:
        return (f"{shown(stamps.iloc[r])} then {shown(stamps.iloc[r + 1])} (the file has "
                f"{raw(r)} then {raw(r + 1)})")

    repeated = np.nonzero(np.diff(seconds) == 0)[0]
    falling = np.nonzero(np.diff(seconds) < 0)[0]
    if len(falling) and (not len(repeated) or falling[0] < repeated[0]):
        r = int(falling[0])
        raise UserError(f"{filename} rows {r + 2} and {r + 3} are {both(r)}: the dates must "
                        "rise, oldest first; sort the file by date")
    if len(repeated):
        r = int(repeated[0])
        raise UserError(f"{filename} rows {r + 2} and {r + 3} have the same date, "
                        f"{shown(stamps.iloc[r])} (the file has {raw(r)} and {raw(r + 1)}; "
                        f"{len(repeated)} such pair(s)): each date once, to the second; "
                        "keep one reading of each time")
    if expected is not None and not expected.irregular:
        grid = _grid(stamps, seconds, expected)
        if grid is not None:
            return expected, grid, ""
    months = _in_months(stamps)
    if months:
        index = (stamps.dt.year * 12 + stamps.dt.month).to_numpy(np.int64)
        gaps = np.diff(index)
    else:
        holed = _holed(seconds)
        if holed is not None:
            return holed, _grid(stamps, seconds, holed), ""
        gaps = np.diff(seconds)
    values, counts = np.unique(gaps, return_counts=True)
    size = int(values[np.argmax(counts)])  # the most common gap (the smallest of a tie)
    step = Step(months=size) if months else Step(seconds=size)
    off = np.nonzero(gaps % size)[0]
    if len(off):
        r = int(off[0])
        gap = Step(months=int(gaps[r])) if months else Step(seconds=int(gaps[r]))
        irregular = nominal_step(seconds)
        note = (f"{filename} has no regular step (rows {r + 2} and {r + 3} are "
                f"{shown(stamps.iloc[r])} then {shown(stamps.iloc[r + 1])}, {gap.label} "
                f"apart, no whole number of {step.label}, the most common gap; {len(off)} "
                f"of {len(gaps)} gaps are not): read as an irregular series, each row at "
                f"its own time, {irregular.label} apart (the median gap)")
        return irregular, np.arange(len(stamps)), note
    return step, np.concatenate([[0], np.cumsum(gaps // size)]), ""


def grid_dates(stamps: pd.Series, step: Step | None, grid: np.ndarray) -> np.ndarray:
    """The date of every row of the grid (N,) datetime64[s], the left-out rows included."""
    first = stamps.iloc[0]
    everywhere = np.arange(int(grid[-1]) + 1)
    if step is None or step.irregular:
        return stamps.to_numpy().astype("datetime64[s]")
    if step.closed:
        seconds = seconds_of(stamps.to_numpy())
        return open_times(int(seconds[0]), int(seconds[-1]), step).astype("datetime64[s]")
    if not step.months:
        return (np.datetime64(first.to_datetime64(), "s")
                + everywhere * np.timedelta64(step.seconds, "s"))
    month = np.datetime64(first.to_datetime64(), "M") + everywhere * step.months
    time = first - first.normalize()
    if stamps.dt.is_month_end.all():
        days = (month + 1).astype("datetime64[D]") - 1  # each month's last day
    else:
        days = month.astype("datetime64[D]") + (first.day - 1)
    return days.astype("datetime64[s]") + np.timedelta64(int(time.total_seconds()), "s")
