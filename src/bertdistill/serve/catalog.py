"""The models of one run, loaded once at start-up, and the per-text comparisons the API returns.

Whatever `pipeline.load_models` returns is served, so a new kind of model (an ensemble, a neural student) appears
without a change here: a model only needs `predict_proba(list[str]) -> (n, k)`, and `role` / `kind` / `twin` if
it has them. The teacher (always named "teacher") also gives its raw logits, which the page softens at any
temperature. Each model has a lock: Hugging Face fast tokenizers must not be called from two threads at once, and
the lock keeps a model's measured time free of another request's work on the same model.

A request's time is meant to be read next to the leaderboard's p50, so the models run as they were measured: at the
leaderboard's thread count (on a busy machine two torch threads can be many times slower than one) and warmed up
like the measurement (a torch model takes some ten calls before its time settles).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from scipy.special import rel_entr
from threadpoolctl import threadpool_limits

from bertdistill.config import DataConfig, config_from_dict
from bertdistill.core import files
from bertdistill.data.load import data_dirs
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer, fidelity, probabilities
from bertdistill.names import is_multilabel
from bertdistill.pipeline import Run, load_models
from bertdistill.report import chart
from bertdistill.serve.schemas import MAX_TEXT_CHARS
from bertdistill.ship.api import predicted_labels

TEACHER = "teacher"
QUICK_MS = 2.0  # a prediction expected to take less runs on the event loop: a thread-pool hop would cost as much
MIN_WARMUP_CALLS = 3
WARMUP_TEXTS = ["ok", "warming up the models before the first request",
                "a longer text, so that the models also see a few dozen tokens before the first request: " * 3]


class UnknownModel(LookupError):
    """A model name that the run does not have; the message lists the ones it has."""


@dataclass
class ServedModel:
    name: str
    model: Any
    role: str
    kind: str
    twin: str | None = None
    thresholds: np.ndarray | None = None  # multilabel, tuned on val by the evaluation
    leaderboard: dict | None = None  # this model's leaderboard.json entry
    single_text_ms: float = math.inf  # fastest single-text time seen at warm-up
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, texts: list[str], task: str) -> tuple[np.ndarray, np.ndarray | None, float]:
        """(n, k) probabilities, the teacher's (n, k) logits (None for other models), wall time in ms."""
        with self.lock:
            start = time.perf_counter()
            if self.name == TEACHER:
                logits = self.model.predict_logits(texts)
                probs = probabilities(logits, task)
            else:
                logits, probs = None, self.model.predict_proba(texts)
            elapsed_ms = (time.perf_counter() - start) * 1e3
        return np.asarray(probs, dtype=np.float64), logits, elapsed_ms

    def labels(self, probs: np.ndarray, task: str, label_names: list[str]) -> list[str]:
        """The predicted label(s) of one (k,) probability vector, as a list for either task."""
        labels = predicted_labels(probs[None, :], task, label_names, self.thresholds)[0]
        return labels if is_multilabel(task) else [labels]


