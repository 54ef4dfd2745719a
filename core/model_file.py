"""The model file a trained task leaves for its command (predict, sample, fill):

    model.pt = {"model": state_dict, <what rebuilds the model: vocabulary, labels,
                config ...>, "sha256": checksum of all of it}

Tensors, strings and numbers only, so `torch.load(weights_only=True)` reads it and no code
is pickled; the checksum covers the weights' bytes and the description, so a file changed
since it was written is refused instead of giving other answers. Every way the file can
be wrong is one UserError naming the file and the command that writes a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core.config import UserError
from core.train import atomic_save


def checksum(saved: dict[str, Any]) -> str:
    """sha256 over the weights (each tensor's name, dtype, shape and bytes, in sorted
    name order) and over everything else but the checksum, as sorted JSON."""
    digest = hashlib.sha256()
    for name, tensor in sorted(saved["model"].items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {list(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    described = {k: v for k, v in saved.items() if k not in ("model", "sha256")}
    digest.update(json.dumps(described, sort_keys=True).encode())
    return digest.hexdigest()


def save(path: Path, model: torch.nn.Module, **described: Any) -> None:
    """Write the model's weights and `described` (JSON-like values) with their checksum,
    atomically."""
    saved = {"model": model.state_dict(), **described}
    saved["sha256"] = checksum(saved)
    atomic_save(saved, path)


def load(path: Path, needed: Sequence[str], what: str, make: str) -> dict[str, Any]:
    """The checked contents of a file `save` wrote: it must hold "model" and `needed`.
    `what` names the kind of model in messages ("a name-classifier model"); `make` is the
    command that writes a new file."""
    path = Path(path)
    hint = f"make a new one with `{make}`"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"no trained model at {path}: run `{make}` first") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}; {hint}") from None
    if size == 0:
        raise UserError(f"cannot read {path}: the file is empty (0 bytes); {hint}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (PermissionError, IsADirectoryError) as error:  # not a damaged file: say so
        raise UserError(f"cannot read {path}: {error.strerror or error}; check that it "
                        "is a file you may read") from None
    except Exception:  # torch's own message runs to several lines of unpickling advice
        raise UserError(f"cannot read {path}: not a model file torch can load (damaged, cut "
                        f"short or another format); {hint}") from None
    keys = ("model", *needed)
    missing = [k for k in keys if k not in saved] if isinstance(saved, dict) else list(keys)
    if missing:
        raise UserError(f"cannot read {path}: not {what} (it lacks "
                        f"{', '.join(map(repr, missing))}); {hint}")
    if "sha256" not in saved:
        raise UserError(f"cannot read {path}: it has no checksum (saved by an older "
                        f"version); {hint}")
    try:
        intact = checksum(saved) == saved["sha256"]
    except Exception:  # values of the wrong kind: not what `save` writes
        intact = False
    if not intact:
        raise UserError(f"{path} is corrupt: checksum mismatch; {hint}")
    return saved


def rebuild_error(path: Path, error: Exception, make: str) -> UserError:
    """The one-line error for an intact file whose model this version of the code cannot
    build (another version's layers, another program's weights)."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return UserError(f"cannot read {path}: it does not fit this version's model "
                     f"({first[:120]}); make a new one with `{make}`")
