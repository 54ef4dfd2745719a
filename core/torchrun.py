"""torchrun as `make <task> NPROC=N` calls it: torch's own launcher (torch.distributed.run,
the code behind the `torchrun` command), with its two tracebacks made one line each, as
every error of the project is: a process that failed (the task has printed its own
`error: ...` line above) and Ctrl-C (the task has printed how to resume).

    python -m core.torchrun --standalone --nproc-per-node 2 -m tasks.sin2cos.train
"""

from __future__ import annotations

import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with `argv`; the exit status of its first failed process, 130 for an
    interrupt, else 0."""
    try:
        run(parse_args(argv))
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        print(f"error: process {rank} of {error.name} ended with exit status "
              f"{failure.exitcode}; its message is above", file=sys.stderr)
        return failure.exitcode if failure.exitcode > 0 else 1
    except (SignalException, KeyboardInterrupt):
        print("interrupted: every process has stopped (a run that saved an epoch resumes "
              "with --resume and the same NPROC)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
