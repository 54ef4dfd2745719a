"""Forecast next month's rainfall after the data's last month with the model.pt its
train.py wrote (the median over its seeds), beside climatology.

    python -m tasks.rainfall_uni.forecast                    # the newest run under runs/
    python -m tasks.rainfall_uni.forecast --csv newer.csv    # a file with more recent months
    python -m tasks.rainfall_uni.forecast --json             # one JSON object per month
"""

# rainfall_multi's forecast.py is the same on purpose: a copied task runs alone.
from core.config import run_main, task_name
from core.forecast import forecast_command

from .train import BASE, FLOOR, Config, Forecaster, model_inputs, read_amounts


def main(argv: list[str] | None = None) -> int:
    return forecast_command(argv, f"python -m {__spec__.name}", __doc__, task_name(Config),
                            Forecaster, model_inputs, read_amounts, BASE, FLOOR)


if __name__ == "__main__":
    run_main(main)
