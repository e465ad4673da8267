"""The stages in order — teacher, label, students, evaluate, report — each resumable from the run directory.

Layout of a run directory:
  config.json            the resolved configuration
  dataset.json           label names and split sizes
  teacher/model/         the chosen teacher; teacher/checkpoints/epoch-N/ one per epoch
  soft_labels/*.npz      teacher logits keyed by (teacher, texts)
  students/<name>/       one folder per student
  leaderboard.json       one entry per model, evaluated on the test split
  report.md, report.html, quality_vs_latency.png
Everything is validated (config, data, backbone, student names) before the directory is created.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import io, soft_labels
from .config import RunConfig
from .data import Dataset, load_dataset
from .errors import BertdistillError
from .evaluate import Scorer
from .students import TrainingData, load_student, student_class
from .teacher import MODEL_FORMAT, Teacher, fine_tune, load_tokenizer


@dataclass
class Run:
    config: RunConfig
    out: Path

    @cached_property
    def dataset(self) -> Dataset:
        return load_dataset(self.config.data)

    @cached_property
    def scorer(self) -> Scorer:
        return Scorer.for_dataset(self.dataset, self.config.data.metric, self.config.data.metric_classes)

    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher" / "model"

    @property
    def cache_dir(self) -> Path:
        return self.out / "soft_labels"

    def student_dir(self, name: str) -> Path:
        return self.out / "students" / name


def prepare(config: RunConfig, out: Path) -> Run:
    """Check everything that can be checked before any work: data, metric classes, students, backbone."""
    run = Run(config, Path(out))
    dataset = run.dataset
    for name in config.data.metric_classes or []:
        if name not in dataset.label_names:
            raise BertdistillError(f"data.metric_classes: no class '{name}' (classes: {', '.join(dataset.label_names)})")
    for name in config.students.include:
        student_class(name)
    if config.teacher.reuse:
        if not Path(config.teacher.reuse, "config.json").exists():
            raise BertdistillError(f"teacher.reuse: {config.teacher.reuse} is not a model folder (no config.json)")
    elif not (run.teacher_dir / "bertdistill.json").exists():
        load_tokenizer(config.teacher.backbone)
    return run


def start(run: Run) -> None:
    """Create the run directory and record the configuration; refuse to mix two teachers in one directory."""
    saved = run.out / "config.json"
    if saved.exists() and (run.teacher_dir / "bertdistill.json").exists():
        before = io.read_json(saved)
        for section in ("data", "teacher"):
            if before.get(section) != run.config.model_dump(mode="json")[section]:
                raise BertdistillError(f"{run.out} holds a run with a different [{section}] config; "
                                       "choose another --out or delete that directory")
    io.write_json(saved, run.config.model_dump(mode="json"))
    io.write_json(run.out / "dataset.json", run.dataset.summary())


def train_teacher(run: Run) -> Path:
    if run.config.teacher.reuse:
        return adopt_teacher(run, Path(run.config.teacher.reuse))
    return fine_tune(run.dataset, run.config.teacher, run.scorer, run.out / "teacher")


def adopt_teacher(run: Run, source: Path) -> Path:
    """Copy an already fine-tuned classifier (bertdistill's or any HF one with matching labels) into the run."""
    if (run.teacher_dir / "bertdistill.json").exists():
        return run.teacher_dir
    config = io.read_json(source / "config.json")
    labels = len(config.get("id2label", {})) or config.get("num_labels")
    if labels != run.dataset.num_labels:
        raise BertdistillError(f"teacher.reuse: {source} predicts {labels} labels, the data has "
                               f"{run.dataset.num_labels} ({', '.join(run.dataset.label_names)})")
    staging = run.out / "teacher" / ".model.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns("optimizer.*", "checkpoint*"))
    io.write_json(staging / "bertdistill.json", {
        "format": MODEL_FORMAT, "version": io.FORMAT_VERSION, "task": run.dataset.task,
        "label_names": run.dataset.label_names, "max_length": run.config.teacher.max_length,
        "backbone": str(source)})
    staging.rename(run.teacher_dir)
    return run.teacher_dir


def label(run: Run) -> dict[str, np.ndarray]:
    """Teacher logits for every split (train = the transfer set; val/test only to evaluate the teacher)."""
    if not (run.teacher_dir / "bertdistill.json").exists():
        raise BertdistillError(f"{run.teacher_dir}: no teacher yet; run `bertdistill teacher` first")
    teacher = Teacher(run.teacher_dir, run.config.teacher.device)
    return {split: soft_labels.teacher_logits(teacher, run.dataset.split(split).texts, run.cache_dir,
                                              run.config.teacher.label_batch_size)
            for split in ("train", "val", "test")}


def teacher_logits(run: Run, split: str) -> np.ndarray:
    return soft_labels.load_cached(run.teacher_dir, run.dataset.split(split).texts, run.cache_dir)


def train_students(run: Run) -> list[str]:
    """Fit every configured student not already saved in the run; returns their names."""
    data = TrainingData(run.dataset.train.texts, run.dataset.train.labels, teacher_logits(run, "train"),
                        run.dataset.task, run.dataset.label_names)
    for name in run.config.students.include:
        folder = run.student_dir(name)
        if (folder / "bertdistill.json").exists():
            print(f"student {name}: already trained ({folder})")
            continue
        student = student_class(name)(run.config.students)
        student.fit(data, run.dataset.val.texts, run.dataset.val.labels, run.scorer)
        staging = folder.with_name(f".{name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        student.save(staging)
        staging.rename(folder)
        print(f"student {name}: val {run.scorer.metric} = {student.val_score_:.4f} with {student.params_}")
    return list(run.config.students.include)


def load_models(run: Run) -> dict:
    """Every trained model of the run by name: the teacher first, then the students in config order."""
    models = {"teacher": Teacher(run.teacher_dir, "cpu")}
    for name in run.config.students.include:
        if not (run.student_dir(name) / "bertdistill.json").exists():
            raise BertdistillError(f"student '{name}' is not trained in {run.out}; run `bertdistill students`")
        models[name] = load_student(run.student_dir(name))
    return models
