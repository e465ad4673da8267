"""The two task types: one class per text (softmax), or any subset of labels per text (a sigmoid per label)."""
from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


def is_multilabel(task: str) -> bool:
    return task == Task.MULTILABEL
