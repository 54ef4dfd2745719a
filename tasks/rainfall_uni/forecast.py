"""Forecast next month's rainfall after the data's last month with the model.pt its
train.py wrote (the median over its seeds), beside climatology.

    python -m tasks.rainfall_uni.forecast                    # the newest run under runs/
    python -m tasks.rainfall_uni.forecast --csv newer.csv    # a file with more recent months
    python -m tasks.rainfall_uni.forecast --json             # one JSON object per month
"""

from core.config import run_main, task_name
from core.forecast import forecast_command

from .train import Config, Forecaster, model_inputs


def main(argv: list[str] | None = None) -> int:
    return forecast_command(argv, f"python -m {__spec__.name}", __doc__, task_name(Config),
                            Forecaster, model_inputs)


if __name__ == "__main__":
    run_main(main)
