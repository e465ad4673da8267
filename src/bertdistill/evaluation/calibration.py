"""Calibration: does a model's confidence match how often it is right? Expected calibration error + reliability bins.

Multiclass: top-label calibration (Guo et al. 2017) — confidence is the largest probability, "right" means the
argmax is the gold class. Multilabel: every (text, label) probability is a binary forecast, pooled over labels;
the bin's observed frequency of the label is compared with the mean predicted probability. Equal-width bins on
[0, 1]; ECE is the count-weighted mean gap between confidence and accuracy. Pure functions, no I/O.
"""
from __future__ import annotations

import numpy as np

from bertdistill.names import is_multilabel


def forecasts(labels: np.ndarray, probs: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, outcome) pairs: what the model said and whether it happened (1.0) or not (0.0)."""
    if not is_multilabel(task):
        return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)
    return probs.ravel(), labels.astype(np.float64).ravel()


def reliability(labels: np.ndarray, probs: np.ndarray, task: str, bins: int = 15) -> dict:
    """Per equal-width bin: mean confidence, accuracy (observed frequency) and count; plus the ECE."""
    confidence, outcome = forecasts(labels, probs, task)
    which = np.minimum((confidence * bins).astype(int), bins - 1)  # confidence 1.0 goes in the last bin
    counts = np.bincount(which, minlength=bins)
    present = counts > 0
    mean_confidence = np.bincount(which, weights=confidence, minlength=bins)[present] / counts[present]
    accuracy = np.bincount(which, weights=outcome, minlength=bins)[present] / counts[present]
    gaps = np.abs(accuracy - mean_confidence)
    return {"ece": float(np.sum(counts[present] * gaps) / len(confidence)),
            "bin_lower": (np.flatnonzero(present) / bins).tolist(), "confidence": mean_confidence.tolist(),
            "accuracy": accuracy.tolist(), "count": counts[present].tolist(), "bins": bins}


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, task: str, bins: int = 15) -> float:
    return reliability(labels, probs, task, bins)["ece"]
