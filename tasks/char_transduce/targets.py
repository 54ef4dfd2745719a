"""What `make bench` runs char_transduce with and holds it to (see core/targets.py)."""

from __future__ import annotations

import random

from core.targets import Target, TaskSpec


def char_pairs() -> list[tuple[str, str]]:
    """hello -> ohlol and five random same-length pairs, each target drawn from its
    source's characters."""
    rng = random.Random(2024)
    pairs = [("hello", "ohlol")]
    for _ in range(5):
        length = rng.randint(5, 12)
        src = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(length))
        pairs.append((src, "".join(rng.choice(src) for _ in range(length))))
    return pairs


SPEC = TaskSpec(
    '"hello" -> "ohlol", and five random same-length pairs', "accuracy",
    higher_is_better=True, flags=["--seeds", "20", "--epochs", "15"],
    variants=[["--model", model, "--src", src, "--tgt", tgt]
              for model in ["cell", "rnn", "embed", "tutorial"]
              for src, tgt in char_pairs()],
    # the tutorial's i2h/i2o network is run for the finding, not held to the target
    targets=[Target("solved_fraction", 1.0, higher_is_better=True)],
    untargeted=("tutorial",),
    figure="predictions.png")