@dataclass
class Catalog:
    """A loaded run: its models by name (teacher first), labels, examples and leaderboard."""

    name: str
    dataset: str
    task: str
    label_names: list[str]
    metric: str
    models: dict[str, ServedModel]
    examples: list[dict] = field(default_factory=list)
    environment: dict | None = None
    plot: Path | None = None
    leaderboard: list[dict] = field(default_factory=list)  # every leaderboard.json entry, served or not

    @classmethod
    def load(cls, run_dir: Path, n_examples: int = 6) -> "Catalog":
        """Read the run directory and load every model once, at the thread count the leaderboard was measured at,
        then warm them up; raises BertdistillError naming what is missing."""
        run_dir = Path(run_dir)
        for required in ("config.json", "dataset.json"):
            if not (run_dir / required).exists():
                raise BertdistillError(f"{run_dir}: no {required}; give the directory of a bertdistill run")
        config = config_from_dict(files.read_json(run_dir / "config.json"), str(run_dir / "config.json"))
        run = Run(config.model_copy(update={"data": data_found_from(config.data, run_dir)}), run_dir)
        summary = files.read_json(run_dir / "dataset.json")
        environment = _read_optional(run_dir / "environment.json")
        pin_threads((environment or {}).get("threads") or config.eval.threads)
        task, label_names = summary["task"], summary["label_names"]
        scorer = Scorer.for_dataset(SimpleNamespace(task=task, label_names=label_names), run.config.data.metric,
                                    run.config.data.metric_classes)
        entries = [_finite(entry) for entry in _read_optional(run_dir / "leaderboard.json") or []]
        by_name = {entry["name"]: entry for entry in entries}
        models = {name: _served(name, model, by_name.get(name)) for name, model in load_models(run).items()}
        plot = run_dir / "quality_vs_latency.png"
        catalog = cls(run.config.name, summary["name"], task, label_names, scorer.metric, models,
                      _examples(run, n_examples), environment, plot if plot.exists() else None, entries)
        catalog.warm_up(max(MIN_WARMUP_CALLS, config.eval.warmup))
        return catalog

    def warm_up(self, calls: int) -> None:
        """Run every model, the teacher too, on `calls` single texts of varied length (as the leaderboard's
        measurement warms up), so that the first request's time is not a cold start. A model that cannot predict
        is left out with a message, so that one broken model does not take the others down with it."""
        texts = [example["text"] for example in self.examples] + WARMUP_TEXTS
        for name, served in list(self.models.items()):
            try:
                served.single_text_ms = min(served.run([texts[i % len(texts)]], self.task)[2] for i in range(calls))
            except Exception as err:  # any failure of any model's own code
                if name == TEACHER:
                    raise
                print(f"serve: leaving out model '{name}': it fails to predict ({type(err).__name__}: {err})")
                del self.models[name]

    def is_quick(self, name: str, n_texts: int) -> bool:
        """Whether `name` on `n_texts` texts is expected to take under QUICK_MS (False for unknown names)."""
        served = self.models.get(name)
        return served is not None and served.single_text_ms * n_texts < QUICK_MS

    def resolve(self, names: list[str] | None) -> list[str]:
        """Requested names, deduplicated in order (default: all); unknown names raise UnknownModel."""
        if names is None:
            return list(self.models)
        unknown = [name for name in names if name not in self.models]
        if unknown:
            raise UnknownModel(f"unknown model {unknown[0]!r} (this run has: {', '.join(self.models)})")
        return list(dict.fromkeys(names))

    def predict(self, names: list[str] | None, texts: list[str], compare: bool = True) -> list[dict]:
        """One result per model (the teacher first when it runs), each with per-text predictions. A text longer
        than MAX_TEXT_CHARS is predicted on its first MAX_TEXT_CHARS characters, and its predictions say so."""
        chosen = self.resolve(names)
        if compare and TEACHER not in chosen:
            chosen.insert(0, TEACHER)
        elif TEACHER in chosen:
            chosen.insert(0, chosen.pop(chosen.index(TEACHER)))
        lengths = [len(text) for text in texts]
        kept = [text[:MAX_TEXT_CHARS] for text in texts]
        outputs = {name: self.models[name].run(kept, self.task) for name in chosen}
        teacher = outputs.get(TEACHER)
        return [self._result(self.models[name], *outputs[name], teacher, lengths) for name in chosen]

    def _result(self, served: ServedModel, probs: np.ndarray, logits: np.ndarray | None, elapsed_ms: float,
                teacher: tuple | None, lengths: list[int]) -> dict:
        predictions = []
        for row, row_probs in enumerate(probs):
            prediction = {"labels": served.labels(row_probs, self.task, self.label_names),
                          "probabilities": row_probs.tolist(),
                          "logits": None if logits is None else logits[row].tolist(),
                          "text_chars": lengths[row], "truncated": lengths[row] > MAX_TEXT_CHARS}
            if teacher is not None:  # the leaderboard's own definitions, on this one text
                agreement = fidelity(teacher[0][row:row + 1], probs[row:row + 1], self.task)
                prediction["cosine_to_teacher"] = agreement["cosine"]
                prediction["agreement_with_teacher"] = agreement["agreement"]
                prediction["js_divergence_to_teacher"] = js_divergence(teacher[0][row], row_probs, self.task)
            predictions.append(prediction)
        entry = served.leaderboard or {}
        return {"name": served.name, "role": served.role, "kind": served.kind, "time_ms": elapsed_ms,
                "time_ms_per_text": elapsed_ms / len(probs),
                "speedup_vs_teacher": None if teacher is None else teacher[2] / max(elapsed_ms, 1e-9),
                "leaderboard_p50_ms": (entry.get("latency_ms") or {}).get("p50"),
                "leaderboard_speedup_vs_teacher": entry.get("speedup_vs_teacher"),
                "predictions": predictions}

    def chart(self, width: int) -> str | None:
        """The leaderboard's quality-vs-latency chart as SVG, laid out for `width` px (None before evaluation)."""
        if not chart.plottable(self.leaderboard, self.metric):
            return None
        return chart.to_svg(chart.quality_vs_latency(self.leaderboard, self.metric, width))

    def model_infos(self) -> list[dict]:
        return [{"name": m.name, "role": m.role, "kind": m.kind, "twin": m.twin,
                 "thresholds": None if m.thresholds is None else m.thresholds.tolist(),
                 "leaderboard": None if m.leaderboard is None else summarise(m.leaderboard, self.metric)}
                for m in self.models.values()]


    def leaderboard_rows(self) -> list[dict]:
        """The whole leaderboard, in its own order, including rows of models not served (e.g. ONNX teachers)."""
        return [{"name": e["name"], "role": e.get("role", ""), "kind": e.get("kind", ""), "twin": e.get("twin"),
                 "served": e["name"] in self.models, **summarise(e, self.metric)} for e in self.leaderboard]


