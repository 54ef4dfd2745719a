"""What `make bench` holds a task to: its headline metric, its rivals, the flags it is
benched with and its targets. Each task keeps its own in tasks/<name>/targets.py as
`SPEC = TaskSpec(...)`, so a copied task folder carries what it is held to; the bench finds
them as the Makefile finds the tasks.

A target bounds one number of metrics.json, each a ratio measured in the same run where
it can be: the model against a baseline or the best rival, a second network against
another. When a task renames a metric or a baseline, its targets.py is the one place to
edit; a name the results lack fails loudly. A new baseline needs no edit: every method
but the model and `exclude` is a rival. An interval the task writes beside a metric
(<metric>_lo/_hi, or <metric>_std) is used by the verdict by itself.

A time budget (`seconds`) is reported beside the training time the bench measured, and
not held: seconds depend on the machine and on what else it runs, so a budget copied
with a task would fail on a slower laptop for reasons unrelated to the task. (A fixed
torch.nn pass timed in the same run, as a yardstick to scale by, followed the tasks'
times too loosely to judge them by; docs/runs.md.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Target:
    """A bound on one number of metrics.json: the model's `metric` itself (against=None),
    or divided by the same metric of a method named in `against`, of the best rival
    ("best"), or by the model's own headline metric ("model": beam over greedy).
    `method` names another method than the model to bound (a second network)."""
    metric: str
    bound: float
    against: str | None = None
    higher_is_better: bool = False
    optional: bool = False  # skipped, not failed, when the metric is absent
    method: str = "model"
    runs: tuple[str, ...] = ()  # words of a run's flags it holds for (none: every run)


@dataclass
class TaskSpec:
    learns: str                      # the "learns" column of the table (no numbers)
    metric: str                      # the headline metric, a key of test["model"]
    higher_is_better: bool = False
    exclude: tuple[str, ...] = ()    # methods that are no rivals (a ceiling, real data)
    flags: list[str] = field(default_factory=list)          # added to the task's defaults
    variants: list[list[str]] = field(default_factory=lambda: [[]])  # one run per entry
    untargeted: tuple[str, ...] = ()  # runs whose flags hold one: reported, not targeted
    optional_files: dict[str, str] = field(default_factory=dict)  # flag: file, if present
    targets: list[Target] = field(default_factory=list)
    seconds: float | None = None     # training seconds expected (per seed with
                                     # per_seed_seconds): reported, not held
    per_seed_seconds: bool = False
    figure: str | None = None        # glob in the run folder; its first match is shown
    missing_figure: str = ""         # what the task should draw, when figure is None
    table: list[str] = field(default_factory=list)  # metrics docs/tasks.md lists per run
