"""convlstm_grid's data: sequences of Gaussian blobs moving at a constant random velocity
and bouncing off the borders of the grid, in two channels (the intensity, and a signed
field carried beside it). Nothing is downloaded: every sequence is drawn from a seeded
numpy generator."""

from __future__ import annotations

import math

import numpy as np
import torch

CHANNELS = 2  # intensity, and the signed field carried beside it


def blob_width(grid: int) -> float:
    """The blobs' Gaussian sigma; sizes scale with the grid so `--grid 12` is the same
    problem, coarser (2.7 cells at 32)."""
    return grid / 12


def trajectories(count: int, grid: int, steps: int, rng: np.random.Generator,
                 max_objects: int = 3) -> np.ndarray:
    """Centres (count, steps, max_objects, 2 = y x) of blobs moving at a constant random
    velocity, 1-2.2 cells a step at 32, reflected off the walls at sigma and grid-1-sigma
    so that every centre stays inside the grid."""
    lo, hi = blob_width(grid), grid - 1 - blob_width(grid)
    position = rng.uniform(lo, hi, size=(count, max_objects, 2))
    speed = rng.uniform(0.03, 0.07, size=(count, max_objects, 1)) * grid
    angle = rng.uniform(0, 2 * math.pi, size=(count, max_objects))
    velocity = speed * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    centres = np.empty((count, steps, max_objects, 2))
    for t in range(steps):
        centres[:, t] = position
        position = position + velocity
        for wall, beyond in ((lo, position < lo), (hi, position > hi)):
            position = np.where(beyond, 2 * wall - position, position)  # reflect
            velocity = np.where(beyond, -velocity, velocity)
    return centres


def make_sequences(count: int, grid: int, steps: int, rng: np.random.Generator,
                   max_objects: int = 3) -> np.ndarray:
    """`count` sequences of `steps` frames with 1 to `max_objects` blobs each:
    (count, steps, 2, grid, grid) float32. Channel 0 is the intensity (0.5-1 a blob);
    channel 1 the same objects signed (+-0.5-1) and shifted by 1.5 sigma in a fixed
    random direction. Overlapping blobs add up."""
    sigma, k = blob_width(grid), max_objects
    centres = trajectories(count, grid, steps, rng, k)                    # (N, T, K, 2)
    active = np.arange(k)[None, :] < rng.integers(1, k + 1, size=(count, 1))  # (N, K)
    amplitude = rng.uniform(0.5, 1.0, size=(count, k)) * active
    signed = rng.choice([-1.0, 1.0], size=(count, k)) * rng.uniform(0.5, 1.0, (count, k))
    turn = rng.uniform(0, 2 * math.pi, size=(count, k))
    offset = 1.5 * sigma * np.stack([np.sin(turn), np.cos(turn)], axis=-1)   # (N, K, 2)
    cells = np.arange(grid)
    frames = np.empty((count, steps, CHANNELS, grid, grid), dtype=np.float32)
    for channel, (centre, weight) in enumerate([(centres, amplitude),
                                                (centres + offset[:, None], signed * active)]):
        # A 2-D Gaussian is the outer product of a column and a row profile.
        gy = np.exp(-((cells - centre[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, T, K, H)
        gx = np.exp(-((cells - centre[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, T, K, W)
        weighted = gy * weight[:, None, :, None]                          # (N, T, K, H)
        frames[:, :, channel] = weighted.swapaxes(-1, -2) @ gx               # (N, T, H, W)
    return frames


def split(frames: np.ndarray, input_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, C, H, W) -> inputs (N, input_steps, ...) and targets (N, T - input_steps, ...)."""
    x = torch.from_numpy(frames)
    return x[:, :input_steps], x[:, input_steps:]

