"""The bench's judgement of a task's results: each task's spec (tasks/<name>/targets.py,
see core/targets.py), its best rival on the headline metric, the verdict with or without
an interval, and every target checked. Nothing here names a task's keys.
"""

from __future__ import annotations

import importlib
import math

from core.targets import Target, TaskSpec

from .results import ROOT

__all__ = ["TASKS", "Target", "TaskSpec", "best_rival", "check_target", "interval",
           "paired_interval", "print_checks", "task_checks", "verdict"]


def find_tasks() -> dict[str, TaskSpec]:
    """Every task folder with a train.py and a targets.py (the Makefile finds tasks by
    their train.py), with the spec its targets.py holds, in the order of their names."""
    return {path.parent.name: importlib.import_module(f"tasks.{path.parent.name}.targets").SPEC
            for path in sorted((ROOT / "tasks").glob("*/targets.py"))
            if (path.parent / "train.py").is_file()}


def tasks_without_spec() -> list[str]:
    """Task folders (a train.py) that hold no targets.py, so the bench cannot run them."""
    return sorted(p.parent.name for p in (ROOT / "tasks").glob("*/train.py")
                  if not (p.parent / "targets.py").is_file())


TASKS: dict[str, TaskSpec] = find_tasks()

def rivals(test: dict, spec: TaskSpec, metric: str) -> dict[str, float]:
    """The baselines' values of `metric`: every method but the model and spec.exclude."""
    return {method: scores[metric] for method, scores in test.items()
            if method != "model" and method not in spec.exclude
            and isinstance(scores.get(metric), (int, float))}


def best_rival(test: dict, spec: TaskSpec, metric: str) -> tuple[str, float] | None:
    values = rivals(test, spec, metric)
    if not values:
        return None
    pick = max if spec.higher_is_better else min
    name = pick(values, key=values.get)
    return name, values[name]


def interval(scores: dict, metric: str) -> tuple[float, float] | None:
    """The spread a method's results carry for `metric`: a 95% interval (<metric>_lo/_hi,
    rmse_lo@h1/_hi@h1 for a horizon, or <metric>_ci95_low/_high), else the value +-
    <metric>_std, else the range of <metric>_seeds; None when they carry none."""
    value = scores[metric]
    name, at, step = metric.partition("@")
    for low, high in [(f"{metric}_lo", f"{metric}_hi"), (f"{name}_lo{at}{step}",
                      f"{name}_hi{at}{step}"), (f"{metric}_ci95_low", f"{metric}_ci95_high")]:
        if isinstance(scores.get(low), (int, float)) and isinstance(scores.get(high),
                                                                    (int, float)):
            return scores[low], scores[high]
    if f"{metric}_std" in scores:
        return value - scores[f"{metric}_std"], value + scores[f"{metric}_std"]
    seeds = [v for v in scores.get(f"{metric}_seeds", []) if v is not None]
    return (min(seeds), max(seeds)) if len(seeds) > 1 else None


def paired_interval(scores: dict, metric: str, rival: str) -> tuple[float, float] | None:
    """The 95% interval of model / rival on `metric` that the task measured paired (the
    same test months or mask draws for both), when it reports one: series_impute's
    <metric>_ratio_ci95_low/_high (against its best baseline), the rainfall tasks'
    vs_<rival>_lo/_hi (vs_<rival>_lo@h1 for a horizon)."""
    _, at, step = metric.partition("@")
    for low, high in [(f"{metric}_ratio_ci95_low", f"{metric}_ratio_ci95_high"),
                      (f"vs_{rival}_lo{at}{step}", f"vs_{rival}_hi{at}{step}")]:
        if isinstance(scores.get(low), (int, float)) and isinstance(scores.get(high),
                                                                    (int, float)):
            return scores[low], scores[high]
    return None


def verdict(test: dict, spec: TaskSpec) -> dict | None:
    """Model against its best rival on the headline metric: who wins, model / rival, and
    whether that is beyond the spread: the paired interval of the ratio where the task
    measures one, else whether the two methods' own intervals overlap."""
    best = best_rival(test, spec, spec.metric)
    model = test["model"].get(spec.metric)
    if best is None or not isinstance(model, (int, float)):
        return None
    name, value = best
    ratio = model / value if value else math.inf
    model_wins = model > value if spec.higher_is_better else model < value
    spans = [interval(test["model"], spec.metric) or (model, model),
             interval(test[name], spec.metric) or (value, value)]
    overlap = spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]
    has_interval = spans != [(model, model), (value, value)]
    paired = paired_interval(test["model"], spec.metric, name)
    if paired is not None:  # the ratio's own interval holds 1: neither wins beyond it
        overlap, has_interval = paired[0] <= 1 <= paired[1], True
    return {"rival": name, "rival_value": value, "model": model, "ratio": ratio,
            "paired": paired, "winner": "tie" if model == value or (has_interval and overlap)
            else "model" if model_wins else name}


