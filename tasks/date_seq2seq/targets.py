"""What `make bench` runs date_seq2seq with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    'a date as people write it ("Tue 3 Mar 98") -> ISO 8601', "exact_match",
    higher_is_better=True,
    targets=[Target("exact_match", 0.995, higher_is_better=True),
             Target("exact_match_beam", 1.0, "model", higher_is_better=True),
             Target("abstain_valid", 0.005),
             Target("refusal_invalid", 0.99, higher_is_better=True)],
    seconds=180, figure="attention_0.png")
