"""python -m bench: see the package's docstring (bench/__init__.py) or --help."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch

from . import __doc__ as overview
from . import docs, results, runs, speed
from .results import ROOT, provenance, write_result
from .verdicts import TASKS, print_checks, task_checks, tasks_without_spec

PARTS = ("core", "processes", "scale")  # the parts that are not tasks


def update_documents() -> None:
    """README.md and docs/ from results/, or one line naming the damaged file and exit 1."""
    try:
        docs.write_documents()
    except results.DamagedResult as error:
        sys.exit(f"error: {error}; measure it again (make bench ARGS=\"--only ...\") or "
                 "restore it with git checkout")
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as error:
        # rendering met a missing key or a wrong type in the file it had just read
        where = f"results/{results.last_read[0]}" if results.last_read else "a file in results/"
        sys.exit(f"error: {where} is not what the bench writes ({type(error).__name__}: "
                 f"{error}); measure it again (make bench ARGS=\"--only ...\") or restore "
                 "it with git checkout")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=overview.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None, metavar="PART",
                        help="run only these parts: core, processes (torchrun), scale "
                             f"(series_impute's cost against rows) and/or task names "
                             f"({', '.join(TASKS)}); results/ of the other parts stay as "
                             "they are")
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed passes per layer (x3 for the core-vs-torch rows)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="the tasks' device; cuda writes results/<task>.cuda.json "
                             "(core and processes are timed on the CPU)")
    parser.add_argument("--readme", action="store_true",
                        help="train nothing: rewrite README.md and docs/ from results/")
    args = parser.parse_args(argv)
    for part in args.only or []:
        if part in PARTS or part in TASKS:
            continue
        if part in tasks_without_spec():
            parser.exit(2, f"error: --only {part}: tasks/{part}/targets.py is missing; copy "
                           "one from another task (see core/targets.py) and edit it\n")
        parser.exit(2, f"error: --only {part}: no such part; choose from "
                       f"{', '.join([*PARTS, *TASKS])}\n")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.readme:
        update_documents()
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no GPU here")
    wanted = args.only or [*PARTS, *TASKS]
    met: list[bool] = []
    if "core" in wanted and args.device == "cpu":
        print("== core layers vs torch.nn, forward + backward")
        start = time.perf_counter()
        rows = speed.bench_core([1, 2], args.repeats)
        met += [r["core_ms"] / r["torch_ms"] <= r["target"] for r in rows]
        threads = speed.bench_threads(args.repeats)
        tanh = speed.bench_tanh(args.repeats)
        print("== core LSTM vs torch.nn as the sequence and the batch grow")
        growth = speed.bench_scaling(2, args.repeats)
        write_result("core", provenance(f"python -m bench --only core --repeats "
                                        f"{args.repeats}", time.perf_counter() - start)
                     | {"rows": rows, "threads": threads, "tanh": tanh, "growth": growth})
    if "processes" in wanted and args.device == "cpu":
        print("== name_classifier in 1 and 2 processes (torchrun)")
        start = time.perf_counter()
        measured = speed.bench_processes(ROOT / "runs" / "bench" / "processes")
        write_result("processes", provenance("python -m bench --only processes",
                                             time.perf_counter() - start) | measured)
    if "scale" in wanted and args.device == "cpu":
        print("== series_impute's seconds and memory against rows")
        start = time.perf_counter()
        out = ROOT / "runs" / "bench" / "scale"
        measured = speed.bench_scale(out)
        write_result("scale", provenance("python -m bench --only scale",
                                         time.perf_counter() - start) | measured)
        runs.copy_figure("series_impute_scale", out, "scale.png")
    suffix = "" if args.device == "cpu" else f".{args.device}"
    for task, spec in TASKS.items():
        if task not in wanted:
            continue
        print(f"== {task}")
        try:
            record = runs.bench_task(task, spec, ROOT / "runs" / "bench" / task, args.device)
        except subprocess.CalledProcessError as error:  # the other tasks still run
            print(f"  FAILED with exit status {error.returncode}: results/{task}"
                  f"{suffix}.json left as it was")
            met.append(False)
            continue
        met += print_checks(task_checks(record, spec))
        write_result(task + suffix, record)
    if met:
        print(f"\n{sum(met)} of {len(met)} targets met")
    update_documents()
    sys.exit(0 if all(met) else 1)


if __name__ == "__main__":
    main()
