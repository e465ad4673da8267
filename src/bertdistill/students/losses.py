"""Distillation losses and their schedules: pure functions of logits, labels and training progress.

All logits are (n, k) tensors at T = 1, as the teacher cache stores them; a temperature is applied here. Labels
are (n,) class ids for a multiclass task, (n, k) 0/1 for a multilabel one. Nothing here reads files, picks an
optimiser or knows about students: a training loop builds one `DistillationLoss` and calls it per batch with
`progress`, the fraction of training done.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bertdistill.config import LossConfig
from bertdistill.errors import BertdistillError
from bertdistill.names import Task, is_multilabel

# The values of `bertdistill.data.Task`, repeated so this module imports nothing heavier than torch.
TASKS = tuple(Task)
SOFTMAX_KINDS = {"kl"}  # fit only a multiclass task
SIGMOID_KINDS = {"soft_bce"}  # fit only a multilabel task


def kl_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """KL(teacher_T || student_T) * T^2, mean over rows (Hinton et al. 2015).

    The T^2 undoes the 1/T^2 that softening puts on the gradients, so the term weighs the same against the
    hard loss whatever T is; the gradient w.r.t. the student logits is T * (q_T - p_T) / n.
    """
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits / temperature, dim=-1)
    divergence = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return divergence * temperature**2


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, centered: bool = False) -> torch.Tensor:
    """Mean squared error on raw logits, mean over all n * k entries (Ba & Caruana 2014; Tang et al. 2019).

    `centered` subtracts each row's mean from both first. Use it for multiclass: softmax ignores a per-row
    shift, so the teacher's shift carries no information and the student should not pay for missing it.
    Leave it off for multilabel, where each sigmoid reads its logit's absolute value.
    """
    if centered:
        student_logits = student_logits - student_logits.mean(dim=-1, keepdim=True)
        teacher_logits = teacher_logits - teacher_logits.mean(dim=-1, keepdim=True)
    return F.mse_loss(student_logits, teacher_logits)


def soft_bce(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-label BCE of sigmoid(student / T) against the soft target sigmoid(teacher / T), mean, times T^2.

    For large T, sigmoid(s / T) - sigmoid(t / T) ~ (s - t) / 4T and the chain rule adds another 1/T, so the
    raw gradient shrinks as 1/T^2; the T^2 keeps it comparable to the hard loss's whatever T is.
    The gradient w.r.t. the student logits is T * (sigmoid(s / T) - sigmoid(t / T)) / (n * k).
    """
    soft_targets = torch.sigmoid(teacher_logits / temperature)
    bce = F.binary_cross_entropy_with_logits(student_logits / temperature, soft_targets)  # log-sum-exp form
    return bce * temperature**2


UNLABELLED = -1  # a label (multiclass) or a row of labels (multilabel) for a text without gold labels


def labelled_rows(labels: torch.Tensor, task: str) -> torch.Tensor:
    """(n,) bool: which rows carry gold labels (a transfer set mixes train rows with unlabelled texts)."""
    return labels >= 0 if not is_multilabel(task) else (labels >= 0).all(dim=-1)


def hard_loss(student_logits: torch.Tensor, labels: torch.Tensor, task: str) -> torch.Tensor:
    """Loss against gold labels: cross-entropy on class ids, or per-label BCE on a 0/1 matrix; mean over the
    labelled rows (UNLABELLED rows count for nothing; a batch without any gives 0)."""
    _check_task(task)
    labelled = labelled_rows(labels, task)
    if not is_multilabel(task):
        per_row = F.cross_entropy(student_logits, labels.long().clamp(min=0), reduction="none")
    else:
        per_row = F.binary_cross_entropy_with_logits(
            student_logits, labels.to(student_logits.dtype).clamp(min=0), reduction="none").mean(dim=-1)
    return (per_row * labelled).sum() / labelled.sum().clamp(min=1)


def annealed_temperature(start: float, progress: float) -> float:
    """Temperature that goes linearly from `start` at progress 0 to 1 at progress 1."""
    _check_progress(progress)
    return start + (1.0 - start) * progress


def teacher_annealing_weight(progress: float) -> float:
    """BAM's lambda (Clark et al. 2019): weight of the gold labels in the target, linear from 0 to 1."""
    _check_progress(progress)
    return float(progress)


