"""`make bench`: the speed and quality targets, each a ratio measured in this run, and the
files in results/ that every measured number of README.md and docs/ comes from.

1. core's layers against torch.nn, forward + backward, and how their time grows, with
   the thread counts and torch.tanh against the sigmoid (speed.py). -> results/core.json
2. name_classifier in 1 and 2 processes under torchrun (speed.py). -> results/processes.json
3. Each task under tasks/ with a targets.py runs with the benchmark flags of its spec into
   runs/bench/<task> (runs.py); its metrics.json, the commit, the date, the machine, the
   command and its wall time go to
   results/<task>.json (results/<task>.cuda.json with --device cuda), its headline
   figure, downscaled, to docs/figures/<task>.png, and its targets are checked
   (verdicts.py).
4. Then README.md and docs/ are rewritten from results/ (docs.py). `--readme` does only
   that, training nothing, so the same files give the same text on every clone.

    python -m bench                            # everything: every task trains
    python -m bench --only core sin2cos        # some parts; the other results/ files stay
    python -m bench --device cuda --only sin2cos
    python -m bench --readme                   # README.md and docs/ from results/

The exit status is 1 when a target was missed (the documents are rewritten all the same).
"""
