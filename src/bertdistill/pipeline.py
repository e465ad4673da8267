"""The stages in order — teacher, label, students, ensembles, evaluate, report — each resumable from the run
directory.

Layout of a run directory:
  config.json            the resolved configuration
  dataset.json           label names and split sizes
  teacher/model/         the chosen teacher; teacher/checkpoints/epoch-N/ one per epoch
  soft_labels/<key>/     teacher logits keyed by (teacher, backend, texts), in chunks with a manifest
  soft_labels/transfer-<key>.json   the transfer set: train texts + augmented + unlabelled (when configured)
  students/<name>/       one folder per student; trained_with.json records what it learned from (the [students]
                         settings its family reads, teacher, transfer set): a change retrains it
  ensembles/<name>/      one JSON per ensemble: members and weights (the members stay in students/)
  teacher/onnx-fp32/, teacher/onnx-int8/   the teacher exported for ONNX Runtime (written by evaluate)
  leaderboard.json       one entry per model, evaluated on the test split; diagnostics.json, test_probs.npz
  report.md, report.html, quality_vs_latency.png, reliability.png
Everything is validated (config, data, backbone, student names) before the directory is created.
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from bertdistill import transfer
from bertdistill.config import RunConfig, StudentsConfig
from bertdistill.core import files
from bertdistill.core.processes import Shard
from bertdistill.data import locate_root
from bertdistill.ensembles import ensemble
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import fidelity, probabilities
from bertdistill.labels import soft_labels
from bertdistill.names import TEACHER
from bertdistill.rundir import Run, check, teacher_source
from bertdistill.students import TrainingData, load_student, student_class
from bertdistill.students.losses import UNLABELLED
from bertdistill.teacher import adoption, onnx_export
from bertdistill.teacher.model import Teacher, fine_tune, load_tokenizer


def prepare(config: RunConfig, out: Path) -> Run:
    """Check everything that can be checked before any work: first without PyTorch (`rundir.check`), then each
    student's settings against the task and teacher, and the teacher's tokenizer."""
    return ready(check(config, out))


def ready(run: Run) -> Run:
    """The checks of `prepare` that need the heavy libraries, on a run `rundir.check` has passed."""
    teacher = teacher_source(run)
    for name in run.config.students.include:  # e.g. a loss that does not fit the task, a source too shallow
        student_class(name).check(run.config.students, run.dataset.task, teacher)
    if not run.config.teacher.reuse and not (run.teacher_dir / "bertdistill.json").exists():
        load_tokenizer(run.config.teacher.backbone)
    return run


def start(run: Run, trains_teacher: bool = False) -> None:
    """Create the run directory and record the configuration; refuse to mix two teachers in one directory. More
    teacher epochs than the run trained is the same teacher trained on, accepted when this command `trains_teacher`."""
    saved = run.out / "config.json"
    if saved.exists() and (run.teacher_dir / "bertdistill.json").exists():
        before = files.read_json(saved)
        now = run.config.model_dump(mode="json")
        for section in ("data", "teacher"):
            defaults = _defaults(section)  # settings added since the run was made read as their default there
            saved_section = {**defaults, **(before.get(section) or {})}
            if trains_teacher and section == "teacher" and now["teacher"]["epochs"] > saved_section["epochs"]:
                saved_section["epochs"] = now["teacher"]["epochs"]  # more epochs: the teacher goes on training
            if _without_labeling(saved_section) != _without_labeling(now[section]):
                raise BertdistillError(f"{run.out} holds a run with a different [{section}] config; "
                                       "choose another --out or delete that directory")
    recorded = run.config.model_dump(mode="json")
    if run.config.data.format != "hf":  # record where the data was found, so that the run reads it from anywhere
        recorded["data"]["data_dir"] = str(locate_root(run.config.data))
    files.write_json(saved, recorded)
    files.write_json(run.out / "dataset.json", run.dataset.summary())


# how to label, keep checkpoints or where the data lives, not which teacher or data: may change within a run
LABELING_KEYS = ("label_batch_size", "label_backend", "keep_checkpoints", "checkpoint_minutes", "data_dir")


def _defaults(section: str) -> dict:
    model = RunConfig.model_fields[section].annotation
    return {name: field.default for name, field in model.model_fields.items() if not field.is_required()}


def _without_labeling(section: dict | None) -> dict | None:
    return None if section is None else {k: v for k, v in section.items() if k not in LABELING_KEYS}


def train_teacher(run: Run, shard: Shard = Shard()) -> Path:
    """Fine-tune the teacher (`shard`: this process's place under `accelerate launch`), or adopt a given one."""
    if run.config.teacher.reuse:
        return adopt_teacher(run, run.config.teacher.reuse)
    return fine_tune(run.dataset, run.config.teacher, run.scorer, run.out / "teacher", shard)


def adopt_teacher(run: Run, source: str) -> Path:
    """Copy an already fine-tuned classifier (bertdistill's or any HF one, labels matched by name) into the run."""
    if (run.teacher_dir / "bertdistill.json").exists():
        return run.teacher_dir
    config = run.config.teacher
    return adoption.adopt(adoption.resolve(source), run.teacher_dir, run.dataset.task, run.dataset.label_names,
                          config.max_length, config.label_map)


def label(run: Run, shard: Shard = Shard()) -> dict[str, np.ndarray]:
    """Teacher logits for val / test (by the PyTorch teacher, the reference the students are evaluated against),
    then for the transfer set, by the backend `choose_labeler` settles on. `shard`: this process's share under
    `accelerate launch`."""
    if not (run.teacher_dir / "bertdistill.json").exists():
        raise BertdistillError(f"{run.teacher_dir}: no teacher yet; run `bertdistill teacher` first")
    config = run.config.teacher
    teacher = Teacher(run.teacher_dir, config.device)
    logits = {split: soft_labels.teacher_logits(teacher, run.dataset.split(split).texts, run.cache_dir,
                                                config.label_batch_size, shard=shard) for split in ("val", "test")}
    backend, labeler = choose_labeler(run, teacher, logits["val"])
    key = soft_labels.teacher_key(run.teacher_dir, backend)
    logits["transfer"] = soft_labels.teacher_logits(labeler, transfer_set(run).texts, run.cache_dir,
                                                    config.label_batch_size, key=key, shard=shard)
    return logits


LABELER = "labeler.json"  # in the soft-label cache: which backend labeled the transfer set, and why
MIN_AGREEMENT = 0.99  # top-1 agreement with the PyTorch fp32 teacher on val that reduced precision must keep
FP32_OF = {"onnx-int8": "onnx", "torch-bf16": "torch"}  # reduced-precision backend -> its fp32 fallback


def choose_labeler(run: Run, teacher: Teacher, val_logits: np.ndarray):
    """(backend, labeler) for the transfer set: teacher.label_backend, except that a reduced-precision one (int8,
    bf16) labels only if it agrees with the PyTorch fp32 teacher on >= 99% of val (else its fp32 counterpart labels,
    with a message). The choice is recorded, so later stages read the same cache."""
    requested = run.config.teacher.label_backend
    if requested == "torch":
        return requested, teacher
    labeler = (teacher.in_bf16() if requested == "torch-bf16"  # the loaded weights, not a second copy
               else soft_labels.open_labeler(run.teacher_dir, requested, calibration_texts=run.dataset.train.texts))
    record = {"requested": requested, "backend": requested}
    if requested in FP32_OF:
        agreement = fidelity(probabilities(val_logits, run.dataset.task),
                             labeler.predict_proba(run.dataset.val.texts), run.dataset.task)["agreement"]
        record["val_agreement"] = agreement
        if agreement < MIN_AGREEMENT:
            record["backend"] = FP32_OF[requested]
            print(f"label: the {requested} teacher agrees with the PyTorch teacher on {agreement:.1%} of val "
                  f"(< {MIN_AGREEMENT:.0%}); {record['backend']} labels the transfer set instead")
            labeler = teacher if record["backend"] == "torch" else soft_labels.open_labeler(run.teacher_dir, "onnx")
    files.write_json(run.cache_dir / LABELER, record)
    return record["backend"], labeler


def labeling_backend(run: Run) -> str:
    """The backend whose logits of the transfer set the students learn from (see choose_labeler)."""
    requested = run.config.teacher.label_backend
    if requested == "torch" or not (run.cache_dir / LABELER).exists():
        return requested
    record = files.read_json(run.cache_dir / LABELER)
    return record["backend"] if record.get("requested") == requested else requested


def transfer_set(run: Run) -> transfer.TransferSet:
    """What the teacher labels for the students: the train texts, plus augmentations / corpora if configured."""
    mask_token = None
    if transfer.needs_mask_token(run.config.transfer):
        mask_token = load_tokenizer(str(run.teacher_dir)).mask_token
    dataset = run.dataset
    return transfer.build_transfer_set(dataset.train.texts, run.config.transfer, run.config.data, mask_token,
                                       run.cache_dir, held_out=dataset.val.texts + dataset.test.texts)


def transfer_logits(run: Run) -> tuple[transfer.TransferSet, np.ndarray]:
    """The transfer set and its cached teacher logits (row i of both is train row i for i < n_train)."""
    texts = transfer_set(run)
    return texts, soft_labels.load_cached(run.teacher_dir, texts.texts, run.cache_dir, labeling_backend(run))


def teacher_logits(run: Run, split: str) -> np.ndarray:
    if split == "train":
        texts, logits = transfer_logits(run)
        return logits[:texts.n_train]
    return soft_labels.load_cached(run.teacher_dir, run.dataset.split(split).texts, run.cache_dir)


def train_students(run: Run) -> list[str]:
    """Fit every configured student not already saved in the run; returns their names. Baselines learn from the
    gold-labelled train rows; distilled students from the whole transfer set, without labels when it has rows
    that have none."""
    texts, logits = transfer_logits(run)
    train = run.dataset.train
    gold = TrainingData(train.texts, train.labels, logits[:texts.n_train], run.dataset.task, run.dataset.label_names,
                        run.teacher_dir)
    distilled = gold if not texts.has_extra else TrainingData(
        texts.texts, _with_unlabelled(train.labels, len(texts.texts)), logits, run.dataset.task,
        run.dataset.label_names, run.teacher_dir)
    # students derived from another (`-int8`) come last, so that they can reuse the one the run trains
    for name in sorted(run.config.students.include, key=lambda name: student_class(name).derived_from is not None):
        folder = run.student_dir(name)
        student = student_class(name)(run.config.students)
        data = gold if student.role == "baseline" else distilled
        settings = training_settings(run, data.texts, student.config_fields)
        key = settings_key(settings)
        if (folder / "bertdistill.json").exists():
            record = trained_with(folder)
            changed = changes_since_training(record, settings, setting_defaults(student.config_fields))
            if not changed:
                if record.get("key") != key:  # settings added since, at their defaults: the same student
                    files.write_json(folder / TRAINED_WITH, {**record, "key": key, "settings": settings})
                print(f"student {name}: already trained ({folder})")
                continue
            what = ("its [students] settings, teacher or texts" if changed is UNKNOWN_CHANGE
                    else ", ".join({"teacher": "the teacher", "texts": "the training texts"}.get(c, c) for c in changed))
            print(f"student {name}: {what} changed since it was trained; training it again")
        seconds = _fit(run, name, student, data)
        record = {"key": key, "settings": settings, "train_seconds": seconds, "rows": len(data.texts),
                  "torch_threads": torch.get_num_threads()}
        files.publish_dir(folder, functools.partial(_save_student, student, record))
        print(f"student {name}: val {run.scorer.metric} = {student.val_score_:.4f} with {student.params_}")
    return list(run.config.students.include)


def _save_student(student, record: dict, staging: Path) -> None:
    student.save(staging)
    files.write_json(staging / TRAINED_WITH, record)


def _fit(run: Run, name: str, student, data: TrainingData) -> float:
    """Train `student` (or derive it from the run's student it is made from, when that one was trained on the same
    texts with the settings it reads); returns the training seconds, a derived student's including its source's."""
    val = run.dataset.val
    started = time.perf_counter()
    if student.derived_from:
        source = run.student_dir(student.derived_from)
        fields = student_class(student.derived_from).config_fields
        if trained_with(source).get("key") == training_key(run, data.texts, fields):
            print(f"student {name}: made from {source}")
            student.quantize(load_student(source), data, val.texts, val.labels, run.scorer)
            return time.perf_counter() - started + (trained_with(source).get("train_seconds") or 0.0)
    student.fit(data, val.texts, val.labels, run.scorer, checkpoint_dir=run.student_dir(f".{name}.checkpoint"))
    return time.perf_counter() - started  # of the last (resumed) fit when training was interrupted


def _with_unlabelled(labels: np.ndarray, rows: int) -> np.ndarray:
    """The train labels, then UNLABELLED (-1) rows for the transfer set's augmented and corpus texts."""
    extra = np.full((rows - len(labels), *labels.shape[1:]), UNLABELLED, dtype=labels.dtype)
    return np.concatenate([labels, extra])


TRAINED_WITH = "trained_with.json"


UNKNOWN_CHANGE = ["?"]  # a record from before trained_with.json kept the settings: only its key says it differs


def training_settings(run: Run, texts: list[str], fields: tuple[str, ...]) -> dict:
    """What a student learned from: the [students] `fields` it reads (so tuning the neural students leaves the
    TF-IDF ones trained, and the reverse), the teacher, its texts."""
    return {"students": run.config.students.settings(fields),
            "teacher": soft_labels.teacher_key(run.teacher_dir, labeling_backend(run)),
            "texts": soft_labels.texts_fingerprint(texts)}


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def training_key(run: Run, texts: list[str], fields: tuple[str, ...]) -> str:
    return settings_key(training_settings(run, texts, fields))


def setting_defaults(fields: tuple[str, ...]) -> dict:
    """The defaults of the [students] `fields`, shaped like `training_settings`."""
    return {"students": StudentsConfig().settings(fields)}


def changes_since_training(record: dict, settings: dict, defaults: dict) -> list[str]:
    """The settings (dotted names) that differ between a saved student's trained_with.json `record` and `settings`
    now; [] when none do. A setting the record lacks that is at its default now was added to bertdistill after the
    student was trained and does not count (so upgrading keeps trained students). UNKNOWN_CHANGE when the record
    keeps no settings and its key differs."""
    if record.get("key") == settings_key(settings):
        return []
    if not isinstance(record.get("settings"), dict):
        return UNKNOWN_CHANGE
    return _differences(settings, record["settings"], defaults, "")


_ABSENT = object()


def _differences(now, then, default, path: str) -> list[str]:
    if not (isinstance(now, dict) and isinstance(then, dict)):
        return [] if now == then else [path]
    default = default if isinstance(default, dict) else {}
    changed = []
    for name in sorted(set(now) | set(then)):
        if name not in then and name in default and now[name] == default[name]:
            continue
        changed += _differences(now.get(name, _ABSENT), then.get(name, _ABSENT), default.get(name),
                                f"{path}.{name}" if path else name)
    return changed


def trained_with(folder: Path) -> dict:
    """What a saved student records of its training (key, settings, train_seconds, rows, torch_threads); {} if
    unknown."""
    try:
        record = files.read_json(folder / TRAINED_WITH)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def load_students(run: Run) -> dict:
    """Every configured student of the run by name, in config order; an untrained one is an error."""
    return {name: _load_student(run, name) for name in run.config.students.include}


def _load_student(run: Run, name: str):
    if not (run.student_dir(name) / "bertdistill.json").exists():
        raise BertdistillError(f"student '{name}' is not trained in {run.out}; run `bertdistill students`")
    return load_student(run.student_dir(name))


def train_ensembles(run: Run) -> list[dict]:
    """Build the configured ensembles of trained students (members and weights chosen on val only)."""
    return ensemble.train_all(run, load_students(run))


def load_models(run: Run) -> dict:
    """Every model of the run by name: the teacher, its ONNX Runtime exports once `evaluate` has written them,
    the students in config order, the ensembles."""
    models = {name: load_model(run, name) for name in (TEACHER, *onnx_export.exported(run.out / "teacher"))}
    models.update(load_students(run))
    return {**models, **ensemble.load_all(run.config.ensembles, models, run.out / "ensembles")}


def model_names(run: Run) -> list[str]:
    """The names `load_model` knows in this run: teacher, its exports, students, ensembles."""
    return [TEACHER, *onnx_export.exported(run.out / "teacher"), *run.config.students.include,
            *(spec.name for spec in run.config.ensembles)]


def load_model(run: Run, name: str):
    """One model of the run by its leaderboard name, loading only what it needs (an ensemble: its members)."""
    exports = onnx_export.exported(run.out / "teacher")
    if name == TEACHER:
        return Teacher(run.teacher_dir, "cpu")
    if name in exports:
        return onnx_export.OnnxTeacher(exports[name], run.config.eval.threads)
    if name in run.config.students.include:
        return _load_student(run, name)
    if any(spec.name == name for spec in run.config.ensembles):
        folder = run.out / "ensembles" / name
        if not (folder / "bertdistill.json").exists():
            raise BertdistillError(f"ensemble '{name}' is not built in {run.out}; run `bertdistill ensembles`")
        header = ensemble.read_header(folder)
        if header["status"] != "built":
            raise BertdistillError(f"ensemble '{name}' came out empty: {header['reason']}")
        return ensemble.Ensemble.load(folder, {m["name"]: _load_student(run, m["name"]) for m in header["members"]})
    raise BertdistillError(f"no model '{name}' in {run.out} (it has: {', '.join(model_names(run))})")
