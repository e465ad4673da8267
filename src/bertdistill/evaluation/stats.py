"""Uncertainty of leaderboard comparisons: paired bootstrap confidence intervals and mean ± std over seeds.

The bootstrap resamples test rows with replacement and scores both models on the *same* resampled rows, so the
interval is for the difference on this test population, with the models held fixed (it says nothing about
retraining noise; seeds cover that). Percentile intervals; pure functions, no I/O. A resample is a row of draw
counts, and the score takes many of them at once (`Scorer.resampled`): 1,000 resamples of a multilabel test set
cost a second, where scoring each materialized resample with sklearn took a minute.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

# (labels, probabilities, counts (r, n)) -> (r,) headline metric of each resample
ResampledScore = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
CHUNK_CELLS = 4_000_000  # resamples are drawn this many counts at a time, to bound memory on large test sets


def resample_counts(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of an (resamples, n) matrix: how often each of n rows is drawn, n draws with replacement each."""
    rng = np.random.default_rng(seed)
    step = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, step):
        r = min(step, resamples - start)
        rows = rng.integers(0, n, size=(r, n)) + n * np.arange(r)[:, None]
        yield np.bincount(rows.ravel(), minlength=r * n).reshape(r, n)


def paired_bootstrap(labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, score: ResampledScore,
                     resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Confidence interval for score(a) - score(b) on the same rows.

    Returns the observed difference, the interval, the share of resamples in which a beats b, and the settings.
    """
    difference = lambda counts: score(labels, probs_a, counts) - score(labels, probs_b, counts)
    differences = np.concatenate([difference(counts) for counts in resample_counts(len(labels), resamples, seed)])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(differences, [tail, 100 - tail])
    observed = difference(np.ones((1, len(labels))))[0]  # every row once: the test set itself
    return {"difference": float(observed), "low": float(low),
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
