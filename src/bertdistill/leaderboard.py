"""Evaluate every model of a run on the held-out test split: quality, fidelity to the teacher, cost.

Thresholds (multilabel) are tuned on val; test is read once per model, after everything is fixed.
"""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

import numpy as np
import sklearn
import torch
import transformers

from . import io
from .benchmark import benchmark_texts, limited_threads, single_text_latency, throughput
from .evaluate import fidelity, probabilities, tune_thresholds
from .pipeline import Run, load_models, teacher_logits


def evaluate_run(run: Run) -> list[dict]:
    """Build, save and return leaderboard.json (a list with one entry per model)."""
    dataset, scorer, settings = run.dataset, run.scorer, run.config.eval
    models = load_models(run)
    teacher_test = probabilities(teacher_logits(run, "test"), dataset.task)
    latency_texts = benchmark_texts(dataset.test.texts, settings.latency_texts)
    batch_texts = benchmark_texts(dataset.test.texts, settings.throughput_texts, seed=1)
    entries = []
    for name, model in models.items():
        if name == "teacher":  # quality from the cached logits: the same numbers the students learned from
            val_probs = probabilities(teacher_logits(run, "val"), dataset.task)
            test_probs = teacher_test
        else:
            val_probs, test_probs = model.predict_proba(dataset.val.texts), model.predict_proba(dataset.test.texts)
        thresholds = tune_thresholds(dataset.val.labels, val_probs) if dataset.task == "multilabel" else None
        with limited_threads(settings.threads):
            latency = single_text_latency(model.predict_proba, latency_texts, settings.warmup, name)
            rate = throughput(model.predict_proba, batch_texts, settings.throughput_batch)
        folder = run.teacher_dir if name == "teacher" else run.student_dir(name)
        entries.append({
            "name": name,
            "role": "teacher" if name == "teacher" else model.role,
            "kind": "teacher" if name == "teacher" else model.kind,
            "twin": None if name == "teacher" else model.twin,
            "metrics": scorer.report(dataset.test.labels, test_probs, thresholds),
            "val_score": scorer.score(dataset.val.labels, val_probs),
            "fidelity": fidelity(teacher_test, test_probs, dataset.task),
            "latency_ms": latency,
            "throughput_per_s": rate,
            "size_bytes": io.dir_size(folder),
            "n_params": model.n_params,
            "hyperparameters": None if name == "teacher" else model.params_,
            "thresholds": None if thresholds is None else thresholds.tolist(),
        })
    _add_comparisons(entries, scorer.metric)
    io.write_json(run.out / "leaderboard.json", entries)
    io.write_json(run.out / "environment.json", environment(settings.threads))
    return entries


def _add_comparisons(entries: list[dict], metric: str) -> None:
    """Speed-up against the teacher and the gain of each distilled student over its hard-label twin."""
    by_name = {entry["name"]: entry for entry in entries}
    teacher = by_name["teacher"]
    for entry in entries:
        entry["speedup_vs_teacher"] = teacher["latency_ms"]["p50"] / entry["latency_ms"]["p50"]
        twin = by_name.get(entry["twin"] or "")
        entry["gain_vs_twin"] = None if twin is None else entry["metrics"][metric] - twin["metrics"][metric]


def environment(threads: int) -> dict:
    """Where and how the numbers were measured; quoted next to every table."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "threads": threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
