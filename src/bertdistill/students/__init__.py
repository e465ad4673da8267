"""Student families, registered by name. Adding a family: one module and one line in FAMILIES.

The registry names each family's module without importing it, so that checking a config (an unknown student
name) or loading one TF-IDF student does not import PyTorch: a family's module is imported when it is first used.
"""
from __future__ import annotations

from functools import cache
from importlib import import_module
from pathlib import Path

from bertdistill.errors import BertdistillError
from bertdistill.students.base import Student, TrainingData, read_header

FAMILIES: dict[str, str] = {  # name -> "module:Class" under bertdistill.students
    "tfidf-lr": "linear:TfidfLogisticRegression",
    "tfidf-soft-lr": "linear:TfidfSoftLogisticRegression",
    "tfidf-logit-ridge": "linear:TfidfLogitRidge",
    "fasttext": "fasttext:FastTextStudent",
    "fasttext-kd": "fasttext:DistilledFastTextStudent",
    "cnn": "cnn:CNNStudent",
    "cnn-kd": "cnn:DistilledCNNStudent",
    "bilstm": "bilstm:BiLSTMStudent",
    "bilstm-kd": "bilstm:DistilledBiLSTMStudent",
    "minibert": "minibert:MiniBertStudent",
    "minibert-kd": "minibert:DistilledMiniBertStudent",
    "minibert-full": "minibert:FullMiniBertStudent",
    "minibert-full-kd": "minibert:DistilledFullMiniBertStudent",
    "static": "static:StaticStudent",
    "static-kd": "static:DistilledStaticStudent",
    "fasttext-lib": "fasttext_lib:FastTextLibStudent",
    "fasttext-lib-relabel": "fasttext_lib:RelabelledFastTextLibStudent",
    "fasttext-lib-ftz": "fasttext_lib:QuantizedFastTextLibStudent",
}
# these neural families are also registered as `<name>-int8`: their ONNX Runtime export with int8 weights
# (students/quantized.py); the static ones are not (no matrix products to quantize but the head)
QUANTIZABLE = ("fasttext", "fasttext-kd", "cnn", "cnn-kd", "bilstm", "bilstm-kd", "minibert", "minibert-kd",
               "minibert-full", "minibert-full-kd")
INT8 = "-int8"
NAMES: tuple[str, ...] = (*FAMILIES, *(name + INT8 for name in QUANTIZABLE))


@cache
def student_class(kind: str) -> type:
    """The class of the student `kind`, its module imported now."""
    if kind not in NAMES:
        raise BertdistillError(f"unknown student '{kind}' (known: {', '.join(NAMES)})")
    if kind.endswith(INT8) and kind.removesuffix(INT8) in QUANTIZABLE:
        from bertdistill.students.quantized import quantized

        return quantized(student_class(kind.removesuffix(INT8)))
    module, name = FAMILIES[kind].split(":")
    return getattr(import_module(f"bertdistill.students.{module}"), name)


def registry() -> dict[str, type]:
    """Every registered student class by name (imports every family)."""
    return {name: student_class(name) for name in NAMES}


def load_student(folder: Path) -> Student:
    """Load any saved student; its header says which family reads it."""
    return student_class(read_header(folder)["kind"]).load(folder)


__all__ = ["FAMILIES", "NAMES", "QUANTIZABLE", "Student", "TrainingData", "load_student", "registry",
           "student_class"]
