"""The bench's speed measurements, each a ratio or a time taken in this one process:
core's layers against torch.nn (forward + backward on the same weights and inputs, after
warm-up, the fastest of 3 x --repeats alternated passes, at a fixed thread count; with an
input that needs no gradient and with one that does, as in training behind an embedding
or a layer below), how the time grows with the sequence and the batch, thread counts for
a small and a larger GRU, torch.tanh against the sigmoid, name_classifier in 1 and 2
processes under torchrun, and series_impute's cost against the file's length.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from core.layers import recurrent

from .results import ROOT


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



def bench_scale(out: Path) -> dict:
    """series_impute's cost against the file's length (tasks/series_impute/scale.py):
    seconds and peak memory of `train --dry-run` and of `fill`, 10^4 to 10^6 rows."""
    command = [sys.executable, "-m", "tasks.series_impute.scale", "--out", str(out)]
    print(f"$ python {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    measured = json.loads((out / "scale.json").read_text())
    return {"by_command": measured, "command": "python " + " ".join(command[1:])}
