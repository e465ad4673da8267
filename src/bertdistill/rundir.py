"""A run directory (`Run`) and the checks that fail a run before any work, without importing PyTorch.

`check` reads the config's dataset and checks every setting that names something (metric classes, students,
ensembles, transfer corpora, the teacher's architecture and labels), so that a bad config or dataset answers in
well under a second; `pipeline.prepare` then makes the checks that need the heavy libraries.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bertdistill import transfer
from bertdistill.config import RunConfig
from bertdistill.data import Dataset, load_dataset
from bertdistill.errors import BertdistillError
from bertdistill.names import TEACHER_ROWS
from bertdistill.students import NAMES
from bertdistill.teacher import adoption, backbones, pretrained


@dataclass
class Run:
    config: RunConfig
    out: Path

    @cached_property
    def dataset(self) -> Dataset:
        return load_dataset(self.config.data)

    @cached_property
    def scorer(self):
        from bertdistill.evaluation.metrics import Scorer

        return Scorer.for_dataset(self.dataset, self.config.data.metric, self.config.data.metric_classes)

    @property
    def source(self) -> Path:
        """The run directory that holds the teacher and its soft labels."""
        return self.out

    @property
    def teacher_dir(self) -> Path:
        return self.source / "teacher" / "model"

    @property
    def cache_dir(self) -> Path:
        return self.source / "soft_labels"

    def student_dir(self, name: str) -> Path:
        return self.out / "students" / name


@dataclass
class ChildRun(Run):
    """A run directory for retrained students (other seeds, other transfer sets) that reads the teacher and the
    soft labels of its parent run."""

    parent: Path | None = None

    @property
    def source(self) -> Path:
        return self.parent


def check(config: RunConfig, out: Path) -> Run:
    """Check what can be checked without the heavy libraries: data, metric classes, student and ensemble names,
    transfer corpora, the teacher's family and labels. Returns the run (its dataset loaded)."""
    run = Run(config, Path(out))
    dataset = run.dataset
    for name in config.data.metric_classes or []:
        if name not in dataset.label_names:
            raise BertdistillError(f"data.metric_classes: no class '{name}' "
                                   f"(classes: {', '.join(dataset.label_names)})")
    for name in config.students.include:
        if name not in NAMES:
            raise BertdistillError(f"unknown student '{name}' (known: {', '.join(NAMES)})")
    check_ensembles(config.ensembles, config.students.include)
    transfer.check(config.transfer, config.data)
    teacher_source(run)
    return run


def check_ensembles(specs, student_names: list[str]) -> None:
    """Ensemble names are unique and new, and members are configured students."""
    taken = {*TEACHER_ROWS, *student_names}
    for spec in specs:
        if spec.name in taken:
            raise BertdistillError(f"ensembles: the name '{spec.name}' is already used by another model or ensemble")
        taken.add(spec.name)
        unknown = [name for name in spec.members or [] if name not in student_names]
        if unknown:
            raise BertdistillError(f"ensemble '{spec.name}': member(s) {', '.join(unknown)} not in students.include "
                                   f"({', '.join(student_names)})")


def teacher_source(run: Run) -> str:
    """The folder (or hub name) of the teacher the run will use, checked to be of a family the adapters know:
    the run's fine-tuned teacher, the `reuse` classifier, or the backbone to fine-tune."""
    config = run.config.teacher
    if (run.teacher_dir / "bertdistill.json").exists():
        return str(run.teacher_dir)
    if config.reuse:
        source = adoption.resolve(config.reuse)
        backbones.check(source, f"teacher.reuse = {config.reuse}")
        adoption.label_columns(backbones.read_config(source), run.dataset.label_names, config.label_map,
                               f"teacher.reuse = {config.reuse}")
        return source
    source = pretrained.resolve(config.backbone)
    backbones.check(source, f"teacher.backbone = {config.backbone}")
    return source
