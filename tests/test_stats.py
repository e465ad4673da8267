"""Paired bootstrap intervals and seed summaries: known answers and invariants."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from bertdistill.evaluation.metrics import Scorer
from bertdistill.evaluation.stats import mean_std, paired_bootstrap, resample_counts, verdict


def accuracy(labels: np.ndarray, probs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Accuracy on each resample, from its draw counts."""
    return counts @ (probs.argmax(axis=1) == labels) / counts.sum(axis=1)


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


def test_resample_counts_draw_n_rows_each_and_are_reproducible(monkeypatch):
    monkeypatch.setattr("bertdistill.evaluation.stats.CHUNK_CELLS", 35)  # chunks of 3 resamples of 10 rows
    chunks = list(resample_counts(10, 7, seed=5))
    assert [len(c) for c in chunks] == [3, 3, 1]
    counts = np.concatenate(chunks)
    assert counts.shape == (7, 10) and (counts.sum(axis=1) == 10).all() and (counts >= 0).all()
    assert np.array_equal(counts, np.concatenate(list(resample_counts(10, 7, seed=5))))
    assert not np.array_equal(counts, np.concatenate(list(resample_counts(10, 7, seed=6))))


SCORERS = {
    "multiclass macro_f1": Scorer("multiclass", ["a", "b", "c", "d"], "macro_f1"),
    "multiclass class_f1": Scorer("multiclass", ["a", "b", "c", "d"], "class_f1", ("b", "d")),
    "multilabel mean_roc_auc": Scorer("multilabel", ["x", "y", "z"], "mean_roc_auc"),
    "multilabel macro_f1": Scorer("multilabel", ["x", "y", "z"], "macro_f1"),
}


@pytest.mark.parametrize("name", SCORERS)
def test_resampled_scores_equal_sklearn_on_the_materialized_resamples(name):
    """Scorer.resampled (the bootstrap's vectorized path) against Scorer.score on each resample's rows, in the
    cases that need care: a class absent from gold and predictions, tied scores, a label column with no positive
    in some resamples (its AUC is undefined there and left out of the mean)."""
    scorer, rng = SCORERS[name], np.random.default_rng(0)
    n = 40
    if scorer.task == "multiclass":
        labels = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])  # class "d" is never gold ...
        probs = rng.dirichlet([1, 1, 1, 0.05], size=n)  # ... and rarely predicted
    else:
        labels = (rng.random((n, 3)) < [0.5, 0.2, 0.03]).astype(np.int8)  # z: one or two positives
        probs = np.round(rng.random((n, 3)), 1)  # ties
    counts = np.concatenate(list(resample_counts(n, 300, seed=1)))
    expected = []
    for row_counts in counts:
        rows = np.repeat(np.arange(n), row_counts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a resample may leave no label column's AUC defined
            expected.append(scorer.score(labels[rows], probs[rows]))
    np.testing.assert_allclose(scorer.resampled(labels, probs, counts), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scorer.resampled(labels, probs, np.ones((1, n)))[0], scorer.score(labels, probs),
                               rtol=1e-12)
