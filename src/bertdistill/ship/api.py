"""Use a trained model of a run without the pipeline: `bertdistill.load(run_dir, name)`.

Any row of the run's leaderboard loads by name: a student, an ensemble (with only its members), the teacher or
its ONNX Runtime exports. Without a name, the recommended model loads (`recommended`). What comes back predicts
label names from raw strings and carries its held-out leaderboard entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.names import TEACHER_ROWS, is_multilabel

VAL_TOLERANCE = 0.005  # val scores this close to the best count as a tie, which the faster model wins


@dataclass
class Model:
    """One trained model of a run. `predict` gives label names (multilabel: a list per text, cut at the
    per-label thresholds the evaluation tuned on val), `predict_proba` an (n, k) array in `label_names` order."""

    name: str
    model: Any
    task: str
    label_names: list[str]
    leaderboard: dict | None  # its leaderboard.json entry: test metrics, fidelity, latency (None before evaluate)

    @property
    def thresholds(self) -> np.ndarray | None:
        found = (self.leaderboard or {}).get("thresholds")
        return None if found is None else np.asarray(found, dtype=np.float64)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(_as_texts(texts)), dtype=np.float64)

    def predict(self, texts: list[str]) -> list:
        return self.labels_of(self.predict_proba(texts))

    def labels_of(self, probs: np.ndarray) -> list:
        """The labels `predict` gives for these (n, k) probabilities."""
        return predicted_labels(probs, self.task, self.label_names, self.thresholds)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {self.task}, labels={self.label_names})"


def load(run_dir: Path | str, name: str | None = None) -> Model:
    """The model `name` of the run in `run_dir`, or the recommended one; BertdistillError naming what is missing."""
    from bertdistill import pipeline

    run_dir = Path(run_dir)
    for required in ("config.json", "dataset.json"):
        if not (run_dir / required).exists():
            raise BertdistillError(f"{run_dir}: no {required}; give the directory of a bertdistill run")
    run = pipeline.Run(config_from_dict(files.read_json(run_dir / "config.json"), str(run_dir / "config.json")),
                       run_dir)
    entries = read_leaderboard(run_dir)
    if name is None:
        name = recommended(entries, run_dir)
    summary = files.read_json(run_dir / "dataset.json")
    entry = next((e for e in entries if e["name"] == name), None)
    return Model(name, pipeline.load_model(run, name), summary["task"], summary["label_names"], entry)


def read_leaderboard(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "leaderboard.json"
    return files.read_json(path) if path.exists() else []


def recommended(entries: list[dict], run_dir: Path | str = "the run") -> str:
    """The model to ship, chosen on val (never test): among students and ensembles, the best val score; of those
    within VAL_TOLERANCE of it, the fastest single-text p50."""
    candidates = [e for e in entries if e["name"] not in TEACHER_ROWS and e.get("val_score") is not None
                  and (e.get("latency_ms") or {}).get("p50") is not None]
    if not candidates:
        raise BertdistillError(f"{run_dir}: no evaluated student to recommend; run `bertdistill evaluate`, "
                               "or name a model")
    best = max(e["val_score"] for e in candidates)
    near = [e for e in candidates if e["val_score"] >= best - VAL_TOLERANCE]
    return min(near, key=lambda e: e["latency_ms"]["p50"])["name"]


def predicted_labels(probs: np.ndarray, task: str, label_names: list[str],
                     thresholds: np.ndarray | None = None) -> list:
    """Label names from (n, k) probabilities: the argmax (multiclass); every label at or above its threshold,
    0.5 by default (multilabel)."""
    if not is_multilabel(task):
        return [label_names[i] for i in np.argmax(probs, axis=1)]
    cut = 0.5 if thresholds is None else thresholds
    return [[name for name, on in zip(label_names, row >= cut) if on] for row in probs]


def _as_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("give a list of texts, e.g. model.predict([text]), not a single string")
    return list(texts)
