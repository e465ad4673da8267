"""Student families, registered by name. Adding a family: one module and one line in REGISTRY."""
from __future__ import annotations

from pathlib import Path

from bertdistill.errors import BertdistillError
from bertdistill.students.base import Student, TrainingData, read_header
from bertdistill.students.bilstm import BiLSTMStudent, DistilledBiLSTMStudent
from bertdistill.students.cnn import CNNStudent, DistilledCNNStudent
from bertdistill.students.fasttext import DistilledFastTextStudent, FastTextStudent
from bertdistill.students.linear import TfidfLogisticRegression, TfidfLogitRidge, TfidfSoftLogisticRegression
from bertdistill.students.minibert import DistilledMiniBertStudent, MiniBertStudent
from bertdistill.students.neural import NeuralStudent
from bertdistill.students.quantized import quantized
from bertdistill.students.static import DistilledStaticStudent, StaticStudent

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
    StaticStudent.kind: StaticStudent,
    DistilledStaticStudent.kind: DistilledStaticStudent,
}
# every neural family also as `<name>-int8`: its ONNX Runtime export with int8 weights (students/quantized.py)
REGISTRY.update({family.kind + "-int8": quantized(family) for family in list(REGISTRY.values())
                 if issubclass(family, NeuralStudent) and family.quantizable})


def student_class(kind: str) -> type:
    if kind not in REGISTRY:
        raise BertdistillError(f"unknown student '{kind}' (known: {', '.join(REGISTRY)})")
    return REGISTRY[kind]


def load_student(folder: Path) -> Student:
    """Load any saved student; its header says which family reads it."""
    return student_class(read_header(folder)["kind"]).load(folder)


__all__ = ["REGISTRY", "Student", "TrainingData", "load_student", "student_class"]