def teacher_annealed_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                          task: str, progress: float) -> torch.Tensor:
    """BAM loss at T = 1: soft cross-entropy (multiclass) or soft BCE (multilabel) against the mixed target
    lambda * gold + (1 - lambda) * teacher probabilities, lambda rising from 0 to 1 over training. An UNLABELLED
    row's target is the teacher's alone."""
    _check_task(task)
    gold_weight = teacher_annealing_weight(progress)
    labelled = labelled_rows(labels, task).unsqueeze(-1)
    if not is_multilabel(task):
        teacher = torch.softmax(teacher_logits, dim=-1)
        gold = F.one_hot(labels.long().clamp(min=0), student_logits.shape[-1]).to(student_logits.dtype)
        targets = torch.where(labelled, gold_weight * gold + (1 - gold_weight) * teacher, teacher)
        return -(targets * F.log_softmax(student_logits, dim=-1)).sum(dim=-1).mean()
    teacher = torch.sigmoid(teacher_logits)
    gold = labels.to(student_logits.dtype)
    targets = torch.where(labelled, gold_weight * gold + (1 - gold_weight) * teacher, teacher)
    return F.binary_cross_entropy_with_logits(student_logits, targets)


class DistillationLoss:
    """The training loss a config asks for, checked against the task once, then called per batch."""

    def __init__(self, config: LossConfig, task: str):
        _check_task(task)
        _check_fits(config, task)
        self.config = config
        self.task = task

    @property
    def needs_teacher(self) -> bool:
        """Whether calls need teacher logits: not for kind 'hard', nor for alpha = 0 without teacher annealing."""
        config = self.config
        return config.kind != "hard" and (config.teacher_annealing or config.alpha > 0)

    @property
    def needs_labels(self) -> bool:
        """Whether calls need gold labels: not for pure distillation (alpha = 1), e.g. on an unlabelled corpus."""
        config = self.config
        return config.kind == "hard" or config.teacher_annealing or config.alpha < 1

    def temperature(self, progress: float) -> float:
        """The softening temperature at this point of training."""
        if self.config.anneal_temperature:
            return annealed_temperature(self.config.temperature, progress)
        return self.config.temperature

    def __call__(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                 labels: torch.Tensor | None, progress: float) -> torch.Tensor:
        """Scalar loss for one batch; `progress` in [0, 1] drives the temperature and annealing schedules."""
        self._check_inputs(teacher_logits, labels)
        config = self.config
        if config.kind == "hard":
            return hard_loss(student_logits, labels, self.task)
        if config.teacher_annealing:
            return teacher_annealed_loss(student_logits, teacher_logits, labels, self.task, progress)
        # A term with weight 0 is skipped, so its input may be absent (and a NaN in it cannot leak in as 0 * NaN).
        total = student_logits.new_zeros(())
        if config.alpha > 0:
            total = total + config.alpha * self._soft_term(student_logits, teacher_logits, progress)
        if config.alpha < 1:
            total = total + (1 - config.alpha) * hard_loss(student_logits, labels, self.task)
        return total

    def _soft_term(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   progress: float) -> torch.Tensor:
        kind = self.config.kind
        if kind == "mse":
            return logit_mse(student_logits, teacher_logits, centered=not is_multilabel(self.task))
        if kind == "kl":
            return kl_distillation(student_logits, teacher_logits, self.temperature(progress))
        return soft_bce(student_logits, teacher_logits, self.temperature(progress))

    def _check_inputs(self, teacher_logits: torch.Tensor | None, labels: torch.Tensor | None) -> None:
        kind = self.config.kind
        if self.needs_teacher and teacher_logits is None:
            raise BertdistillError(f"loss '{kind}' needs teacher logits, got none")
        if self.needs_labels and labels is None:
            raise BertdistillError(f"loss '{kind}' needs gold labels, got none; only pure distillation "
                                   "(alpha = 1, no teacher_annealing) trains without them")


def _check_fits(config: LossConfig, task: str) -> None:
    """Reject a loss that cannot train this task, or settings that would be silently ignored."""
    kind = config.kind
    if kind in SOFTMAX_KINDS and is_multilabel(task):
        raise BertdistillError(f"loss '{kind}' is a softmax loss and does not fit a multilabel task; "
                               "use 'soft_bce' or 'mse'")
    if kind in SIGMOID_KINDS and not is_multilabel(task):
        raise BertdistillError(f"loss '{kind}' is a per-label sigmoid loss and does not fit a multiclass "
                               "task; use 'kl' or 'mse'")
    if config.teacher_annealing and kind not in SOFTMAX_KINDS | SIGMOID_KINDS:
        raise BertdistillError("teacher_annealing trains on mixed probabilities and does not fit loss "
                               f"'{kind}'; use 'kl' (multiclass) or 'soft_bce' (multilabel)")
    if config.teacher_annealing and config.anneal_temperature:
        raise BertdistillError("teacher_annealing trains at temperature 1; set anneal_temperature = false")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise BertdistillError(f"unknown task '{task}': expected 'multiclass' or 'multilabel'")


def _check_progress(progress: float) -> None:
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1] (fraction of training done), got {progress}")
