"""Distillation losses: values and gradients against hand-worked numbers and numpy formulas; schedules; checks.

References are written out in numpy (never the function under test); tensors are float64 so they agree to 1e-12.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from bertdistill.errors import BertdistillError
from bertdistill.students.losses import (
    UNLABELLED,
    DistillationLoss,
    LossConfig,
    annealed_temperature,
    hard_loss,
    kl_distillation,
    logit_mse,
    soft_bce,
    teacher_annealing_weight,
)

STUDENT = np.array([[1.0, -0.5, 2.0], [0.3, 0.0, -1.2]])  # (n=2, k=3)
TEACHER = np.array([[2.5, -1.0, 0.5], [-0.4, 1.1, 0.2]])
CLASS_IDS = np.array([2, 1])
LABEL_MATRIX = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])


def tensor(array, grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def np_softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def np_sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def np_bce(logits: np.ndarray, targets: np.ndarray) -> float:
    probs = np_sigmoid(logits)
    return float(np.mean(-(targets * np.log(probs) + (1 - targets) * np.log(1 - probs))))


def np_soft_ce(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(-(targets * np.log(np_softmax(logits))).sum(axis=1)))


def np_kl_t2(student: np.ndarray, teacher: np.ndarray, temperature: float) -> float:
    p, q = np_softmax(teacher / temperature), np_softmax(student / temperature)
    return float(np.mean((p * np.log(p / q)).sum(axis=1)) * temperature**2)


def gradient(loss_fn, student: np.ndarray) -> np.ndarray:
    """d loss / d student logits, through torch.autograd."""
    student_tensor = tensor(student, grad=True)
    loss_fn(student_tensor).backward()
    return student_tensor.grad.numpy()


# --- KL * T^2 -------------------------------------------------------------------------------------------------

def test_kl_value_worked_by_hand():
    # Row 1 at T = 2: student [0, 0] -> q = [1/2, 1/2]; teacher [2 ln 3, 0] -> p = [3/4, 1/4].
    #   KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.130812036. Row 2: student == teacher -> 0.
    #   mean over rows = 0.065406018; times T^2 = 4 -> 0.261624072.
    student = tensor([[0.0, 0.0], [1.0, 2.0]])
    teacher = tensor([[2 * math.log(3), 0.0], [1.0, 2.0]])
    assert kl_distillation(student, teacher, 2.0).item() == pytest.approx(0.261624072, abs=1e-9)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_kl_value_matches_numpy_formula(temperature):
    value = kl_distillation(tensor(STUDENT), tensor(TEACHER), temperature).item()
    assert value == pytest.approx(np_kl_t2(STUDENT, TEACHER, temperature), rel=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_kl_gradient_is_hintons_t_times_q_minus_p_over_n(temperature):
    grad = gradient(lambda s: kl_distillation(s, tensor(TEACHER), temperature), STUDENT)
    q, p = np_softmax(STUDENT / temperature), np_softmax(TEACHER / temperature)
    np.testing.assert_allclose(grad, temperature * (q - p) / len(STUDENT), rtol=1e-10, atol=1e-14)


def test_kl_is_zero_with_zero_gradient_when_student_matches_teacher():
    assert kl_distillation(tensor(TEACHER), tensor(TEACHER), 2.0).item() == pytest.approx(0.0, abs=1e-14)
    grad = gradient(lambda s: kl_distillation(s, tensor(TEACHER), 2.0), TEACHER)
    np.testing.assert_allclose(grad, 0.0, atol=1e-14)


# --- logit MSE ------------------------------------------------------------------------------------------------

def test_mse_value_and_gradient_worked_by_hand():
    student, teacher = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [5.0, 1.0]])
    # differences 1, 0, -2, 3 -> squares 1, 0, 4, 9 -> mean 14 / 4 = 3.5; gradient 2 (s - t) / (n k)
    assert logit_mse(tensor(student), tensor(teacher)).item() == pytest.approx(3.5, abs=1e-12)
    grad = gradient(lambda s: logit_mse(s, tensor(teacher)), student)
    np.testing.assert_allclose(grad, [[0.5, 0.0], [-1.0, 1.5]], atol=1e-12)
    np.testing.assert_allclose(grad, 2 * (student - teacher) / student.size, atol=1e-12)


def test_centered_mse_worked_by_hand():
    # student [1, 3] centres to [-1, 1], teacher [5, 5] to [0, 0]: mean square 1 (uncentred: (16 + 4) / 2 = 10)
    student, teacher = tensor([[1.0, 3.0]]), tensor([[5.0, 5.0]])
    assert logit_mse(student, teacher, centered=True).item() == pytest.approx(1.0, abs=1e-12)
    assert logit_mse(student, teacher).item() == pytest.approx(10.0, abs=1e-12)


def test_centered_mse_ignores_per_row_shifts():
    student_shift, teacher_shift = np.array([[4.0], [-7.0]]), np.array([[-2.5], [10.0]])
    plain = logit_mse(tensor(STUDENT), tensor(TEACHER), centered=True).item()
    student, teacher = tensor(STUDENT + student_shift), tensor(TEACHER + teacher_shift)
    assert logit_mse(student, teacher, centered=True).item() == pytest.approx(plain, rel=1e-12)
    assert logit_mse(student, teacher).item() != pytest.approx(plain)  # the shifts do matter uncentred


# --- soft BCE -------------------------------------------------------------------------------------------------

def test_soft_bce_worked_by_hand():
    # every logit 0: prediction 1/2, soft target 1/2 -> ln 2 per label; times T^2 = 4
    zeros = tensor(np.zeros((2, 3)))
    assert soft_bce(zeros, zeros, 2.0).item() == pytest.approx(4 * math.log(2), abs=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_soft_bce_value_matches_explicit_formula(temperature):
    expected = np_bce(STUDENT / temperature, np_sigmoid(TEACHER / temperature)) * temperature**2
    assert soft_bce(tensor(STUDENT), tensor(TEACHER), temperature).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_soft_bce_gradient_is_t_times_prob_difference_over_nk(temperature):
    grad = gradient(lambda s: soft_bce(s, tensor(TEACHER), temperature), STUDENT)
    expected = temperature * (np_sigmoid(STUDENT / temperature) - np_sigmoid(TEACHER / temperature)) / STUDENT.size
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-14)


def test_soft_bce_is_finite_for_extreme_logits():
    # a naive log(sigmoid(x)) gives log(0) = -inf here; the log-sum-exp form gives ~|x| / T per label
    student, teacher = tensor([[800.0, -800.0]]), tensor([[-800.0, 800.0]])
    value = soft_bce(student, teacher, 1.0).item()
    assert value == pytest.approx(800.0, rel=1e-9)


# --- hard loss ------------------------------------------------------------------------------------------------

def test_hard_multiclass_is_cross_entropy_on_class_ids():
    expected = float(np.mean(-np.log(np_softmax(STUDENT)[np.arange(2), CLASS_IDS])))
    value = hard_loss(tensor(STUDENT), torch.tensor(CLASS_IDS), "multiclass").item()
    assert value == pytest.approx(expected, rel=1e-12)


def test_hard_multilabel_is_bce_on_label_matrix():
    value = hard_loss(tensor(STUDENT), torch.tensor(LABEL_MATRIX, dtype=torch.int8), "multilabel").item()
    assert value == pytest.approx(np_bce(STUDENT, LABEL_MATRIX), rel=1e-12)


def partly_labelled(task: str) -> torch.Tensor:
    """Row 0 keeps its gold label; row 1 is a transfer-set text without one."""
    if task == "multiclass":
        return torch.tensor([CLASS_IDS[0], UNLABELLED])
    return torch.tensor(np.stack([LABEL_MATRIX[0], [UNLABELLED] * 3]), dtype=torch.int8)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_hard_loss_is_the_mean_over_labelled_rows_only(task):
    expected = hard_loss(tensor(STUDENT[:1]), partly_labelled(task)[:1], task).item()
    assert hard_loss(tensor(STUDENT), partly_labelled(task), task).item() == pytest.approx(expected, rel=1e-12)
    grad = gradient(lambda s: hard_loss(s, partly_labelled(task), task), STUDENT)
    assert np.all(grad[1] == 0) and np.any(grad[0] != 0)
    nothing = torch.full_like(partly_labelled(task), UNLABELLED)
    assert hard_loss(tensor(STUDENT), nothing, task).item() == 0.0  # a batch of unlabelled texts only


@pytest.mark.parametrize("kind, task", [("kl", "multiclass"), ("soft_bce", "multilabel")])
def test_alpha_mix_learns_unlabelled_rows_from_the_teacher_alone(kind, task):
    config = LossConfig(kind=kind, alpha=0.4, temperature=2.0)
    loss = DistillationLoss(config, task)
    mixed = gradient(lambda s: loss(s, tensor(TEACHER), partly_labelled(task), 0.0), STUDENT)
    pure = DistillationLoss(config.model_copy(update={"alpha": 1.0}), task)
    soft_only = gradient(lambda s: pure(s, tensor(TEACHER), None, 0.0), STUDENT)
    np.testing.assert_allclose(mixed[1], 0.4 * soft_only[1], rtol=1e-12)  # row 1: no gold, teacher term only
    assert not np.allclose(mixed[0], 0.4 * soft_only[0])  # row 0: gold labels pull too


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_teacher_annealing_targets_the_teacher_on_unlabelled_rows(task):
    loss = DistillationLoss(LossConfig(kind="kl" if task == "multiclass" else "soft_bce", teacher_annealing=True),
                            task)
    late = loss(tensor(STUDENT[1:]), tensor(TEACHER[1:]), partly_labelled(task)[1:], 1.0).item()
    early = loss(tensor(STUDENT[1:]), tensor(TEACHER[1:]), partly_labelled(task)[1:], 0.0).item()
    assert late == pytest.approx(early, rel=1e-12)  # lambda = 1 would be all gold; there is none, so teacher


def test_hard_loss_rejects_unknown_task():
    with pytest.raises(BertdistillError, match="unknown task 'regression'"):
        hard_loss(tensor(STUDENT), torch.tensor(CLASS_IDS), "regression")


# --- the alpha-mix --------------------------------------------------------------------------------------------

MIXES = [("kl", "multiclass"), ("mse", "multiclass"), ("soft_bce", "multilabel"), ("mse", "multilabel")]


def labels_for(task: str) -> torch.Tensor:
    return torch.tensor(CLASS_IDS) if task == "multiclass" else tensor(LABEL_MATRIX)


def soft_reference(kind: str, task: str, temperature: float) -> float:
    """The teacher term in numpy: KL * T^2, soft BCE * T^2, or MSE (row-centred for multiclass)."""
    if kind == "kl":
        return np_kl_t2(STUDENT, TEACHER, temperature)
    if kind == "soft_bce":
        return np_bce(STUDENT / temperature, np_sigmoid(TEACHER / temperature)) * temperature**2
    center = (lambda x: x - x.mean(axis=1, keepdims=True)) if task == "multiclass" else (lambda x: x)
    return float(np.mean((center(STUDENT) - center(TEACHER)) ** 2))


def hard_reference(task: str) -> float:
    if task == "multiclass":
        return float(np.mean(-np.log(np_softmax(STUDENT)[np.arange(2), CLASS_IDS])))
    return np_bce(STUDENT, LABEL_MATRIX)


@pytest.mark.parametrize("kind,task", MIXES)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_mix_is_alpha_soft_plus_one_minus_alpha_hard(kind, task, alpha):
    loss = DistillationLoss(LossConfig(kind=kind, alpha=alpha, temperature=2.0), task)
    value = loss(tensor(STUDENT), tensor(TEACHER), labels_for(task), progress=0.4).item()
    expected = alpha * soft_reference(kind, task, 2.0) + (1 - alpha) * hard_reference(task)
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind,task", MIXES)
def test_mix_is_exactly_the_weighted_sum_of_its_terms(kind, task):
    loss = DistillationLoss(LossConfig(kind=kind, alpha=0.3, temperature=2.0), task)
    student, teacher, labels = tensor(STUDENT), tensor(TEACHER), labels_for(task)
    soft = {"kl": kl_distillation(student, teacher, 2.0), "soft_bce": soft_bce(student, teacher, 2.0),
            "mse": logit_mse(student, teacher, centered=task == "multiclass")}[kind]
    expected = 0.3 * soft + (1 - 0.3) * hard_loss(student, labels, task)
    assert torch.equal(loss(student, teacher, labels, progress=0.0), expected)


def test_pure_distillation_trains_without_labels_and_hard_without_teacher():
    distil = DistillationLoss(LossConfig(kind="kl", alpha=1.0), "multiclass")
    assert not distil.needs_labels and distil.needs_teacher
    value = distil(tensor(STUDENT), tensor(TEACHER), None, 0.0).item()
    assert value == pytest.approx(np_kl_t2(STUDENT, TEACHER, 2.0), rel=1e-12)
    hard = DistillationLoss(LossConfig(kind="hard", alpha=0.9), "multilabel")
    assert hard.needs_labels and not hard.needs_teacher
    value = hard(tensor(STUDENT), None, tensor(LABEL_MATRIX), 0.0).item()
    assert value == pytest.approx(np_bce(STUDENT, LABEL_MATRIX), rel=1e-12)  # alpha ignored: all weight on gold


def test_missing_inputs_are_reported():
    loss = DistillationLoss(LossConfig(kind="kl", alpha=0.5), "multiclass")
    with pytest.raises(BertdistillError, match="needs teacher logits"):
        loss(tensor(STUDENT), None, torch.tensor(CLASS_IDS), 0.0)
    with pytest.raises(BertdistillError, match="needs gold labels"):
        loss(tensor(STUDENT), tensor(TEACHER), None, 0.0)


# --- schedules ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("progress,expected", [(0.0, 4.0), (0.5, 2.5), (1.0, 1.0)])
def test_annealed_temperature_goes_linearly_from_start_to_one(progress, expected):
    assert annealed_temperature(4.0, progress) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("progress,expected", [(0.0, 0.0), (0.25, 0.25), (1.0, 1.0)])
def test_teacher_annealing_weight_goes_from_zero_to_one(progress, expected):
    assert teacher_annealing_weight(progress) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("schedule", [lambda p: annealed_temperature(2.0, p), teacher_annealing_weight])
@pytest.mark.parametrize("progress", [-0.1, 1.5])
def test_schedules_reject_progress_outside_unit_interval(schedule, progress):
    with pytest.raises(ValueError, match="progress must be in"):
        schedule(progress)


def test_loss_applies_the_temperature_schedule():
    config = LossConfig(kind="kl", alpha=1.0, temperature=4.0, anneal_temperature=True)
    loss = DistillationLoss(config, "multiclass")
    assert loss.temperature(0.5) == pytest.approx(2.5)
    value = loss(tensor(STUDENT), tensor(TEACHER), None, progress=0.5).item()
    assert value == pytest.approx(np_kl_t2(STUDENT, TEACHER, 2.5), rel=1e-12)
    fixed = DistillationLoss(LossConfig(kind="kl", alpha=1.0, temperature=4.0), "multiclass")
    assert fixed(tensor(STUDENT), tensor(TEACHER), None, progress=0.5).item() == pytest.approx(
        np_kl_t2(STUDENT, TEACHER, 4.0), rel=1e-12)


def annealed_loss(task: str, progress: float) -> float:
    kind = "kl" if task == "multiclass" else "soft_bce"
    loss = DistillationLoss(LossConfig(kind=kind, temperature=3.0, teacher_annealing=True), task)
    return loss(tensor(STUDENT), tensor(TEACHER), labels_for(task), progress).item()


def test_teacher_annealing_multiclass_end_points():
    # progress 0: soft cross-entropy to the teacher's probabilities at T = 1 (the config's T = 3 is not used)
    assert annealed_loss("multiclass", 0.0) == pytest.approx(np_soft_ce(STUDENT, np_softmax(TEACHER)), rel=1e-12)
    # progress 1: plain cross-entropy on the gold class ids
    assert annealed_loss("multiclass", 1.0) == pytest.approx(hard_reference("multiclass"), rel=1e-12)


def test_teacher_annealing_multilabel_end_points():
    assert annealed_loss("multilabel", 0.0) == pytest.approx(np_bce(STUDENT, np_sigmoid(TEACHER)), rel=1e-12)
    assert annealed_loss("multilabel", 1.0) == pytest.approx(np_bce(STUDENT, LABEL_MATRIX), rel=1e-12)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_teacher_annealing_midway_mixes_targets(task):
    # both losses are linear in the target, so lambda = 0.3 gives 0.3 * gold loss + 0.7 * teacher loss
    expected = 0.3 * annealed_loss(task, 1.0) + 0.7 * annealed_loss(task, 0.0)
    assert annealed_loss(task, 0.3) == pytest.approx(expected, rel=1e-12)


# --- config and task checks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [{"temperature": 0.0}, {"temperature": -1.0}, {"alpha": -0.1}, {"alpha": 1.1},
                                    {"kind": "cosine"}, {"temp": 2.0}])
def test_config_rejects_bad_values_and_unknown_keys(fields):
    with pytest.raises(ValidationError):
        LossConfig(**fields)


def test_config_is_frozen_and_has_documented_defaults():
    config = LossConfig(kind="kl", alpha=0.5)
    assert (config.temperature, config.anneal_temperature, config.teacher_annealing) == (2.0, False, False)
    with pytest.raises(ValidationError):
        config.alpha = 0.2


@pytest.mark.parametrize("fields,task,message", [
    ({"kind": "kl"}, "multilabel",
     "loss 'kl' is a softmax loss and does not fit a multilabel task; use 'soft_bce' or 'mse'"),
    ({"kind": "soft_bce"}, "multiclass",
     "loss 'soft_bce' is a per-label sigmoid loss and does not fit a multiclass task; use 'kl' or 'mse'"),
    ({"kind": "hard", "teacher_annealing": True}, "multiclass",
     "teacher_annealing trains on mixed probabilities and does not fit loss 'hard'; "
     "use 'kl' (multiclass) or 'soft_bce' (multilabel)"),
    ({"kind": "mse", "teacher_annealing": True}, "multilabel",
     "teacher_annealing trains on mixed probabilities and does not fit loss 'mse'; "
     "use 'kl' (multiclass) or 'soft_bce' (multilabel)"),
    ({"kind": "kl", "teacher_annealing": True, "anneal_temperature": True}, "multiclass",
     "teacher_annealing trains at temperature 1; set anneal_temperature = false"),
    ({"kind": "kl"}, "regression", "unknown task 'regression': expected 'multiclass' or 'multilabel'"),
])
def test_loss_that_does_not_fit_the_task_is_rejected(fields, task, message):
    with pytest.raises(BertdistillError) as caught:
        DistillationLoss(LossConfig(**fields), task)
    assert str(caught.value) == message


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_mse_and_hard_fit_both_tasks(task):
    for kind in ("mse", "hard"):
        assert DistillationLoss(LossConfig(kind=kind), task).task == task
