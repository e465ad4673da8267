"""Pure metrics: quality against gold labels, fidelity to the teacher, threshold tuning for multilabel, and the
choice of texts that show the teacher's dark knowledge.

Inputs are probability arrays: (n, k) rows summing to 1 for multiclass, (n, k) independent per-label
probabilities for multilabel. Nothing here reads files or knows which split it is given.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from bertdistill.names import is_multilabel


@dataclass(frozen=True)
class Scorer:
    """The task's headline metric plus the full quality report."""

    task: str
    label_names: list[str]
    metric: str  # macro_f1 | mean_roc_auc | class_f1
    metric_classes: tuple[str, ...] = ()

    @classmethod
    def for_dataset(cls, dataset, metric: str | None, metric_classes: list[str] | None) -> "Scorer":
        default = "mean_roc_auc" if is_multilabel(dataset.task) else "macro_f1"
        return cls(dataset.task, list(dataset.label_names), metric or default, tuple(metric_classes or ()))

    def score(self, labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None = None) -> float:
        """The headline metric (higher is better); what models are selected on, on val."""
        return METRICS[self.metric](self, labels, probs, thresholds)

    def resampled(self, labels: np.ndarray, probs: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The headline metric on many resamples at once, for the bootstrap: counts (r, n) says how often each row
        is drawn in each resample; returns (r,) scores, each equal to `score` on that resample's rows (tested), at a
        fraction of the cost of materializing them (a few matrix products instead of r sklearn calls)."""
        counts = counts.astype(np.float64)
        if self.metric == "mean_roc_auc":
            with np.errstate(invalid="ignore", divide="ignore"):
                per_label = np.stack([_resampled_roc_auc(labels[:, j], probs[:, j], counts)
                                      for j in range(labels.shape[1])], axis=1)
            return _nanmean_rows(per_label)
        gold, predicted = self._indicators(labels), self._indicators(self.predict(probs))
        true, positive = counts @ gold, counts @ predicted
        tp = counts @ (gold * predicted)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(true + positive > 0, 2 * tp / (true + positive), 0.0)  # (r, k); sklearn's zero_division=0
        if self.metric == "class_f1":
            return f1[:, [self.label_names.index(name) for name in self.metric_classes]].mean(axis=1)
        if is_multilabel(self.task):  # macro over every label column
            return f1.mean(axis=1)
        present = (true + positive) > 0  # multiclass macro: over the classes in gold or predictions, as sklearn
        return (f1 * present).sum(axis=1) / present.sum(axis=1)

    def _indicators(self, classes: np.ndarray) -> np.ndarray:
        """(n, k) 0/1 float matrix: one-hot class ids (multiclass) or the 0/1 label rows as they are."""
        if is_multilabel(self.task):
            return classes.astype(np.float64)
        return np.eye(len(self.label_names))[classes]

    def predict(self, probs: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
        if not is_multilabel(self.task):
            return probs.argmax(axis=1)
        return (probs >= (0.5 if thresholds is None else thresholds)).astype(np.int8)

    def report(self, labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None = None) -> dict:
        """Every quality number for one model on one split, keyed for leaderboard.json."""
        result = {self.metric: self.score(labels, probs)}
        # labels=all ids: otherwise sklearn drops a class absent from gold and predictions, shifting the names
        per_class = f1_score(labels, self.predict(probs), labels=list(range(len(self.label_names))), average=None,
                             zero_division=0)
        result["per_class_f1"] = dict(zip(self.label_names, map(float, per_class)))
        if not is_multilabel(self.task):
            # the same definition as score(): macro over the classes present in gold or predictions
            result["macro_f1"] = float(f1_score(labels, probs.argmax(axis=1), average="macro", zero_division=0))
            result["accuracy"] = float(accuracy_score(labels, probs.argmax(axis=1)))
        else:
            result["mean_roc_auc"] = mean_roc_auc(labels, probs)
            result["per_label_roc_auc"] = dict(zip(self.label_names, per_label_roc_auc(labels, probs)))
            result["macro_f1"] = float(np.mean(per_class))
            if thresholds is not None:
                tuned = f1_score(labels, self.predict(probs, thresholds), average="macro", zero_division=0)
                result["macro_f1_tuned"] = float(tuned)
        return result


def _macro_f1(scorer: Scorer, labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None) -> float:
    return float(f1_score(labels, scorer.predict(probs, thresholds), average="macro", zero_division=0))


def _class_f1(scorer: Scorer, labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None) -> float:
    """Mean F1 of the scorer's metric_classes (TweetEval's irony and stance scores)."""
    ids = [scorer.label_names.index(name) for name in scorer.metric_classes]
    predicted = scorer.predict(probs, thresholds)
    return float(np.mean(f1_score(labels, predicted, labels=ids, average=None, zero_division=0)))


# headline metrics by name (DataConfig.metric): (scorer, gold labels, probabilities, thresholds) -> higher is better
METRICS = {
    "macro_f1": _macro_f1,
    "mean_roc_auc": lambda scorer, labels, probs, thresholds: mean_roc_auc(labels, probs),
    "class_f1": _class_f1,
}
PROBABILITY_METRICS = {"mean_roc_auc"}  # those that score the probabilities themselves, not hard decisions


def per_label_roc_auc(labels: np.ndarray, probs: np.ndarray) -> list[float]:
    """ROC-AUC per label column; NaN where a column has one class only (AUC is undefined there)."""
    return [float(roc_auc_score(labels[:, j], probs[:, j])) if 0 < labels[:, j].sum() < len(labels)
            else float("nan") for j in range(labels.shape[1])]


def _resampled_roc_auc(labels: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC-AUC of one label column on each resample (counts: (r, n)), NaN where a resample lacks a class: the
    Mann-Whitney statistic with ties counted half, as roc_auc_score computes it on the materialized rows."""
    values, group = np.unique(scores, return_inverse=True)
    rows = np.arange(len(scores))
    positive, negative = labels == 1, labels != 1
    by_group = lambda mask: sp.csr_matrix((np.ones(mask.sum()), (rows[mask], group[mask])),
                                          shape=(len(scores), len(values)))
    pos, neg = counts @ by_group(positive), counts @ by_group(negative)  # (r, groups): weight per score value
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower than each group
    wins = np.sum(pos * (below + 0.5 * neg), axis=1)
    return wins / (pos.sum(axis=1) * neg.sum(axis=1))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its defined (non-NaN) entries; NaN for a row with none."""
    defined = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, values, 0.0).sum(axis=1) / defined.sum(axis=1)


def mean_roc_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Jigsaw's competition metric: mean column-wise ROC-AUC over the defined columns."""
    return float(np.nanmean(per_label_roc_auc(labels, probs)))


