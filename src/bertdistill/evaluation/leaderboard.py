"""Evaluate every model of a run on the held-out test split: quality, fidelity to the teacher, calibration, cost.

The models: the PyTorch teacher, the same teacher exported to ONNX Runtime fp32 and int8 (reference rows a user
would otherwise ship), every student and every ensemble. Thresholds (multilabel) are tuned on val; test is read
once per model, after everything is fixed. Writes leaderboard.json (one entry per model), diagnostics.json
(calibration bins, paired bootstrap intervals, dark-knowledge examples, ensembles that came out empty),
test_probs.npz (each model's test probabilities) and environment.json.
"""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

import numpy as np
import onnxruntime
import sklearn
import torch
import transformers

from bertdistill.core import files
from bertdistill.ensembles.ensemble import empty_results
from bertdistill.evaluation.calibration import reliability
from bertdistill.evaluation.latency import benchmark_texts, limited_threads, single_text_latency, throughput
from bertdistill.evaluation.metrics import dark_knowledge_rows, fidelity, probabilities, tune_thresholds
from bertdistill.evaluation.stats import paired_bootstrap
from bertdistill.names import TEACHER, TEACHER_INT8, TEACHER_ROWS, is_multilabel
from bertdistill.pipeline import Run, load_models, teacher_logits, trained_with
from bertdistill.teacher.onnx_export import export_teacher

DARK_KNOWLEDGE_TEMPERATURES = (1.0, 2.0, 4.0)
BOOTSTRAP_RESAMPLES = 1000


def evaluate_run(run: Run) -> list[dict]:
    """Build, save and return leaderboard.json (a list with one entry per model)."""
    load = os.getloadavg()[0]  # other work on the machine while timing: quoted with the numbers
    export_teacher(run.teacher_dir, run.out / "teacher", run.dataset.train.texts)
    models = load_models(run)  # teacher, its ONNX exports, students, ensembles
    teacher_val, teacher_test = (probabilities(teacher_logits(run, split), run.dataset.task)
                                 for split in ("val", "test"))
    entries, test_probs = [], {}
    for name, model in models.items():
        entry, test_probs[name] = evaluate_model(run, name, model, teacher_val, teacher_test)
        entries.append(entry)
    add_comparisons(entries, run.scorer.metric)
    diagnostics = diagnose(run, entries, test_probs)
    files.write_json(run.out / "leaderboard.json", entries)
    files.write_json(run.out / "diagnostics.json", diagnostics)
    files.write_npz(run.out / "test_probs.npz", **test_probs)
    files.write_json(run.out / "environment.json", {**environment(run.config.eval.threads), "load_average": load})
    return entries


def evaluate_model(run: Run, name: str, model, teacher_val: np.ndarray,
                   teacher_test: np.ndarray) -> tuple[dict, np.ndarray]:
    """One leaderboard entry and the model's test probabilities."""
    dataset, scorer, settings = run.dataset, run.scorer, run.config.eval
    if name == TEACHER:  # quality from the cached logits: the same numbers the students learned from
        val_probs, test_probs = teacher_val, teacher_test
    else:
        val_probs, test_probs = model.predict_proba(dataset.val.texts), model.predict_proba(dataset.test.texts)
    thresholds = tune_thresholds(dataset.val.labels, val_probs) if is_multilabel(dataset.task) else None
    with limited_threads(settings.threads):
        latency = single_text_latency(model.predict_proba, benchmark_texts(dataset.test.texts, settings.latency_texts),
                                      settings.warmup, name)
        rate = throughput(model.predict_proba, benchmark_texts(dataset.test.texts, settings.throughput_texts, seed=1),
                          settings.throughput_batch, name)
    teacher_row = name in TEACHER_ROWS
    entry = {
        "name": name,
        "role": "teacher" if teacher_row else model.role,
        "kind": TEACHER if name == TEACHER else model.kind,
        "twin": None if teacher_row else model.twin,
        "family": TEACHER if teacher_row else model.family,
        "derived_from": None if teacher_row else model.derived_from,  # an int8 student's source
        "metrics": scorer.report(dataset.test.labels, test_probs, thresholds),
        "val_score": scorer.score(dataset.val.labels, val_probs),
        "fidelity": fidelity(teacher_test, test_probs, dataset.task),
        "val_agreement": fidelity(teacher_val, val_probs, dataset.task)["agreement"],
        "ece": reliability(dataset.test.labels, test_probs, dataset.task)["ece"],
        "latency_ms": latency,
        "throughput_per_s": rate,
        "size_bytes": model_size(run, name, model),
        "n_params": model.n_params,
        "train_seconds": None if teacher_row or model.role == "ensemble" else
        trained_with(run.student_dir(name)).get("train_seconds"),
        "hyperparameters": None if name == TEACHER else model.params_,
        "thresholds": None if thresholds is None else thresholds.tolist(),
    }
    return entry, test_probs


