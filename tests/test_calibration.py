"""Expected calibration error and reliability bins: hand-worked answers for both tasks."""
from __future__ import annotations

import numpy as np
import pytest

from bertdistill.evaluation.calibration import expected_calibration_error, reliability


def test_hand_worked_multiclass_ece():
    # two rows at confidence 0.9 (one right), two at 0.6 (both right); 10 bins
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    curve = reliability(labels, probs, "multiclass", bins=10)
    assert curve["count"] == [2, 2]
    assert curve["confidence"] == pytest.approx([0.6, 0.9]) and curve["accuracy"] == pytest.approx([1.0, 0.5])
    assert curve["bin_lower"] == pytest.approx([0.6, 0.9])
    assert curve["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_perfectly_calibrated_forecasts_have_near_zero_ece():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    outcomes = (rng.random(200_000) < p).astype(np.int8)  # each event happens with its stated probability
    labels, probs = outcomes[:, None], p[:, None]
    assert expected_calibration_error(labels, probs, "multilabel") < 0.01


def test_overconfident_model_has_large_ece():
    labels = np.array([0, 1] * 50)
    probs = np.tile([[0.99, 0.01]], (100, 1))  # always sure of class 0, right half the time
    assert expected_calibration_error(labels, probs, "multiclass") == pytest.approx(0.49)


def test_multilabel_pools_every_label_and_confidence_one_is_binned():
    labels = np.array([[1, 0], [1, 1]])
    probs = np.array([[1.0, 0.0], [1.0, 1.0]])
    curve = reliability(labels, probs, "multilabel", bins=5)
    assert sum(curve["count"]) == 4 and curve["ece"] == 0.0
    assert curve["bin_lower"] == pytest.approx([0.0, 0.8])
