"""What `make bench` runs name_generator with and holds it to (see core/targets.py)."""

from __future__ import annotations

from core.targets import Target, TaskSpec

SPEC = TaskSpec(
    "a surname for a given language, one character at a time", "bits_per_char",
    exclude=("model+ngram", "real_names"),  # a mixture with the model; real data
    optional_files={"--classifier": "runs/bench/name_classifier/model.pt"},
    targets=[Target("bits_per_char", 0.92, "best"),
             Target("novel_fraction", 0.5, higher_is_better=True),
             Target("language_agreement", 0.9, "real_names", higher_is_better=True,
                    optional=True)],
    seconds=120, figure="samples.png")
