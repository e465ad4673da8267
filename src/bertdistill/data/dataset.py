"""The in-memory dataset every stage works on: texts, labels, label names, task type, three splits."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bertdistill.errors import BertdistillError
from bertdistill.names import Task

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: np.ndarray  # (n,) int64 class ids, or (n, k) int8 0/1 for multilabel

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray) -> "Split":
        return Split([self.texts[i] for i in index], self.labels[index])


@dataclass(frozen=True)
class Dataset:
    name: str
    task: Task
    label_names: list[str]
    train: Split
    val: Split
    test: Split

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> Split:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def summary(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "label_names": self.label_names,
            "rows": {name: len(self.split(name)) for name in SPLITS},
        }


def stratify_key(labels: np.ndarray) -> np.ndarray:
    """A per-row key to stratify on: the class id, or for multilabel the rarest positive label (-1 if none)."""
    if labels.ndim == 1:
        return labels
    frequency = labels.sum(axis=0)
    rarest_first = np.argsort(frequency, kind="stable")
    key = np.full(len(labels), -1)
    for column in rarest_first[::-1]:  # rarest label written last wins
        key[labels[:, column] == 1] = column
    return key


def stratified_split(split: Split, size: float | int, seed: int, what: str = "split") -> tuple[Split, Split]:
    """Seeded split into (rest, held_out); `size` is a fraction or a row count of the held-out part.

    Stratified where every stratum has two rows and both parts can hold one row per stratum; unstratified
    otherwise (sklearn would raise). `what` (a config key) names the setting in the error for too few rows.
    """
    n = len(split)
    held = size if isinstance(size, (int, np.integer)) else math.ceil(size * n)  # sklearn's rounding
    if not 0 < held < n:
        raise BertdistillError(f"{what}: cannot hold out {size} of {n} rows and keep both parts non-empty; "
                               "the data has too few rows")
    index = np.arange(n)
    key = stratify_key(split.labels)
    _, counts = np.unique(key, return_counts=True)
    stratify = key if counts.min() >= 2 and min(held, n - held) >= len(counts) else None
    from sklearn.model_selection import train_test_split  # here: loading a dataset stays quick to fail

    rest, held_out = train_test_split(index, test_size=int(held), random_state=seed, stratify=stratify)
    return split.take(np.sort(rest)), split.take(np.sort(held_out))


def subsample(split: Split, size: int | None, seed: int, what: str = "subsample") -> Split:
    """A seeded stratified subsample of exactly `size` rows (the split itself if it is not larger)."""
    if size is None or len(split) <= size:
        return split
    _, kept = stratified_split(split, int(size), seed, what)
    return kept
