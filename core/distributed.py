"""Training in several processes under torchrun, one machine or many. A task's loop wraps
its model (`wrap`) and stops its other processes before the report (`is_main`);
core.train.train_epoch takes each process's rows (`shard`) and core.run.Run shares the
run folder (`share`).

    torchrun --standalone --nproc-per-node 2 -m tasks.name_classifier.train

Every process builds the same model and draws the same batches (they are seeded alike);
each takes its own slice of every batch's rows, DistributedDataParallel averages the
gradients, and so the processes together take the same step as one process on the whole
batch. `--batch-size` is the batch of all processes together, so a run's result does not
depend on how many there are. Validation is computed in full by every process (the same
numbers everywhere); process 0 alone prints, draws the progress bar, and writes
checkpoints, metrics.json and plots. Outside torchrun (WORLD_SIZE unset or 1) none of this
runs.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    """How many processes train together: torchrun's WORLD_SIZE, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's number, 0 for the one that reports and writes."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def start(device: torch.device) -> torch.device:
    """Join the process group torchrun described in the environment (gloo on CPU, nccl on
    CUDA); return this process's device: on CUDA, the GPU numbered LOCAL_RANK."""
    if world_size() == 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    """Wait until every process gets here (for instance, until process 0 has written)."""
    if dist.is_initialized():
        dist.barrier()


def share(value: Any) -> Any:
    """Process 0's `value`, in every process (the run folder process 0 chose, say)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model to train: wrapped in DistributedDataParallel when several processes
    train, so that backward averages the gradients over them; else the model itself."""
    if world_size() == 1:
        return model
    device = next(model.parameters()).device
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None)


def shard(batch: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], float]:
    """This process's rows of a batch (tensors that share their first dimension), and the
    weight of its loss.

    Rows are cut into world_size contiguous slices, which may differ by one row. Each
    process's mean loss is weighted by its share of rows times world_size, so that the
    average DDP takes is the mean over the whole batch: no row is dropped or counted
    twice. A process left with no row computes the loss of one row with weight 0, as
    every process must take part in each backward."""
    count, world = len(batch[0]), world_size()
    if world == 1:
        return batch, 1.0
    part = tuple(t.tensor_split(world)[rank()] for t in batch)
    rows = len(part[0])
    if rows == 0:
        return tuple(t[:1] for t in batch), 0.0
    return part, rows * world / count
