"""Student families, registered by name. Adding a family: one module and one line in REGISTRY."""
from __future__ import annotations

from pathlib import Path

from ..errors import BertdistillError
from .base import Student, TrainingData, read_header
from .linear import TfidfLogisticRegression, TfidfLogitRidge, TfidfSoftLogisticRegression

REGISTRY: dict[str, type] = {
    TfidfLogisticRegression.kind: TfidfLogisticRegression,
    TfidfSoftLogisticRegression.kind: TfidfSoftLogisticRegression,
    TfidfLogitRidge.kind: TfidfLogitRidge,
}


def student_class(kind: str) -> type:
    if kind not in REGISTRY:
        raise BertdistillError(f"unknown student '{kind}' (known: {', '.join(REGISTRY)})")
    return REGISTRY[kind]


def load_student(folder: Path) -> Student:
    """Load any saved student; its header says which family reads it."""
    return student_class(read_header(folder)["kind"]).load(folder)


__all__ = ["REGISTRY", "Student", "TrainingData", "load_student", "student_class"]
