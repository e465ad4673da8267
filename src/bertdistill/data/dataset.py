"""The in-memory dataset every stage works on: texts, labels, label names, task type, three splits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.model_selection import train_test_split

Task = Literal["multiclass", "multilabel"]
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


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Seeded split into (rest, held_out); falls back to unstratified where a stratum has one row."""
    index = np.arange(len(split))
    key = stratify_key(split.labels)
    _, counts = np.unique(key, return_counts=True)
    stratify = key if counts.min() >= 2 else None
    rest, held_out = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    return split.take(np.sort(rest)), split.take(np.sort(held_out))


def subsample(split: Split, size: int | None, seed: int) -> Split:
    """A seeded stratified subsample of `size` rows (the split itself if it is not larger)."""
    if size is None or len(split) <= size:
        return split
    _, kept = stratified_split(split, size / len(split), seed)
    return kept