def model_size(run: Run, name: str, model) -> int:
    """Bytes on disk needed to run the model: an ensemble counts its members' folders too."""
    if name == TEACHER:
        return files.dir_size(run.teacher_dir)
    if name in TEACHER_ROWS:
        return files.dir_size(model.folder)
    if model.role == "ensemble":
        members = sum(files.dir_size(run.student_dir(m)) for m in model.members)
        return files.dir_size(run.out / "ensembles" / name) + members
    return files.dir_size(run.student_dir(name))


def add_comparisons(entries: list[dict], metric: str) -> None:
    """Speed-up against each teacher row present, and each distilled student's gain over its hard-label twin."""
    by_name = {entry["name"]: entry for entry in entries}
    references = {name: by_name[name]["latency_ms"]["p50"] for name in TEACHER_ROWS if name in by_name}
    for entry in entries:
        entry["speedups"] = {name: p50 / entry["latency_ms"]["p50"] for name, p50 in references.items()}
        entry["speedup_vs_teacher"] = entry["speedups"][TEACHER]
        twin = by_name.get(entry["twin"] or "")
        entry["gain_vs_twin"] = None if twin is None else entry["metrics"][metric] - twin["metrics"][metric]


def diagnose(run: Run, entries: list[dict], test_probs: dict[str, np.ndarray]) -> dict:
    """Calibration per model, paired bootstrap intervals, dark-knowledge examples, empty ensembles."""
    labels, task = run.dataset.test.labels, run.dataset.task
    return {
        "calibration": {name: reliability(labels, probs, task) for name, probs in test_probs.items()},
        "comparisons": comparisons(run, entries, test_probs),
        "dark_knowledge": dark_knowledge(run, test_probs),
        "empty_ensembles": empty_results(run.config.ensembles, run.out / "ensembles"),
    }


def comparisons(run: Run, entries: list[dict], test_probs: dict[str, np.ndarray]) -> list[dict]:
    """95% paired bootstrap intervals on test for: distilled vs hard-label twin, ensemble vs teacher, int8 vs fp32
    teacher. Each interval is also stored on the first model's entry (ci_vs_twin / ci_vs_teacher)."""
    labels, score = run.dataset.test.labels, run.scorer.resampled
    pairs = [(e, e["twin"], "ci_vs_twin") for e in entries if e["twin"] in test_probs]
    pairs += [(e, "teacher", "ci_vs_teacher") for e in entries
              if e["role"] == "ensemble" or e["name"] == TEACHER_INT8]
    results = []
    for entry, other, field in pairs:
        interval = paired_bootstrap(labels, test_probs[entry["name"]], test_probs[other], score,
                                    resamples=BOOTSTRAP_RESAMPLES)
        entry[field] = interval
        results.append({"model": entry["name"], "versus": other, "metric": run.scorer.metric, **interval})
    return results


def dark_knowledge(run: Run, test_probs: dict[str, np.ndarray]) -> dict:
    """A few test texts with the teacher's full distribution at several temperatures next to every student's."""
    logits, dataset = teacher_logits(run, "test"), run.dataset
    rows = dark_knowledge_rows(logits, dataset.task)
    examples = []
    for row in rows:
        gold = dataset.test.labels[row]
        examples.append({
            "text": dataset.test.texts[row],
            "gold": ([n for n, on in zip(dataset.label_names, gold) if on] if is_multilabel(dataset.task)
                     else dataset.label_names[int(gold)]),
            "teacher": {f"T={t:g}": probabilities(logits[row:row + 1], dataset.task, t)[0].tolist()
                        for t in DARK_KNOWLEDGE_TEMPERATURES},
            "models": {name: probs[row].tolist() for name, probs in test_probs.items() if name not in TEACHER_ROWS},
        })
    return {"label_names": dataset.label_names, "task": dataset.task, "examples": examples}


def environment(threads: int) -> dict:
    """Where and how the numbers were measured; quoted next to every table."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "threads": threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnxruntime": onnxruntime.__version__, "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__},
    }


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
