"""Paired bootstrap intervals and seed summaries: known answers and invariants."""
from __future__ import annotations

import numpy as np
import pytest

from bertdistill.evaluation.stats import mean_std, paired_bootstrap, verdict


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == labels))


def one_hot(classes: np.ndarray, k: int = 2) -> np.ndarray:
    return np.eye(k)[classes]


def test_identical_models_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    labels, probs = rng.integers(0, 2, 50), rng.dirichlet([1, 1], 50)
    result = paired_bootstrap(labels, probs, probs, accuracy, resamples=200)
    assert result["difference"] == result["low"] == result["high"] == 0.0
    assert result["share_a_better"] == 0.0 and verdict(result) == "no significant difference"


def test_always_right_vs_always_wrong_is_one_everywhere():
    labels = np.array([0, 1] * 20)
    right, wrong = one_hot(labels), one_hot(1 - labels)
    result = paired_bootstrap(labels, right, wrong, accuracy, resamples=100)
    assert result["difference"] == result["low"] == result["high"] == 1.0
    assert result["share_a_better"] == 1.0 and verdict(result) == "better"
    assert verdict(paired_bootstrap(labels, wrong, right, accuracy, resamples=100)) == "worse"


def test_hand_worked_difference_and_reproducible_interval():
    # a is right on 30 of 40 rows, b on 20 (b's right rows are a subset of a's): observed difference 0.25
    labels = np.zeros(40, dtype=int)
    a = one_hot(np.r_[np.zeros(30, int), np.ones(10, int)])
    b = one_hot(np.r_[np.zeros(20, int), np.ones(20, int)])
    first = paired_bootstrap(labels, a, b, accuracy, resamples=500, seed=3)
    assert first["difference"] == pytest.approx(0.25)
    assert first == paired_bootstrap(labels, a, b, accuracy, resamples=500, seed=3)
    assert 0 < first["low"] < 0.25 < first["high"] < 0.5  # the difference per row is 0 or 1, mean 0.25
    # the per-row difference is Bernoulli(0.25): the percentile interval is close to the normal one
    half_width = 1.96 * np.sqrt(0.25 * 0.75 / 40)
    assert first["high"] - first["low"] == pytest.approx(2 * half_width, abs=0.05)
    assert first["resamples"] == 500 and first["confidence"] == 0.95


def test_interval_narrows_with_more_rows():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 2000):
        labels = rng.integers(0, 2, n)
        a = one_hot(np.where(rng.random(n) < 0.8, labels, 1 - labels))
        b = one_hot(np.where(rng.random(n) < 0.7, labels, 1 - labels))
        result = paired_bootstrap(labels, a, b, accuracy, resamples=300)
        widths.append(result["high"] - result["low"])
    assert widths[1] < widths[0] / 3


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "n": 1}