def tune_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-label probability threshold maximising F1 on the given (validation) rows."""
    candidates = np.linspace(0.05, 0.95, 19)
    best = np.full(labels.shape[1], 0.5)
    for j in range(labels.shape[1]):
        scores = [f1_score(labels[:, j], probs[:, j] >= t, zero_division=0) for t in candidates]
        best[j] = candidates[int(np.argmax(scores))]
    return best


def fidelity(teacher_probs: np.ndarray, student_probs: np.ndarray, task: str) -> dict:
    """How closely a student imitates the teacher: top-1 (or per-label) agreement, cosine similarity of the
    probability vectors and KL(teacher || student) in nats (mean over texts; multilabel: mean over labels too)."""
    if not is_multilabel(task):
        agreement = float(np.mean(teacher_probs.argmax(1) == student_probs.argmax(1)))
    else:
        agreement = float(np.mean((teacher_probs >= 0.5) == (student_probs >= 0.5)))
    norms = np.linalg.norm(teacher_probs, axis=1) * np.linalg.norm(student_probs, axis=1)
    cosine = np.sum(teacher_probs * student_probs, axis=1) / np.maximum(norms, 1e-12)
    return {"agreement": agreement, "cosine": float(np.mean(cosine)),
            "kl": kl_divergence(teacher_probs, student_probs, task)}


def kl_divergence(p: np.ndarray, q: np.ndarray, task: str, eps: float = 1e-7) -> float:
    """Mean KL(p || q); probabilities are clipped to [eps, 1 - eps] so a confident miss stays finite."""
    p, q = np.clip(p.astype(np.float64), eps, 1 - eps), np.clip(q.astype(np.float64), eps, 1 - eps)
    if not is_multilabel(task):
        return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))
    per_label = p * (np.log(p) - np.log(q)) + (1 - p) * (np.log1p(-p) - np.log1p(-q))
    return float(np.mean(per_label))


def dark_knowledge_rows(teacher_logits: np.ndarray, task: str,
                        quantiles: tuple[float, ...] = (0.5, 0.8, 0.95, 0.99)) -> list[int]:
    """Rows that show what the teacher knows beyond its top class, spread out: the rows at these quantiles of
    the teacher's probability mass off its decision (distinct rows, in increasing order of that mass)."""
    probs = probabilities(teacher_logits, task)
    if not is_multilabel(task):
        off_decision = 1 - probs.max(axis=1)
    else:  # mean distance from a hard 0/1 decision per label
        off_decision = np.mean(np.minimum(probs, 1 - probs), axis=1)
    order = np.argsort(off_decision, kind="stable")
    positions = np.minimum((np.asarray(quantiles) * len(order)).astype(int), len(order) - 1)
    return [int(order[p]) for p in dict.fromkeys(positions.tolist())]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise, in as few array operations as it takes: for one text they are most of the cost."""
    scaled = logits / temperature if temperature != 1.0 else logits
    if len(scaled) == 1:  # one text, a served request: whole-array reductions are cheaper than per-row ones
        exp = np.exp(scaled - scaled.max())
        exp /= exp.sum()
        return exp
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    exp /= exp.sum(axis=1, keepdims=True)
    return exp


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits / temperature))


def logits_of(probs: np.ndarray, task: str, eps: float = 1e-7) -> np.ndarray:
    """Logits whose softmax (sigmoid per label for multilabel) gives `probs`: log p, or log-odds per label."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    logits = np.log(probs) if not is_multilabel(task) else np.log(probs) - np.log1p(-probs)
    return logits.astype(np.float32)


def probabilities(logits: np.ndarray, task: str, temperature: float = 1.0) -> np.ndarray:
    """Logits -> probabilities for the task: softmax over classes or a sigmoid per label."""
    return softmax(logits, temperature) if not is_multilabel(task) else sigmoid(logits, temperature)
