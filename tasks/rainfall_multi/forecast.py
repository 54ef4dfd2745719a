"""Forecast the rainfall of the next months after the data's last month with the trained model of
its train.py (the median over its seeds), beside climatology.

    python -m tasks.rainfall_multi.forecast                    # from runs/<task>/
    python -m tasks.rainfall_multi.forecast --csv newer.csv    # a file with more recent months
"""

from core.config import run_main
from core.forecast import forecast_command

from .train import DATASET, Config, model_inputs


def main(argv: list[str] | None = None) -> None:
    forecast_command(Config, DATASET, model_inputs, argv, __doc__)


if __name__ == "__main__":
    run_main(main)
