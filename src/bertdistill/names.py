"""Names the whole package shares: the two task types and the leaderboard's teacher rows.

A task is multiclass (one class per text, softmax) or multilabel (any subset of labels per text, a sigmoid per
label). The teacher appears as three rows: the PyTorch model every ratio is quoted against, and its ONNX Runtime
fp32 and int8 exports (what a user would ship instead of distilling).
"""
from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


def is_multilabel(task: str) -> bool:
    return task == Task.MULTILABEL


TEACHER = "teacher"
TEACHER_ONNX = "teacher-onnx"
TEACHER_INT8 = "teacher-onnx-int8"
TEACHER_ROWS = (TEACHER, TEACHER_ONNX, TEACHER_INT8)
