"""Where the bench keeps what it measured: results/ (one JSON file per part, each with its
commit, date, machine and command) and docs/figures/; reading a file back names a damaged
one instead of failing on it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
FIGURES = ROOT / "docs" / "figures"


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


last_read: list[str] = []  # the results/ file read last, for naming a damaged one


def read_result(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return None
    last_read[:] = [path.name]
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DamagedResult(f"results/{path.name} is not readable JSON ({error})") from None
    if not isinstance(record, dict):
        raise DamagedResult(f"results/{path.name} holds a {type(record).__name__}, not the "
                            "object the bench writes")
    return record
