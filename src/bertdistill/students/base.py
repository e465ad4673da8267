"""The student protocol every family implements, the data a student trains on, and the save header.

A student is fitted on training texts with gold labels and/or the teacher's logits, picks its own
hyper-parameters on val (never test), predicts logits and probabilities from raw strings, and saves to a
folder of safe files (JSON + npz / safetensors) that `load_student` can read back without unpickling.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import numpy as np

from bertdistill.config import StudentsConfig
from bertdistill.core import files
from bertdistill.errors import BertdistillError

if TYPE_CHECKING:  # a type only: loading the registry does not import scikit-learn
    from bertdistill.evaluation.metrics import Scorer

STUDENT_FORMAT = "bertdistill-student"


@dataclass(frozen=True)
class TrainingData:
    """What a student learns from: texts, gold labels (for baselines), teacher logits at T = 1 (distilled).
    A distilled student's transfer set may hold texts without gold labels: their labels are -1 (a row of -1 for
    multilabel), and only the teacher term of a loss uses them."""

    texts: list[str]
    labels: np.ndarray | None
    teacher_logits: np.ndarray | None
    task: str
    label_names: list[str]
    teacher_folder: Path | None = None  # neural students take the tokenizer and input embeddings from here


@runtime_checkable
class Student(Protocol):
    kind: ClassVar[str]  # registry name, e.g. "tfidf-soft-lr"
    role: ClassVar[str]  # "baseline" (gold labels) or "distilled" (teacher's soft targets)
    twin: ClassVar[str | None]  # for a distilled student: its hard-label baseline on the same features
    config_fields: ClassVar[tuple[str, ...]]  # the [students] fields it reads: only these retrain it when they change
    family: ClassVar[str]  # "tfidf" or "neural": which findings and budgets apply to it
    derived_from: ClassVar[str | None]  # made from another trained student of the run (an int8 export), or None
    shippable: ClassVar[bool]  # whether `bertdistill export` has a bundle format for it (ensembles need one)
    val_score_: float  # after fit: the headline metric on val it was selected by
    params_: dict  # after fit: the hyper-parameters it was selected with (for the leaderboard)

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        """Raise BertdistillError when a run is prepared if this student cannot train with `config` on `task`
        with the teacher whose (resolved) backbone is `teacher`: fail before any fine-tuning or labeling."""
        ...

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None) -> "Student":
        """Train, choosing hyper-parameters / early stopping on val; `checkpoint_dir` makes it resumable."""
        ...

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        ...

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        ...

    def save(self, folder: Path) -> None:
        ...

    @classmethod
    def load(cls, folder: Path) -> "Student":
        ...

    @property
    def n_params(self) -> int:
        ...


@runtime_checkable
class StackableStudent(Protocol):
    """A linear student on shared sparse features (the TF-IDF ones): an ensemble of several with the same
    `feature_key_` featurizes a text once and stacks their weights into one sparse model."""

    feature_key_: str | None  # students with equal keys share their featurizer
    sparse_: object  # students.sparse_linear.SparseLinear: featurizer + (k, d) weights


def write_header(folder: Path, kind: str, task: str, label_names: list[str], **extra) -> None:
    files.write_json(Path(folder) / "bertdistill.json", {
        "format": STUDENT_FORMAT, "version": files.FORMAT_VERSION, "kind": kind, "task": task,
        "label_names": label_names, **extra})


def read_header(folder: Path) -> dict:
    return files.read_header(folder, STUDENT_FORMAT, "a bertdistill student")


def require(data: TrainingData, field: str, kind: str) -> np.ndarray:
    value = getattr(data, field)
    if value is None:
        raise BertdistillError(f"student '{kind}' needs {field.replace('_', ' ')} to train")
    return value
