"""`make bench`: the speed and quality targets, each a ratio measured in this run, and the
files in results/ that every measured number of README.md and docs/ comes from.

1. core's layers against torch.nn, forward + backward on the same weights and inputs, in
   one process, after warm-up, the fastest of 3 x --repeats alternated passes, at a fixed
   thread count; with an input that needs no gradient and with one that does (as in
   training, where the input comes from an embedding or a layer below). Then how the
   time grows with the sequence length and the batch, the thread counts for a small and
   a larger GRU, and torch.tanh against the sigmoid. -> results/core.json
2. name_classifier in 1 and 2 processes under torchrun. -> results/processes.json
3. Each task under tasks/ with a targets.py runs with the benchmark flags of its spec into
   runs/bench/<task>; its metrics.json, the commit, the date, the machine, the command and
   its wall time go to results/<task>.json (results/<task>.cuda.json with --device cuda),
   and its headline figure, downscaled, to docs/figures/<task>.png.

`--readme` trains nothing: it rewrites the blocks between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->` in README.md and docs/*.md from results/ alone, so the same files
give the same text on every clone (tests/test_readme.py checks they agree).

    python -m bench                            # everything: every task trains
    python -m bench --only core sin2cos        # some parts; the other results/ files stay
    python -m bench --device cuda --only sin2cos
    python -m bench --readme                   # README.md and docs/ from results/
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.image
import torch

from core.layers import recurrent
from core.targets import Target, TaskSpec

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
FIGURES = ROOT / "docs" / "figures"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIGURE_BYTES = 150_000  # a gallery picture stays under this size
FIGURE_WIDTH = 800  # pixels; wider pictures are shrunk by averaging blocks of pixels


# ---------------------------------------------------------------------------------------
# Where and how a measurement was made: stored beside every number in results/.

def commit() -> str:
    """The checked-out commit, with "+changes" when the code differs from it (what the bench
    itself writes, results/, README.md and docs/, does not count)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":!results", ":!docs", ":!README.md")
    return head + ("+changes" if changed else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict:
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "device": device, **({"gpu": gpu} if gpu else {})}


