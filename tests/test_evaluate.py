"""Metrics in bertdistill.evaluation.metrics checked against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bertdistill.evaluation.metrics import (
    Scorer,
    dark_knowledge_rows,
    fidelity,
    kl_divergence,
    mean_roc_auc,
    per_label_roc_auc,
    probabilities,
    sigmoid,
    softmax,
    tune_thresholds,
)

NAMES = ["sports", "food", "tech"]

# Gold 0 0 1 1 2 2, predicted 0 1 1 1 2 0:
#   class 0: TP 1, FP 1, FN 1 -> F1 1/2
#   class 1: TP 2, FP 1, FN 0 -> P 2/3, R 1 -> F1 4/5
#   class 2: TP 1, FP 0, FN 1 -> P 1, R 1/2 -> F1 2/3
GOLD = np.array([0, 0, 1, 1, 2, 2])
PREDICTED = np.array([0, 1, 1, 1, 2, 0])
F1_BY_HAND = [0.5, 0.8, 2 / 3]


def one_hot_probs(predicted: np.ndarray, k: int = 3, confidence: float = 0.8) -> np.ndarray:
    probs = np.full((len(predicted), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_macro_f1_matches_hand_computation():
    scorer = Scorer("multiclass", NAMES, "macro_f1")
    assert scorer.score(GOLD, one_hot_probs(PREDICTED)) == pytest.approx(np.mean(F1_BY_HAND))


def test_class_f1_is_mean_f1_of_named_classes_only():
    scorer = Scorer("multiclass", NAMES, "class_f1", ("food", "tech"))
    assert scorer.score(GOLD, one_hot_probs(PREDICTED)) == pytest.approx((0.8 + 2 / 3) / 2)
    single = Scorer("multiclass", NAMES, "class_f1", ("sports",))
    assert single.score(GOLD, one_hot_probs(PREDICTED)) == pytest.approx(0.5)


def test_multiclass_report_has_per_class_f1_accuracy_and_headline():
    scorer = Scorer("multiclass", NAMES, "macro_f1")
    report = scorer.report(GOLD, one_hot_probs(PREDICTED))
    assert report["per_class_f1"] == pytest.approx(dict(zip(NAMES, F1_BY_HAND)))
    assert report["macro_f1"] == pytest.approx(np.mean(F1_BY_HAND))
    assert report["accuracy"] == pytest.approx(4 / 6)


def test_report_per_class_f1_keeps_names_aligned_when_a_class_is_absent():
    """Class 'food' appears neither in the gold labels nor in the predictions of this split."""
    gold = np.array([0, 0, 2, 2, 2])
    predicted = np.array([0, 2, 2, 2, 2])  # class 0: F1 2/3, class 2: P 3/4 R 1 -> F1 6/7
    scorer = Scorer("multiclass", NAMES, "macro_f1")
    report = scorer.report(gold, one_hot_probs(predicted))
    assert set(report["per_class_f1"]) == set(NAMES)
    assert report["per_class_f1"]["sports"] == pytest.approx(2 / 3)
    assert report["per_class_f1"]["tech"] == pytest.approx(6 / 7)
    assert report["per_class_f1"]["food"] == 0.0
    # the headline in the report is the number models are selected on
    assert report["macro_f1"] == pytest.approx(scorer.score(gold, one_hot_probs(predicted)))


def test_class_f1_report_keeps_headline_and_macro():
    scorer = Scorer("multiclass", NAMES, "class_f1", ("food",))
    report = scorer.report(GOLD, one_hot_probs(PREDICTED))
    assert report["class_f1"] == pytest.approx(0.8)
    assert report["macro_f1"] == pytest.approx(np.mean(F1_BY_HAND))


# Column 0: pos {0.35, 0.8} vs neg {0.1, 0.4}: 3 of 4 pairs ordered -> AUC 0.75
# Column 1: perfectly ranked -> AUC 1.0;  column 2: a single class -> undefined (NaN), skipped by the mean
ML_GOLD = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=np.int8)
ML_PROBS = np.array([[0.1, 0.9, 0.3], [0.4, 0.2, 0.6], [0.35, 0.7, 0.2], [0.8, 0.3, 0.9]])


def test_per_label_roc_auc_by_hand_with_constant_column_nan():
    aucs = per_label_roc_auc(ML_GOLD, ML_PROBS)
    assert aucs[:2] == pytest.approx([0.75, 1.0])
    assert math.isnan(aucs[2])


def test_mean_roc_auc_skips_undefined_columns():
    assert mean_roc_auc(ML_GOLD, ML_PROBS) == pytest.approx(0.875)
    all_positive = ML_GOLD.copy()
    all_positive[:, 2] = 1  # constant the other way round: still undefined
    assert mean_roc_auc(all_positive, ML_PROBS) == pytest.approx(0.875)
    scorer = Scorer("multilabel", ["a", "b", "c"], "mean_roc_auc")
    assert scorer.score(ML_GOLD, ML_PROBS) == pytest.approx(0.875)


def test_multilabel_report_keys_and_tuned_f1():
    labels = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=np.int8)
    probs = np.array([[0.1, 0.9], [0.2, 0.86], [0.62, 0.5], [0.7, 0.6]])
    scorer = Scorer("multilabel", ["x", "y"], "mean_roc_auc")
    thresholds = tune_thresholds(labels, probs)
    report = scorer.report(labels, probs, thresholds)
    assert report["mean_roc_auc"] == pytest.approx(1.0)
    assert report["per_label_roc_auc"] == pytest.approx({"x": 1.0, "y": 1.0})
    # at 0.5, column y predicts all four rows positive: P 1/2, R 1 -> F1 2/3; column x is perfect
    assert report["per_class_f1"] == pytest.approx({"x": 1.0, "y": 2 / 3})
    assert report["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert report["macro_f1_tuned"] == pytest.approx(1.0)
    assert "macro_f1_tuned" not in scorer.report(labels, probs)


def test_tune_thresholds_picks_first_threshold_with_best_f1():
    labels = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=np.int8)
    probs = np.array([[0.1, 0.9], [0.2, 0.86], [0.62, 0.5], [0.7, 0.6]])
    # column 0: any t in (0.2, 0.62] separates -> first grid point 0.25; column 1: t in (0.6, 0.86] -> 0.65
    assert tune_thresholds(labels, probs) == pytest.approx([0.25, 0.65])


def test_multilabel_predict_uses_thresholds_inclusively():
    scorer = Scorer("multilabel", ["x", "y"], "macro_f1")
    probs = np.array([[0.5, 0.3], [0.49, 0.7]])
    assert scorer.predict(probs).tolist() == [[1, 0], [0, 1]]
    assert scorer.predict(probs, np.array([0.5, 0.3])).tolist() == [[1, 1], [0, 1]]


def test_for_dataset_defaults(multiclass_dataset, multilabel_dataset):
    assert Scorer.for_dataset(multiclass_dataset, None, None).metric == "macro_f1"
    assert Scorer.for_dataset(multilabel_dataset, None, None).metric == "mean_roc_auc"
    custom = Scorer.for_dataset(multiclass_dataset, "class_f1", ["food"])
    assert (custom.metric, custom.metric_classes, custom.label_names) == ("class_f1", ("food",), NAMES)


def test_fidelity_multiclass_known_answer():
    teacher = np.array([[0.6, 0.8, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    student = np.array([[0.8, 0.6, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    # argmax teacher 1 0 2 1, student 0 0 1 1: rows 1 and 3 agree
    result = fidelity(teacher, student, "multiclass")
    assert result["agreement"] == pytest.approx(0.5)
    # cosines: 0.96, 1, 0, 1
    assert result["cosine"] == pytest.approx((0.96 + 1 + 0 + 1) / 4)
    assert fidelity(teacher, teacher, "multiclass") == pytest.approx({"agreement": 1.0, "cosine": 1.0, "kl": 0.0})


def test_kl_to_the_teacher_known_answers():
    teacher, student = np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([[0.25, 0.75], [1.0, 0.0]])
    # row 1: 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3); row 2: 0
    assert kl_divergence(teacher, student, "multiclass") == pytest.approx(0.5 * math.log(4 / 3) / 2)
    assert fidelity(teacher, student, "multiclass")["kl"] == pytest.approx(0.5 * math.log(4 / 3) / 2)
    # multilabel: binary KL per label, averaged; KL(0.5 || 0.25) = 0.5 ln 2 + 0.5 ln(2/3)
    assert kl_divergence(np.array([[0.5]]), np.array([[0.25]]), "multilabel") == pytest.approx(0.5 * math.log(4 / 3))
    assert np.isfinite(kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), "multiclass"))


def test_dark_knowledge_rows_spread_over_teacher_uncertainty():
    # the teacher's top probability falls row by row: off-decision mass rises with the row index
    logits = np.stack([np.array([10.0 - i / 10, 0.0, 0.0]) for i in range(100)])
    assert dark_knowledge_rows(logits, "multiclass") == [50, 80, 95, 99]
    assert dark_knowledge_rows(logits[:2], "multiclass") == [1]  # few rows: no repeats
    multilabel = np.array([[5.0, -5.0], [0.1, -0.1], [2.0, -2.0]])
    assert dark_knowledge_rows(multilabel, "multilabel", quantiles=(0.0, 0.99)) == [0, 1]


def test_fidelity_multilabel_agreement_per_label():
    teacher = np.array([[0.9, 0.1], [0.6, 0.4]])
    student = np.array([[0.8, 0.7], [0.2, 0.5]])
    # thresholded at 0.5: teacher [[1,0],[1,0]], student [[1,1],[0,1]] -> 1 of 4 agree
    assert fidelity(teacher, student, "multilabel")["agreement"] == pytest.approx(0.25)


def test_fidelity_cosine_of_zero_rows_is_finite():
    result = fidelity(np.zeros((2, 3)), np.ones((2, 3)), "multilabel")
    assert result["cosine"] == 0.0


def test_softmax_temperature_known_values():
    logits = np.array([[0.0, 2 * math.log(2)], [1.0, 1.0]])
    assert softmax(logits) == pytest.approx(np.array([[0.2, 0.8], [0.5, 0.5]]))
    assert softmax(logits, temperature=2.0) == pytest.approx(np.array([[1 / 3, 2 / 3], [0.5, 0.5]]))


def test_softmax_is_stable_and_shift_invariant():
    logits = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    probs = softmax(logits)
    assert np.isfinite(probs).all()
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert probs[1] == pytest.approx([1 / 3] * 3)
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert softmax(x + 7.0) == pytest.approx(softmax(x))
    for row in range(2):  # one row (the one-text path) as a row of many
        assert softmax(logits[row:row + 1]) == pytest.approx(probs[row:row + 1])
        assert softmax(x[row:row + 1] * 1000, 3.0) == pytest.approx(softmax(x * 1000, 3.0)[row:row + 1])


def test_higher_temperature_flattens_distribution():
    logits = np.array([[3.0, 0.0, -1.0]])
    assert softmax(logits, 4.0).max() < softmax(logits, 1.0).max() < softmax(logits, 0.5).max()


def test_sigmoid_temperature_known_values():
    logits = np.array([[0.0, 2 * math.log(3), -2 * math.log(3)]])
    assert sigmoid(logits) == pytest.approx(np.array([[0.5, 0.9, 0.1]]))
    assert sigmoid(logits, temperature=2.0) == pytest.approx(np.array([[0.5, 0.75, 0.25]]))


def test_probabilities_dispatches_on_task():
    logits = np.array([[2.0, -1.0, 0.5]])
    assert probabilities(logits, "multiclass", 2.0) == pytest.approx(softmax(logits, 2.0))
    assert probabilities(logits, "multilabel", 2.0) == pytest.approx(sigmoid(logits, 2.0))
