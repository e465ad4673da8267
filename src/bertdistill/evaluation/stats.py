"""Uncertainty of leaderboard comparisons: paired bootstrap confidence intervals and mean ± std over seeds.

The bootstrap resamples test rows with replacement and scores both models on the *same* resampled rows, so the
interval is for the difference on this test population, with the models held fixed (it says nothing about
retraining noise; seeds cover that). Percentile intervals; pure functions, no I/O.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Score = Callable[[np.ndarray, np.ndarray], float]  # (labels, probabilities) -> headline metric


def paired_bootstrap(labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, score: Score,
                     resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Confidence interval for score(a) - score(b) on the same rows.

    Returns the observed difference, the interval, the share of resamples in which a beats b, and the settings.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    differences = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, n, size=n)
        differences[i] = score(labels[rows], probs_a[rows]) - score(labels[rows], probs_b[rows])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(differences, [tail, 100 - tail])
    return {"difference": float(score(labels, probs_a) - score(labels, probs_b)), "low": float(low),
            "high": float(high), "share_a_better": float(np.mean(differences > 0)), "resamples": resamples,
            "confidence": confidence}


def verdict(interval: dict) -> str:
    """'better' / 'worse' when the interval excludes 0, else 'no significant difference'."""
    if interval["low"] > 0:
        return "better"
    if interval["high"] < 0:
        return "worse"
    return "no significant difference"


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value) of per-seed numbers."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "n": len(array)}
