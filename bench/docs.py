"""README.md and docs/ from results/ alone: the blocks between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->` are rendered from the files the bench wrote, so the same files give
the same text on every clone (tests/test_readme.py checks they agree). Only measured tasks
(a results/<task>.json) are shown: a task copied or written since changes no document
until `make bench ARGS="--only NAME"` measures it."""

from __future__ import annotations

import re

from core.targets import TaskSpec

from . import results
from .results import ROOT, read_result
from .verdicts import TASKS, run_seconds, task_checks, untargeted_summary, variant_name, verdict

DOCUMENTS = [path for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             if path.is_file()]


def in_words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 2 else items)


def measured() -> dict[str, TaskSpec]:
    """The tasks whose results/<task>.json exists, with their specs, by name."""
    return {task: spec for task, spec in TASKS.items() if read_result(task) is not None}


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
    shown = measured()
    if not shown:
        return 'No task measured yet: `make bench` (or `make bench ARGS="--only NAME"`).'
    dates = sorted({read_result(t)["date"][:10] for t in shown})
    machines = sorted({f"{r['machine']['cpu']}, {r['machine']['cores']} cores, torch "
                       f"{r['machine']['torch']}" for t in shown if (r := read_result(t))})
    wall = sum(r["wall_seconds"] for name in ["core", "processes", *shown]
               if (r := read_result(name)))
    lines = [
        "| task | learns | model (test) | best baseline | winner (model / baseline) | "
        "targets | CPU training | GPU training |",
        "|---|---|---|---|---|---|---|---|",
        *(task_row(task, spec) for task, spec in shown.items()),
        "",
        f"Measured {in_words(dates)} on {'; '.join(machines) or '-'}, "
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
    for task, spec in measured().items():
        path = results.FIGURES / f"{task}.png"
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


def render_scale() -> str:
    record = read_result("scale")
    if record is None:
        return ('Not measured yet: `make bench ARGS="--only scale"` times series_impute '
                "against the file's length.")
    commands = record["by_command"]
    rows = sorted({int(r) for by_rows in commands.values() for r in by_rows})
    lines = ["| rows (4 columns) | " + " | ".join(commands) + " |",
             "|---|" + "---|" * len(commands)]
    for r in rows:
        cells = [f"{c[str(r)]['seconds']:.3g} s, {c[str(r)]['peak_mb']:.0f} MB"
                 for c in commands.values()]
        lines.append(f"| {r:,} | " + " | ".join(cells) + " |")
    lines += ["", f"Seconds and peak memory of each command in a process of its own; "
              f"{record['machine']['cpu']}, {record['machine']['cores']} cores, "
              f"{record['date']}, from `{record['command']}`.",
              "", "![series_impute against rows](figures/series_impute_scale.png)"]
    return "\n".join(lines)


def render_targets() -> str:
    """The specs themselves: what `make bench` runs and demands of each measured task."""
    lines = ["| task | bench flags | headline (rival: the best of) | targets |",
             "|---|---|---|---|"]
    for task, spec in measured().items():
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
            targets.append(f"about {spec.seconds:g} s training (reported, not held)"
                           + (" per seed" if spec.per_seed_seconds else ""))
        lines.append(f"| `{task}` | {flags} | {spec.metric}, {better} is better "
                     f"({rivals_text}) | {'; '.join(targets)} |")
    return "\n".join(lines)


BLOCKS = {"tasks": render_tasks, "targets": render_targets, "runs": render_runs,
          "gallery": render_gallery,
          "core-speed": render_core_speed, "growth": render_growth,
          "threads": render_threads, "processes": render_processes, "scale": render_scale}
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