def provenance(command: str, seconds: float, device: str = "cpu") -> dict:
    return {"commit": commit(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(device), "command": command,
            "wall_seconds": round(seconds, 1)}


def write_result(name: str, record: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    temporary = path.with_suffix(".json.part")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(temporary, path)
    print(f"  wrote results/{path.name}")
    return path


class DamagedResult(Exception):
    """A results/ file that is not what the bench writes (hand-edited, cut short)."""


_last_read: list[str] = []  # the results/ file read last, for naming a damaged one


def read_result(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return None
    _last_read[:] = [path.name]
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DamagedResult(f"results/{path.name} is not readable JSON ({error})") from None
    if not isinstance(record, dict):
        raise DamagedResult(f"results/{path.name} holds a {type(record).__name__}, not the "
                            "object the bench writes")
    return record


# ---------------------------------------------------------------------------------------
# 1. core against torch.nn

def time_pass(layer: torch.nn.Module, x: torch.Tensor) -> float:
    """Seconds of one forward + backward pass."""
    layer.zero_grad(set_to_none=True)
    x.grad = None
    start = time.perf_counter()
    output, _ = layer(x)
    output.sum().backward()
    return time.perf_counter() - start


def time_forward_backward(layer: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward pass, after two warm-up passes."""
    for _ in range(2):
        time_pass(layer, x)
    return statistics.median(time_pass(layer, x) for _ in range(repeats))


CORE_SHAPES = [
    # cell, batch, length, input, hidden, layer options, core-only options, target ratio
    ("gru", 256, 12, 100, 100, {"num_layers": 2, "bidirectional": True}, {}, 1.1),
    ("lstm", 64, 100, 32, 256, {}, {}, 1.2),  # the cell's equations under autograd
    ("lstm", 64, 100, 32, 256, {}, {"backward": "bptt"}, 1.2),  # core/bptt.py's backward
]


def bench_core(threads: list[int], repeats: int) -> list[dict]:
    rows = []
    for cell, batch, length, inputs, hidden, options, core_options, target in CORE_SHAPES:
        torch.manual_seed(0)
        reference = recurrent(cell, "torch", inputs, hidden, batch_first=True, **options)
        ours = recurrent(cell, "core", inputs, hidden, batch_first=True, **options,
                         **core_options)
        ours.load_state_dict(reference.state_dict())
        bi = " bi" if options.get("bidirectional") else ""
        layer = (f"{cell.upper()} B{batch} T{length} {inputs}->{hidden}"
                 + (f" {options['num_layers']}L" if "num_layers" in options else "") + bi
                 + (" (bptt)" if core_options.get("backward") == "bptt" else ""))
        # Both paths: without an input gradient (data straight from the loader) and with
        # one, as in training behind an embedding, a convolution or another layer.
        for input_grad in (False, True):
            x = torch.randn(batch, length, inputs, requires_grad=input_grad)
            for count in threads:
                torch.set_num_threads(count)
                for _ in range(2):  # warm-up
                    time_pass(reference, x)
                    time_pass(ours, x)
                # Alternate single passes so that machine noise hits both alike; the fastest
                # pass of each is the one least disturbed.
                t_torch, t_core = [], []
                for _ in range(3 * repeats):
                    t_torch.append(time_pass(reference, x))
                    t_core.append(time_pass(ours, x))
                ratio = min(t_core) / min(t_torch)
                name = f"{layer}, x grad {'yes' if input_grad else 'no '}, {count} thread(s)"
                print(f"{name:<58} torch {min(t_torch) * 1e3:7.1f} ms   core "
                      f"{min(t_core) * 1e3:7.1f} ms   core/torch {ratio:5.2f}x  (target <= "
                      f"{target}x) {'OK' if ratio <= target else 'MISSED'}", flush=True)
                rows.append({"layer": layer, "input_grad": input_grad, "threads": count,
                             "torch_ms": round(min(t_torch) * 1e3, 2),
                             "core_ms": round(min(t_core) * 1e3, 2), "target": target})
    return rows


SCALING_LENGTHS = [25, 50, 100, 200, 400]
SCALING_BATCHES = [16, 64, 256]


def bench_scaling(threads: int, repeats: int) -> list[dict]:
    """Forward + backward time against the sequence length and the batch, on the LSTM
    shape of CORE_SHAPES (input 32, hidden 256), the input needing its gradient.

    A recurrent layer does the same work at every step, so doubling T must double the
    time, for core as for torch.nn; a ratio T/(T/2) outside 1.6..2.4 is flagged (the
    shortest rows sit a little under 2: the per-call overhead is not repeated). A printout,
    not a target. Big rows get fewer passes, so that each row takes about as long."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    reference = recurrent("lstm", "torch", 32, 256, batch_first=True)
    ours = recurrent("lstm", "core", 32, 256, batch_first=True)
    ours.load_state_dict(reference.state_dict())
    print(f"LSTM 32->256, x grad yes, {threads} thread(s); fastest of N interleaved passes")
    print(f"{'B':>5} {'T':>5} {'N':>3} {'torch ms':>10} {'core ms':>10} {'core/torch':>11}"
          f" {'torch T/(T/2)':>14} {'core T/(T/2)':>13}")
    rows = []
    for batch in SCALING_BATCHES:
        previous = None
        for length in SCALING_LENGTHS:
            x = torch.randn(batch, length, 32, requires_grad=True)
            passes = max(2, min(repeats, repeats * 64 * 100 // (batch * length)))
            time_pass(reference, x)  # warm-up: the first pass at a new shape allocates
            time_pass(ours, x)
            t_torch, t_core = [], []
            for _ in range(passes):
                t_torch.append(time_pass(reference, x))
                t_core.append(time_pass(ours, x))
            now = (min(t_torch), min(t_core))
            line = (f"{batch:>5} {length:>5} {passes:>3} {now[0] * 1e3:10.1f} "
                    f"{now[1] * 1e3:10.1f} {now[1] / now[0]:10.2f}x")
            if previous is not None:
                growth = [now[i] / previous[i] for i in range(2)]
                line += f" {growth[0]:14.2f} {growth[1]:13.2f}"
                if not all(1.6 <= g <= 2.4 for g in growth):
                    line += "  <- not linear in T"
            print(line, flush=True)
            rows.append({"batch": batch, "length": length, "threads": threads,
                         "torch_ms": round(now[0] * 1e3, 2), "core_ms": round(now[1] * 1e3, 2)})
            previous = now
    return rows


def bench_threads(repeats: int) -> list[dict]:
    """Why core.train.set_threads gives small models one thread: time a sin2cos-sized
    GRU (about 3k parameters) and a larger one at 1 and 2 threads."""
    rows = []
    for hidden, batch in [(32, 64), (256, 64)]:
        torch.manual_seed(0)
        layer = recurrent("gru", "torch", 1 if hidden == 32 else 64, hidden, batch_first=True)
        x = torch.randn(batch, 50, layer.input_size)
        times = {}
        for count in [1, 2]:
            torch.set_num_threads(count)
            times[count] = min(time_forward_backward(layer, x, repeats) for _ in range(3))
        parameters = sum(p.numel() for p in layer.parameters())
        print(f"GRU {layer.input_size}->{hidden} ({parameters} parameters) B{batch} T50: "
              f"1 thread {times[1] * 1e3:6.1f} ms, 2 threads {times[2] * 1e3:6.1f} ms, "
              f"2/1 = {times[2] / times[1]:.2f}x")
        rows.append({"layer": f"GRU {layer.input_size}->{hidden} B{batch} T50",
                     "parameters": parameters, "ms_1_thread": round(times[1] * 1e3, 2),
                     "ms_2_threads": round(times[2] * 1e3, 2)})
    return rows


def bench_tanh(repeats: int) -> dict:
    """Why core's LSTM layer computes tanh as 2 sigmoid(2x) - 1: torch.tanh against
    torch.sigmoid on a gate-sized tensor (B64 x 256), 1 thread."""
    torch.set_num_threads(1)
    x = torch.randn(64, 256)
    seconds = {}
    for name, function in [("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
                           ("2 sigmoid(2x) - 1", lambda v: 2 * torch.sigmoid(2 * v) - 1)]:
        passes = []
        for _ in range(3 * repeats):
            start = time.perf_counter()
            for _ in range(100):
                function(x)
            passes.append((time.perf_counter() - start) / 100)
        seconds[name] = min(passes)
    print("  " + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in seconds.items()))
    return {name: round(s * 1e6, 2) for name, s in seconds.items()} | {"unit": "us"}


def bench_processes(out: Path) -> dict:
    """name_classifier's seconds per epoch in 1 process and in 2 processes under torchrun,
    each process on one thread, the same global batch."""
    seconds, commands = {}, []
    for nproc in (1, 2):
        run_dir = out / f"nproc{nproc}"
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", str(nproc)] if nproc > 1 else [sys.executable]
        command = [*launcher, "-m", "tasks.name_classifier.train", "--run-dir", str(run_dir),
                   "--overwrite", "--epochs", "2", "--threads", "1"]
        commands.append(" ".join(["python", *command[1:]]))
        print(f"$ {commands[-1]}", flush=True)
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        seconds[nproc] = metrics["train_seconds"] / 2
        print(f"  {nproc} process(es): {seconds[nproc]:.1f} s per epoch")
    print(f"  2 processes / 1 process: {seconds[2] / seconds[1]:.2f}x the time per epoch")
    return {"seconds_per_epoch": {"1": round(seconds[1], 2), "2": round(seconds[2], 2)},
            "commands": commands}


# ---------------------------------------------------------------------------------------
# 2. The tasks. Each task's folder holds its spec (tasks/<name>/targets.py, see
# core/targets.py): what the bench runs, which number heads the row, which methods count
# as rivals, and the targets. Nothing in this file names a task's keys.

def find_tasks() -> dict[str, TaskSpec]:
    """Every task folder with a train.py and a targets.py (the Makefile finds tasks by
    their train.py), with the spec its targets.py holds, in the order of their names."""
    return {path.parent.name: importlib.import_module(f"tasks.{path.parent.name}.targets").SPEC
            for path in sorted((ROOT / "tasks").glob("*/targets.py"))
            if (path.parent / "train.py").is_file()}


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
    if spec.seconds is not None:
        worst = max(run_seconds(run["metrics"], spec) for run in record["runs"])
        checks.append({"label": f"training seconds{' per seed' if spec.per_seed_seconds else ''}"
                       f" <= {spec.seconds:g}", "value": worst,
                       "met": worst <= spec.seconds, "run": "slowest run"})
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


def bench_task(task: str, spec: TaskSpec, out: Path, device: str) -> dict:
    """Run the task's variants as a user would; return the record for results/."""
    extra = []
    for flag, file in spec.optional_files.items():
        if (ROOT / file).is_file():
            extra += [flag, file]
        else:
            print(f"  {flag} left out: no {file} (bench the task that writes it first)")
    runs, folders = [], []
    for variant in spec.variants:
        # one folder per variant, named by its flags' values: runs/bench/<task>/cell-hello-ohlol
        values = [v.lstrip("-") for v, after in zip(variant, [*variant[1:], "--"][:len(variant)],
                                                    strict=True)
                  if not v.startswith("--") or after.startswith("--")]  # a lone flag: its name
        run_dir = out / "-".join(values) if variant else out
        args = [*spec.flags, *variant, *extra, "--device", device]
        command = [sys.executable, "-m", f"tasks.{task}.train", "--run-dir",
                   str(run_dir.relative_to(ROOT)), "--overwrite", *args]
        shown = "python " + " ".join(command[1:])
        print(f"$ {shown}", flush=True)
        folders.append(run_dir)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        runs.append({"command": shown, "wall_seconds": round(wall, 1),
                     "metrics": json.loads((run_dir / "metrics.json").read_text())})
    if spec.figure:
        copy_figure(task, folders[0], spec.figure)
    wall = sum(run["wall_seconds"] for run in runs)
    command = "python -m bench --only " + task + (f" --device {device}" if device != "cpu"
                                                   else "")
    return {"task": task, **provenance(command, wall, device), "runs": runs}


def copy_figure(task: str, run_dir: Path, pattern: str) -> None:
    """The run's headline PNG, downscaled by averaging blocks of pixels until it is at
    most FIGURE_WIDTH wide and under FIGURE_BYTES, to docs/figures/<task>.png."""
    found = sorted(run_dir.glob(pattern))
    if not found:
        print(f"  no figure {pattern} in {run_dir}: docs/figures/{task}.png left as it is")
        return
    image = matplotlib.image.imread(found[0])[..., :3]  # (H, W, RGB) floats; alpha dropped
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{task}.png"
    factor = max(1, math.ceil(image.shape[1] / FIGURE_WIDTH))
    while True:
        h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
        small = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3)
        matplotlib.image.imsave(path, small.mean(axis=(1, 3)).clip(0, 1))
        if path.stat().st_size < FIGURE_BYTES:
            break
        factor += 1
    print(f"  wrote docs/figures/{path.name} from {found[0].name} "
          f"({path.stat().st_size // 1000} kB)")


def print_checks(checks: list[dict]) -> list[bool]:
    for c in checks:
        value = "-" if c["value"] is None else f"{c['value']:.4g}"
        state = {True: "OK", False: "MISSED", None: "skipped"}[c["met"]]
        print(f"  {c['label']:<52} {value:>10}  {state}")
    return [c["met"] for c in checks if c["met"] is not None]


# ---------------------------------------------------------------------------------------
# 3. README.md and docs/ from results/ alone

def number(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.1e}"
    return f"{value:.4g}"


def ratio_text(ratio: float) -> str:
    return f"{ratio:.3f}x" if 0.01 <= ratio < 100 else f"{ratio:.1e}x"


def seconds_text(record: dict | None, spec: TaskSpec) -> str:
    if record is None:
        return "not run"
    worst = max(run_seconds(run["metrics"], spec) for run in record["runs"])
    return f"{worst:.3g} s{' per seed' if spec.per_seed_seconds else ''}"


def task_row(task: str, spec: TaskSpec) -> str:
    record, gpu = read_result(task), read_result(f"{task}.cuda")
    gpu_text = seconds_text(gpu, spec) if gpu else "no GPU run"
    if record is None:
        return (f"| `{task}` | {spec.learns} | not measured yet: `make bench "
                f'ARGS="--only {task}"` | | | | | {gpu_text} |')
    test = record["runs"][0]["metrics"]["test"]
    seeds = len(record["runs"][0]["metrics"]["seeds"])
    model = f"{spec.metric} {number(test['model'][spec.metric])}"
    if seeds > 1:
        model += f" (median of {seeds} seeds)"
    if len(record["runs"]) > 1:
        model += (f"; {len(record['runs'])} runs, this one "
                  f"`{' '.join(spec.variants[0])}`")
    v = verdict(test, spec)
    rival = f"{v['rival']} {number(v['rival_value'])}" if v else "-"
    shown = [f"{m} {number(test[m][spec.metric])}" for m in spec.exclude
             if isinstance(test.get(m, {}).get(spec.metric), (int, float))]
    if shown:
        rival += f" (not a rival: {', '.join(shown)})"
    if not v:
        outcome = "-"
    elif v["winner"] == "tie":
        outcome = f"tie ({ratio_text(v['ratio'])}, within the spread)"
    else:
        outcome = f"{v['winner']} ({ratio_text(v['ratio'])})"
    if v and v["paired"]:
        outcome += f"; paired 95% interval {v['paired'][0]:.3f}-{v['paired'][1]:.3f}"
    checks = task_checks(record, spec)
    missed = sorted({c["label"] for c in checks if c["met"] is False})
    counted = [c for c in checks if c["met"] is not None]
    targets = f"{sum(c['met'] for c in counted)} of {len(counted)} met"
    targets += untargeted_summary(record, spec)
    if missed:
        targets += "; **missed: " + ", ".join(missed) + "**"
    return (f"| `{task}` | {spec.learns} | {model} | {rival} | {outcome} | {targets} | "
            f"{seconds_text(record, spec)} | {gpu_text} |")


def render_tasks() -> str:
    dates = sorted({r["date"][:10] for t in TASKS if (r := read_result(t))})
    machines = sorted({f"{r['machine']['cpu']}, {r['machine']['cores']} cores, torch "
                       f"{r['machine']['torch']}" for t in TASKS if (r := read_result(t))})
    wall = sum(r["wall_seconds"] for name in ["core", "processes", *TASKS]
               if (r := read_result(name)))
    lines = [
        "| task | learns | model (test) | best baseline | winner (model / baseline) | "
        "targets | CPU training | GPU training |",
        "|---|---|---|---|---|---|---|---|",
        *(task_row(task, spec) for task, spec in TASKS.items()),
        "",
        f"Measured {' and '.join(dates) or 'never'} on {'; '.join(machines) or '-'}, "
        f"{wall / 60:.0f} minutes of bench in all; every file in results/ names its commit, "
        "machine and command.",
    ]
    return "\n".join(lines)


def render_runs() -> str:
    """Per task whose spec names a `table`: each run's values of those metrics, with the
    paired 95% interval where the run measured one (<metric>_ci95_low/_high)."""
    lines = []
    for task, spec in TASKS.items():
        record = read_result(task)
        if not spec.table or record is None:
            continue
        lines += [f"`{task}`, from results/{task}.json:", "",
                  "| run | " + " | ".join(spec.table) + " |",
                  "|---|" + "---|" * len(spec.table)]
        for run in record["runs"]:
            cells = []
            for method_metric in spec.table:
                method, _, metric = method_metric.rpartition(":")
                scores = run["metrics"]["test"].get(method or "model", {})
                value = scores.get(metric)
                low, high = scores.get(f"{metric}_ci95_low"), scores.get(f"{metric}_ci95_high")
                text = number(value) + (f" [{number(low)}, {number(high)}]"
                                        if low is not None and high is not None else "")
                cells.append(f"**{text}**" if low is not None and low > 1 else text)
            lines.append(f"| {variant_name(run, spec)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() or "(no task lists its runs)"


def render_gallery() -> str:
    cells = []
    for task, spec in TASKS.items():
        path = FIGURES / f"{task}.png"
        if spec.figure and path.is_file():
            cells.append(f"[![{task}](docs/figures/{task}.png)](docs/figures/{task}.png)"
                         f"<br>`{task}`")
        elif spec.figure:
            cells.append(f"`{task}`: no picture yet (`make bench ARGS=\"--only {task}\"`)")
        else:
            cells.append(f"`{task}`: no picture yet; the task should write "
                         f"{spec.missing_figure}")
    rows = ["| | | |", "|---|---|---|"]
    for i in range(0, len(cells), 3):
        rows.append("| " + " | ".join(cells[i:i + 3] + [""] * (3 - len(cells[i:i + 3])))
                    + " |")
    return "\n".join(rows)


def render_core_speed() -> str:
    record = read_result("core")
    if record is None:
        return 'Not measured yet: `make bench ARGS="--only core"`.'
    rows = record["rows"]
    columns = sorted({(r["input_grad"], r["threads"]) for r in rows})
    header = ["core/torch.nn", *(f"x grad {'yes' if g else 'no'}, {t} thread{'s' * (t > 1)}"
                                 for g, t in columns), "target"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = {(r["input_grad"], r["threads"]): r for r in rows if r["layer"] == layer}
        ratios = []
        for key in columns:
            r = mine[key]
            ratio = r["core_ms"] / r["torch_ms"]
            ratios.append(f"{ratio:.2f}" if ratio <= r["target"] else f"**{ratio:.2f}**")
        lines.append(f"| {layer} | " + " | ".join(ratios) + f" | <= {r['target']} |")
    lines += ["", f"{record['date']}, {record['machine']['cpu']}, "
              f"{record['machine']['cores']} cores, torch {record['machine']['torch']}, "
              f"commit {record['commit']}; **bold**: over the target."]
    return "\n".join(lines)


def render_growth() -> str:
    record = read_result("core")
    if record is None:
        return 'Not measured yet: `make bench ARGS="--only core"`.'
    rows = record["growth"]
    lengths = sorted({r["length"] for r in rows})
    lines = ["| B \\ T | " + " | ".join(map(str, lengths)) + " |",
             "|---|" + "---|" * len(lengths)]
    for batch in sorted({r["batch"] for r in rows}):
        cells = []
        for length in lengths:
            r = next(r for r in rows if r["batch"] == batch and r["length"] == length)
            cells.append(f"{r['core_ms']:.4g} / {r['torch_ms']:.4g}, "
                         f"{r['core_ms'] / r['torch_ms']:.2f}")
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    lines += ["", f"core ms / torch.nn ms, core/torch; LSTM 32->256, x grad yes, "
              f"{rows[0]['threads']} threads, {record['date']}."]
    return "\n".join(lines)


def render_threads() -> str:
    record = read_result("core")
    if record is None:
        return 'Not measured yet: `make bench ARGS="--only core"`.'
    lines = ["| layer | parameters | 1 thread | 2 threads | 2 / 1 |", "|---|---|---|---|---|"]
    for r in record["threads"]:
        lines.append(f"| {r['layer']} | {r['parameters']} | {r['ms_1_thread']:.3g} ms | "
                     f"{r['ms_2_threads']:.3g} ms | "
                     f"{r['ms_2_threads'] / r['ms_1_thread']:.2f}x |")
    tanh = record["tanh"]
    lines += ["", f"On a B64 x 256 tensor, 1 thread: torch.tanh {tanh['tanh']:.3g} us, "
              f"torch.sigmoid {tanh['sigmoid']:.3g} us, 2 sigmoid(2x) - 1 "
              f"{tanh['2 sigmoid(2x) - 1']:.3g} us ({record['date']})."]
    return "\n".join(lines)


def render_processes() -> str:
    record = read_result("processes")
    if record is None:
        return ('Not measured yet: `make bench ARGS="--only processes"` times '
                "name_classifier in 1 and 2 processes.")
    one, two = (record["seconds_per_epoch"][k] for k in ("1", "2"))
    return (f"name_classifier, one thread per process: {one:.3g} s per epoch in 1 process, "
            f"{two:.3g} s in 2 ({two / one:.2f}x the time); {record['machine']['cpu']}, "
            f"{record['machine']['cores']} cores, {record['date']}, from `make bench "
            f'ARGS="--only processes"`.')


def render_targets() -> str:
    """The specs themselves: what `make bench` runs and demands of each task."""
    lines = ["| task | bench flags | headline (rival: the best of) | targets |",
             "|---|---|---|---|"]
    for task, spec in TASKS.items():
        flags = f"`{' '.join(spec.flags)}`" if spec.flags else "the defaults"
        if len(spec.variants) > 1:
            varied = dict.fromkeys(v for variant in spec.variants for v in variant
                                   if v.startswith("--"))
            flags += f", {len(spec.variants)} runs varying {' '.join(varied)}"
        rivals_text = "every baseline" + (f" but {', '.join(spec.exclude)}" if spec.exclude
                                          else "")
        better = "higher" if spec.higher_is_better else "lower"
        targets = []
        for t in spec.targets:
            sign = ">=" if t.higher_is_better else "<="
            over = {None: "", "best": " / best rival's",
                    "model": f" / {spec.metric}"}.get(t.against, f" / {t.against}'s")
            method = "" if t.method == "model" else f"{t.method}'s "
            runs = f" ({', '.join(t.runs)})" if t.runs else ""
            targets.append(f"{method}{t.metric}{over} {sign} {t.bound:g}{runs}")
        if spec.seconds is not None:
            targets.append(f"< {spec.seconds:g} s training"
                           + (" per seed" if spec.per_seed_seconds else ""))
        lines.append(f"| `{task}` | {flags} | {spec.metric}, {better} is better "
                     f"({rivals_text}) | {'; '.join(targets)} |")
    return "\n".join(lines)


BLOCKS = {"tasks": render_tasks, "targets": render_targets, "runs": render_runs,
          "gallery": render_gallery,
          "core-speed": render_core_speed, "growth": render_growth,
          "threads": render_threads, "processes": render_processes}
BLOCK = re.compile(r"(<!-- bench:([a-z-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.DOTALL)


def rendered(text: str) -> str:
    """`text` with every bench block filled in from results/."""
    return BLOCK.sub(lambda m: m[1] + BLOCKS[m[2]]() + "\n" + m[4], text)


def write_documents() -> None:
    for path in DOCUMENTS:
        text = path.read_text()
        new = rendered(text)
        if new != text:
            path.write_text(new)
            print(f"rewrote {path.relative_to(ROOT)}")
        else:
            print(f"{path.relative_to(ROOT)} already agrees with results/")


# ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    present = list(TASKS)
    parser.add_argument("--only", nargs="+", default=None,
                        choices=["core", "processes", *present],
                        help="run only these parts: core, processes (torchrun) and/or task "
                             "names; results/ of the other parts stay as they are")
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed passes per layer (x3 for the core-vs-torch rows)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="the tasks' device; cuda writes results/<task>.cuda.json "
                             "(core and processes are timed on the CPU)")
    parser.add_argument("--readme", action="store_true",
                        help="train nothing: rewrite README.md and docs/ from results/")
    args = parser.parse_args()
    if args.readme:
        try:
            write_documents()
        except DamagedResult as error:
            sys.exit(f"error: {error}; measure it again (make bench ARGS=\"--only ...\") or "
                     "restore it with git checkout")
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as error:
            # rendering met a missing key or a wrong type in the file it had just read
            where = f"results/{_last_read[0]}" if _last_read else "a file in results/"
            sys.exit(f"error: {where} is not what the bench writes ({type(error).__name__}: "
                     f"{error}); measure it again (make bench ARGS=\"--only ...\") or restore "
                     "it with git checkout")
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no GPU here")
    wanted = args.only or ["core", "processes", *present]
    results: list[bool] = []
    if "core" in wanted and args.device == "cpu":
        print("== core layers vs torch.nn, forward + backward")
        start = time.perf_counter()
        rows = bench_core([1, 2], args.repeats)
        results += [r["core_ms"] / r["torch_ms"] <= r["target"] for r in rows]
        threads = bench_threads(args.repeats)
        tanh = bench_tanh(args.repeats)
        print("== core LSTM vs torch.nn as the sequence and the batch grow")
        growth = bench_scaling(2, args.repeats)
        write_result("core", provenance(f"python -m bench --only core --repeats "
                                        f"{args.repeats}", time.perf_counter() - start)
                     | {"rows": rows, "threads": threads, "tanh": tanh, "growth": growth})
    if "processes" in wanted and args.device == "cpu":
        print("== name_classifier in 1 and 2 processes (torchrun)")
        start = time.perf_counter()
        measured = bench_processes(ROOT / "runs" / "bench" / "processes")
        write_result("processes", provenance("python -m bench --only processes",
                                             time.perf_counter() - start) | measured)
    suffix = "" if args.device == "cpu" else f".{args.device}"
    for task in present:
        if task in wanted:
            print(f"== {task}")
            try:
                record = bench_task(task, TASKS[task], ROOT / "runs" / "bench" / task,
                                    args.device)
            except subprocess.CalledProcessError as error:  # the other tasks still run
                print(f"  FAILED with exit status {error.returncode}: results/{task}"
                      f"{suffix}.json left as it was")
                results.append(False)
                continue
            results += print_checks(task_checks(record, TASKS[task]))
            write_result(task + suffix, record)
    if results:
        print(f"\n{sum(results)} of {len(results)} targets met; "
              "`python -m bench --readme` puts them into README.md and docs/")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