def js_divergence(teacher: np.ndarray, probs: np.ndarray, task: str) -> float:
    """Jensen-Shannon divergence in bits between two (k,) probability vectors: 0 for the same distribution, 1 for
    disjoint ones. Multilabel: the mean over labels of the divergence between the two per-label Bernoulli
    distributions (p, 1 - p). Unlike cosine similarity it tells models apart on two-class tasks, where every
    confident model's cosine to the teacher is about 0.999."""
    if is_multilabel(task):
        teacher, probs = np.stack([teacher, 1 - teacher], -1), np.stack([probs, 1 - probs], -1)  # (k, 2)
    middle = (teacher + probs) / 2
    per_distribution = (rel_entr(teacher, middle).sum(-1) + rel_entr(probs, middle).sum(-1)) / (2 * np.log(2))
    return float(np.clip(per_distribution, 0.0, 1.0).mean())


def pin_threads(threads: int) -> None:
    """Run torch and the BLAS / OpenMP pools at `threads` from now on, in this whole process."""
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def data_found_from(data: DataConfig, run_dir: Path) -> DataConfig:
    """The run's data settings, with a relative data directory anchored where the dataset is.

    Runs made before `pipeline.start` recorded the data directory absolute hold it as it was given (or leave it to
    the relative defaults, such as ../shared/data): relative to the folder the run was started from, which was not
    recorded. That folder is usually the run directory or one above it (runs/<name> in a project), so when the
    current directory does not have the data, the first of those that does is used."""
    path = Path(data.path).expanduser()
    if data.format == "hf" or path.is_absolute() or any((folder / path).exists() for folder in data_dirs(data)):
        return data
    relative = [folder for folder in data_dirs(data) if not folder.is_absolute()]
    for base in (run_dir.resolve(), *run_dir.resolve().parents):
        for folder in relative:
            if (base / folder / path).exists():
                return data.model_copy(update={"data_dir": str((base / folder).resolve())})
    return data


def summarise(entry: dict, metric: str) -> dict:
    """The leaderboard fields the API documents, read leniently so that older or newer entries still load."""
    metrics = entry.get("metrics") or {}
    fidelity_ = entry.get("fidelity") or {}
    latency = entry.get("latency_ms") or {}
    return {"metric": metric, "score": metrics.get(metric), "metrics": metrics,
            "agreement": fidelity_.get("agreement"), "cosine": fidelity_.get("cosine"),
            "latency_p50_ms": latency.get("p50"), "latency_p95_ms": latency.get("p95"),
            "throughput_per_s": entry.get("throughput_per_s"), "speedup_vs_teacher": entry.get("speedup_vs_teacher"),
            "gain_vs_twin": entry.get("gain_vs_twin"), "size_bytes": entry.get("size_bytes"),
            "n_params": entry.get("n_params")}


def _served(name: str, model: Any, entry: dict | None) -> ServedModel:
    entry = entry or {}
    role = entry.get("role") or (TEACHER if name == TEACHER else getattr(model, "role", "model"))
    kind = entry.get("kind") or (TEACHER if name == TEACHER else getattr(model, "kind", type(model).__name__))
    thresholds = entry.get("thresholds")
    return ServedModel(name, model, role, kind, entry.get("twin", getattr(model, "twin", None)),
                       None if thresholds is None else np.asarray(thresholds, dtype=np.float64), entry or None)


def _examples(run: Run, count: int) -> list[dict]:
    """Up to `count` short test texts, taking turns over the distinct gold labels so each class shows up."""
    try:
        test, names = run.dataset.test, run.dataset.label_names
    except BertdistillError as err:  # the run can be served where its data is not
        print(f"serve: no example texts ({err})")
        return []
    groups: dict[tuple, list[dict]] = {}
    for text, label in zip(test.texts, test.labels):
        if 20 <= len(text) <= 200:
            gold = [names[int(label)]] if not is_multilabel(run.dataset.task) else \
                [n for n, on in zip(names, label) if on]
            groups.setdefault(tuple(gold), []).append({"text": text, "gold": gold})
    queues = [groups[key] for key in sorted(groups)]
    picked = []
    for depth in range(count):
        picked += [queue[depth] for queue in queues if depth < len(queue)]
    return picked[:count]


def _read_optional(path: Path) -> Any:
    return files.read_json(path) if path.exists() else None


def _finite(value: Any) -> Any:
    """NaN / infinity (e.g. an undefined ROC-AUC) -> None: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
