"""Metrics shared by the tasks: regression errors and classification scores.

All take numpy arrays (or anything `np.asarray` accepts) and return plain floats or
arrays, so a task scores its model and its baselines with the same function.
"""

from __future__ import annotations

import numpy as np


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error."""
    return float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, in the units of the target."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred))))


def seasonal_scale(train: np.ndarray, m: int) -> float:
    """MASE's denominator: the in-sample mean absolute error of the seasonal naive
    forecast y_{t-m} on the training series."""
    train = np.asarray(train, dtype=np.float64)
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error: MAE / `scale` (e.g. `seasonal_scale(train, 12)`);
    below 1 beats the scale's forecaster as it did in sample."""
    return mae(y_true, y_pred) / scale


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of labels predicted exactly."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = how many items of true class i were predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def precision_recall_f1(y_true: np.ndarray, y_pred: np.ndarray,
                        num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1; a class never predicted (or absent) scores 0."""
    counts = confusion_matrix(y_true, y_pred, num_classes)
    hits = np.diag(counts).astype(float)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return precision, recall, f1


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of the per-class F1 over the classes present in `y_true`."""
    present = np.bincount(np.asarray(y_true), minlength=num_classes) > 0
    return float(precision_recall_f1(y_true, y_pred, num_classes)[2][present].mean())


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean per-class recall over the classes present in `y_true`."""
    present = np.bincount(np.asarray(y_true), minlength=num_classes) > 0
    return float(precision_recall_f1(y_true, y_pred, num_classes)[1][present].mean())