def check_target(test: dict, spec: TaskSpec, target: Target) -> dict:
    """One target's value, its label and whether it was met (None: skipped)."""
    sign = ">=" if target.higher_is_better else "<="
    model = test.get(target.method, {}).get(target.metric)
    prefix = "" if target.method == "model" else f"{target.method}'s "
    if target.against is None:
        label, value = f"{prefix}{target.metric} {sign} {target.bound:g}", model
    else:
        rival = (best_rival(test, spec, target.metric) if target.against == "best" else
                 (target.against, test.get(target.against, {}).get(target.metric)))
        name = rival[0] if rival else "best rival"
        other = rival[1] if rival else None
        if target.against == "model":
            label = f"{target.metric} / {spec.metric} {sign} {target.bound:g}"
            other = test["model"].get(spec.metric)
        else:
            label = f"{prefix}{target.metric} / {name}'s {sign} {target.bound:g}"
        value = model / other if model is not None and other else None
    if value is None:
        if not target.optional:
            raise KeyError(f"target {label}: no such number in metrics.json; edit its "
                           "spec in the task's targets.py")
        return {"label": label, "value": None, "met": None}
    met = value >= target.bound if target.higher_is_better else value <= target.bound
    return {"label": label, "value": value, "met": met}


def task_checks(record: dict, spec: TaskSpec) -> list[dict]:
    """Every target of the spec on every run of the record, then the training seconds."""
    checks = []
    for run in record["runs"]:
        if untargeted(run, spec):
            continue
        words = run["command"].split()
        for target in spec.targets:
            if target.runs and not any(word in words for word in target.runs):
                continue
            check = check_target(run["metrics"]["test"], spec, target) | {"run": run["command"]}
            if len(record["runs"]) > 1:  # which run: the values of its variant's flags
                check["label"] += f" ({variant_name(run, spec)})"
            checks.append(check)
    if spec.seconds is not None:  # reported beside its budget, not held (core/targets.py)
        worst = max(run_seconds(run["metrics"], spec) for run in record["runs"])
        per_seed = " per seed" if spec.per_seed_seconds else ""
        checks.append({"label": f"training seconds{per_seed} <= {spec.seconds:g} (not held)",
                       "value": worst, "met": None, "run": "slowest run"})
    return checks


def variant_name(run: dict, spec: TaskSpec) -> str:
    """The values of the variant flags in the run's command, e.g. "co2" for --dataset co2
    (a flag without a value: the flag, "--adversarial")."""
    flags = {v for variant in spec.variants for v in variant if v.startswith("--")}
    words = [*run["command"].split(), "--"]
    return " ".join(w if words[i + 1].startswith("--") else words[i + 1]
                    for i, w in enumerate(words[:-1]) if w in flags)


def untargeted(run: dict, spec: TaskSpec) -> str:
    """The word of spec.untargeted that the run's command holds, or ""."""
    words = run["command"].split()
    return next((word for word in spec.untargeted if word in words), "")


def untargeted_summary(record: dict, spec: TaskSpec) -> str:
    """What the untargeted runs reached on the first target's metric, e.g. "; tutorial
    (not held to them): solved_fraction 0.05 to 0.3 over 6 runs"."""
    text = ""
    for word in spec.untargeted:
        values = [run["metrics"]["test"]["model"].get(spec.targets[0].metric)
                  for run in record["runs"] if untargeted(run, spec) == word]
        values = [v for v in values if isinstance(v, (int, float))]
        if values:
            text += (f"; {word} (not held to them): {spec.targets[0].metric} "
                     f"{min(values):.3g} to {max(values):.3g} over {len(values)} runs")
    return text

def run_seconds(metrics: dict, spec: TaskSpec) -> float:
    seeds = len(metrics["seeds"]) if spec.per_seed_seconds else 1
    return metrics["train_seconds"] / seeds


def print_checks(checks: list[dict]) -> list[bool]:
    for c in checks:
        value = "-" if c["value"] is None else f"{c['value']:.4g}"
        state = {True: "OK", False: "MISSED", None: "skipped"}[c["met"]]
        print(f"  {c['label']:<52} {value:>10}  {state}")
    return [c["met"] for c in checks if c["met"] is not None]
