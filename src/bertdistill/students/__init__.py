"""Student families, registered by name. Adding a family: one module and one line in REGISTRY."""
from __future__ import annotations

from pathlib import Path

from ..errors import BertdistillError
from .base import Student, TrainingData, read_header
from .bilstm import BiLSTMStudent, DistilledBiLSTMStudent
from .cnn import CNNStudent, DistilledCNNStudent
from .fasttext import DistilledFastTextStudent, FastTextStudent
from .linear import TfidfLogisticRegression, TfidfLogitRidge, TfidfSoftLogisticRegression
from .minibert import DistilledMiniBertStudent, MiniBertStudent
from .neural import NeuralStudent
from .quantized import quantized

REGISTRY: dict[str, type] = {
    TfidfLogisticRegression.kind: TfidfLogisticRegression,
    TfidfSoftLogisticRegression.kind: TfidfSoftLogisticRegression,
    TfidfLogitRidge.kind: TfidfLogitRidge,
    FastTextStudent.kind: FastTextStudent,
    DistilledFastTextStudent.kind: DistilledFastTextStudent,
    CNNStudent.kind: CNNStudent,
    DistilledCNNStudent.kind: DistilledCNNStudent,
    BiLSTMStudent.kind: BiLSTMStudent,
    DistilledBiLSTMStudent.kind: DistilledBiLSTMStudent,
    MiniBertStudent.kind: MiniBertStudent,
    DistilledMiniBertStudent.kind: DistilledMiniBertStudent,
}
# every neural family also as `<name>-int8`: its ONNX Runtime export with int8 weights (students/quantized.py)
REGISTRY.update({family.kind + "-int8": quantized(family) for family in list(REGISTRY.values())
                 if issubclass(family, NeuralStudent)})


def student_class(kind: str) -> type:
    if kind not in REGISTRY:
        raise BertdistillError(f"unknown student '{kind}' (known: {', '.join(REGISTRY)})")
    return REGISTRY[kind]


def load_student(folder: Path) -> Student:
    """Load any saved student; its header says which family reads it."""
    return student_class(read_header(folder)["kind"]).load(folder)


__all__ = ["REGISTRY", "Student", "TrainingData", "load_student", "student_class"]
