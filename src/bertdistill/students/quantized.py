"""Int8 neural students: a trained PyTorch student exported to ONNX and dynamically quantized for ONNX Runtime.

`<student>-int8` (e.g. `minibert-kd-int8`) is what you would ship when the fp32 student is still too slow: the
exported graph's MatMul weights int8 per channel, activations quantized per tensor at run time. Every weight is
int8 when that keeps >= 99% top-1 agreement with the fp32 student on val; otherwise each MatMul's outlier input
channels, found on 256 train texts run one at a time as served, stay fp32 (the teacher's recipe, core/int8.py).
The graph is not fused first: for a 2-layer mini-BERT on tweets, int8 after ONNX Runtime's BERT fusions
(QAttention) took 0.60 ms against 0.51 ms for the plain graph (2026-11-27, AMD EPYC, 1 thread).
Its quality is measured through the int8 graph itself, one text at a time exactly as a served request runs: a
padded batch would share one activation scale across its texts and give other numbers. The fp32 student it comes
from is reused when the run trained it with the same settings (`derived_from`); otherwise it is trained first.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from bertdistill.config import StudentsConfig
from bertdistill.core.int8 import calibration_sample, nothing_kept, quantize_int8
from bertdistill.evaluation.metrics import Scorer, fidelity, probabilities
from bertdistill.students.base import TrainingData, read_header, write_header
from bertdistill.students.neural import NeuralStudent, export_onnx, one_text_feed, onnx_session
from bertdistill.students.tokens import load_encoder

MODEL_FILE = "model.onnx"
VAL_AGREEMENT = 0.99  # top-1 agreement with the fp32 student on val that an all-int8 graph must keep


class QuantizedStudent:
    """Base of the `-int8` students; `quantized(family)` makes one per neural family."""

    source: ClassVar[type[NeuralStudent]]
    kind: ClassVar[str]
    role: ClassVar[str]
    twin: ClassVar[str | None] = None
    config_fields: ClassVar[tuple[str, ...]]
    derived_from: ClassVar[str]
    family: ClassVar[str] = "neural"
    shippable: ClassVar[bool] = True

    def __init__(self, config: StudentsConfig | None = None):
        self.config = config or StudentsConfig()

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        cls.source.check(config, task, teacher)

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None) -> "QuantizedStudent":
        student = self.source(self.config)
        student.kind = self.kind  # errors, progress and checkpoints name the student the user asked for
        student.fit(data, val_texts, val_labels, scorer, checkpoint_dir)
        return self.quantize(student, data, val_texts, val_labels, scorer)

    def quantize(self, student: NeuralStudent, data: TrainingData, val_texts: list[str], val_labels: np.ndarray,
                 scorer: Scorer) -> "QuantizedStudent":
        """Become the int8 export of a trained fp32 student (trained on `data`, whose texts calibrate the int8
        graph when whole-graph int8 is not faithful enough); val is scored through the int8 graph."""
        self.encoder_, self.task_, self.label_names_ = student.encoder_, student.task_, student.label_names_
        self.n_params_ = student.n_params
        fp32_val = student.predict_proba(val_texts)
        with tempfile.TemporaryDirectory() as tmp:
            fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            export_onnx(student.module_, str(fp32))
            calibration = [one_text_feed(ids) for ids in self.encoder_.encode(calibration_sample(data.texts))]
            for calibrate in (False, True):  # all-int8 first: the fastest, if faithful enough on val
                kept = quantize_int8(fp32, int8, calibration if calibrate else None)
                if calibrate and kept == nothing_kept():
                    break  # no outlier channels: the same graph again
                self.model_, kept_fp32 = int8.read_bytes(), kept
                self.session_ = onnx_session(self.model_)
                val_probs = self.predict_proba(val_texts)
                agreement = fidelity(fp32_val, val_probs, self.task_)["agreement"]
                if agreement >= VAL_AGREEMENT:
                    break
        self.val_score_ = scorer.score(val_labels, val_probs)
        self.params_ = {**student.params_, "fp32_val_score": student.val_score_,
                        "kept_fp32": kept_fp32, "val_agreement_with_fp32": agreement}
        return self

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        """One text at a time, as a served request runs."""
        rows = [self.session_.logits(ids) for ids in self.encoder_.encode(texts)]
        return np.concatenate(rows).astype(np.float32) if rows else np.empty((0, len(self.label_names_)), np.float32)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task_)

    @property
    def n_params(self) -> int:
        return self.n_params_

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder_.save(folder)
        (folder / MODEL_FILE).write_bytes(self.model_)
        write_header(folder, self.kind, self.task_, self.label_names_, params=self.params_,
                     val_score=self.val_score_, n_params=self.n_params_)

    @classmethod
    def load(cls, folder: Path) -> "QuantizedStudent":
        header = read_header(folder)
        student = cls()
        student.encoder_ = load_encoder(folder)
        student.task_, student.label_names_ = header["task"], header["label_names"]
        student.params_, student.val_score_ = header["params"], header["val_score"]
        student.n_params_ = header["n_params"]
        student.model_ = (Path(folder) / MODEL_FILE).read_bytes()
        student.session_ = onnx_session(student.model_)
        return student


def quantized(family: type[NeuralStudent]) -> type[QuantizedStudent]:
    """The `-int8` student of a neural family (same role and training settings)."""
    return type(f"Quantized{family.__name__}", (QuantizedStudent,), {
        "source": family, "kind": f"{family.kind}-int8", "role": family.role, "config_fields": family.config_fields,
        "twin": family.twin and f"{family.twin}-int8",
        "derived_from": family.kind, "__doc__": f"{family.kind} exported to ONNX Runtime with int8 weights."})
