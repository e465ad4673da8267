"""`export_bundle`: one trained student or ensemble of a run as a folder that predicts without bertdistill.

A bundle holds the model in safe formats only (an ONNX graph for the neural students, npz + JSON for the TF-IDF and
static ones; an ensemble holds its members' bundles), the tokenizer as `tokenizer.json`, the labels and multilabel
thresholds in `bundle.json`, a model card (README.md) and `bundle.py` (a copy of `bundle_loader.py`), which needs
only numpy, onnxruntime and tokenizers. Its probabilities equal the in-process model's (tests hold them to 1e-5).

Left out on purpose: the teacher rows (`teacher/onnx-fp32/` of the run is already a shippable ONNX export), and
batching in the neural bundles (one text per ONNX call, as the int8 students are evaluated).
"""
from __future__ import annotations

import shutil
from io import BytesIO
from pathlib import Path

from bertdistill import pipeline
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.ensembles.ensemble import Ensemble
from bertdistill.errors import BertdistillError
from bertdistill.names import TEACHER_ROWS, is_multilabel
from bertdistill.rundir import Run
from bertdistill.ship.card import RunRecords, model_card
from bertdistill.students import folded_static, student_class, tfidf_features, wordpiece
from bertdistill.students.fasttext_lib import NO_LABEL, PUNCTUATION, FastTextLibStudent
from bertdistill.students.linear import TfidfLinear
from bertdistill.students.neural import NeuralStudent, export_onnx
from bertdistill.students.quantized import QuantizedStudent
from bertdistill.students.static import StaticStudent, numpy_weights
from bertdistill.students.tokens import UNK, WORD_PATTERN, SubwordEncoder

BUNDLE_FORMAT, BUNDLE_VERSION = "bertdistill-bundle", 1  # bundle_loader.py checks the same pair
LOADER = Path(__file__).with_name("bundle_loader.py")
# bertdistill's own files that bundles ship beside bundle.py
WORDPIECE, TFIDF_FEATURES, FOLDED_STATIC = (Path(m.__file__) for m in (wordpiece, tfidf_features, folded_static))


def export_bundle(run_dir: Path, name: str, out: Path) -> Path:
    """Write the bundle of the student or ensemble `name` of the run in `run_dir` to the new folder `out`, all or
    nothing; returns `out`. Bad input raises BertdistillError with one line that says what to give instead."""
    run_dir, out = Path(run_dir), Path(out)
    run = RunRecords.read(run_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BertdistillError(f"{out} already exists and is not an empty folder; give a new folder for --out")
    model = load_model(run_dir, name)

    def build(staging: Path) -> None:
        spec = write_model(staging, run, name, model)
        shutil.copyfile(LOADER, staging / "bundle.py")
        files.write_text(staging / "README.md", model_card(run, name, model, spec["thresholds"], _listing(staging)))
        for path in staging.rglob("*"):  # atomic writes leave files private (0600); a bundle is meant to be shipped
            path.chmod(0o755 if path.is_dir() else 0o644)

    return files.publish_dir(out, build)


def exportable(run: Run) -> dict[str, list[str]]:
    """The run's trained students and saved ensembles, by kind, in config order."""
    ensembles = [spec.name for spec in run.config.ensembles]
    trained = [n for n in run.config.students.include if (run.student_dir(n) / "bertdistill.json").exists()]
    return {"students": [n for n in trained if student_class(n).shippable],
            "ensembles": [n for n in ensembles if (run.out / "ensembles" / n / "bertdistill.json").exists()]}


def load_model(run_dir: Path, name: str):
    """The student or built ensemble `name` of the run in `run_dir` (an ensemble with its members)."""
    run = Run(config_from_dict(files.read_json(run_dir / "config.json"), str(run_dir / "config.json")), run_dir)
    names = exportable(run)
    choices = "; ".join(f"{kind}: {', '.join(found) or 'none'}" for kind, found in names.items())
    if name in TEACHER_ROWS:
        raise BertdistillError(f"'{name}' is a teacher row, not exported as a bundle (its ONNX export is in "
                               f"{run_dir / 'teacher'}); export a student or an ensemble ({choices})")
    if name in run.config.students.include and not student_class(name).shippable:
        raise BertdistillError(f"'{name}' has no bundle format (only its own library reads it: ship "
                               f"{run.student_dir(name)} with that library); export another student ({choices})")
    if name not in names["students"] + names["ensembles"]:
        raise BertdistillError(f"no trained student or ensemble '{name}' in {run_dir} ({choices})")
    return pipeline.load_model(run, name)  # an empty ensemble is an error there


def write_model(folder: Path, run: RunRecords, name: str, model) -> dict:
    """The model's files and bundle.json in `folder` (an ensemble: each member's bundle in members/<member>/);
    returns what bundle.json holds."""
    task, label_names = task_and_labels(model)
    if isinstance(model, Ensemble):
        for member in model.weights:
            write_model(folder / "members" / member, run, member, model.members[member])
        spec = {"model": "ensemble", "members": [{"name": member, "weight": weight, "folder": f"members/{member}"}
                                                 for member, weight in model.weights.items()]}
    else:
        spec = _student_files(folder, name, model)
    spec = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "name": name, "kind": model.kind, "task": task,
            "label_names": label_names, "thresholds": _thresholds(run, name, task, len(label_names)), **spec}
    files.write_json(folder / "bundle.json", spec)
    return spec


def task_and_labels(model) -> tuple[str, list[str]]:
    if isinstance(model, Ensemble):
        return model.task, task_and_labels(next(iter(model.members.values())))[1]
    return model.task_, list(model.label_names_)


def _thresholds(run: RunRecords, name: str, task: str, n_labels: int) -> list[float] | None:
    """Per-label thresholds of a multilabel model: those the evaluation tuned on val, else 0.5; None for multiclass."""
    if not is_multilabel(task):
        return None
    tuned = (run.entries.get(name) or {}).get("thresholds")
    return [float(t) for t in tuned] if tuned else [0.5] * n_labels


def _student_files(folder: Path, name: str, student) -> dict:
    for kind, writer in WRITERS:
        if isinstance(student, kind):
            return writer(folder, student)
    raise BertdistillError(f"'{name}' ({type(student).__name__}): no bundle format for this kind of student")


# -- one writer per kind of student: files into the folder, returns its part of bundle.json ----------------------

def _tfidf(folder: Path, student: TfidfLinear) -> dict:
    specs = student.features_.specs()  # per vectorizer: parameters and vocabulary in column order
    files.write_json(folder / "tfidf.json", [{**spec["params"], "vocabulary": spec["vocabulary"]} for spec in specs])
    idfs = {f"idf_{i}": vectorizer.idf_ for i, vectorizer in enumerate(student.features_.vectorizers)}
    files.write_npz(folder / "tfidf.npz", coef=student.coef_, intercept=student.intercept_, **idfs)
    shutil.copyfile(TFIDF_FEATURES, folder / "tfidf_features.py")
    return {"model": "tfidf"}


def _static(folder: Path, student: StaticStudent) -> dict:
    scaled_table, sif_weights, layers = numpy_weights(student.module_)
    head = {f"{name}{i or ''}": array for i, layer in enumerate(layers) for name, array in zip(("head", "bias"), layer)}
    files.write_npz(folder / "static.npz", scaled_table=scaled_table, sif_weights=sif_weights, **head)
    shutil.copyfile(FOLDED_STATIC, folder / "folded_static.py")
    return {"model": "static", "encoder": _encoder(folder, student.encoder_)}


def _onnx(folder: Path, student: NeuralStudent | QuantizedStudent) -> dict:
    if isinstance(student, QuantizedStudent):
        files.write_bytes(folder / "model.onnx", student.model_)  # the int8 graph it was evaluated with
    else:
        graph = BytesIO()
        export_onnx(student.module_, graph)
        files.write_bytes(folder / "model.onnx", graph.getvalue())
    return {"model": "onnx", "encoder": _encoder(folder, student.encoder_)}


def _encoder(folder: Path, encoder) -> dict:
    """The student's text -> ids: a subword tokenizer and its id map (and wordpiece.py, the one-text path, where it
    applies), or a word vocabulary."""
    if isinstance(encoder, SubwordEncoder):
        files.write_text(folder / "tokenizer.json", encoder.fast_tokenizer().to_str())
        files.write_npz(folder / "token_ids.npz", id_map=encoder.id_map)
        if encoder.single_ is not None:
            shutil.copyfile(WORDPIECE, folder / "wordpiece.py")
        return {"kind": "subword", "max_length": encoder.max_length}
    files.write_json(folder / "words.json", encoder.words)
    return {"kind": "word", "max_length": encoder.max_length, "pattern": WORD_PATTERN.pattern, "unknown_id": UNK}


def write_fasttext(folder: Path, student: FastTextLibStudent) -> dict:
    model = student.model_
    args = model.f.getArgs()
    rows = [i for i, label in enumerate(model.labels) if label != NO_LABEL]  # one-vs-all: each row scores alone
    files.write_npz(folder / "fasttext.npz", input=model.get_input_matrix(), output=model.get_output_matrix()[rows])
    files.write_json(folder / "words.json", model.words)
    return {"model": "fasttext", "pattern": PUNCTUATION.pattern, "minn": args.minn, "maxn": args.maxn,
            "word_ngrams": args.wordNgrams, "bucket": args.bucket,
            "label_order": [int(model.labels[i].removeprefix("__label__")) for i in rows]}


# static before the other neural students: its subclass predicts in numpy, not through an ONNX graph
WRITERS = ((TfidfLinear, _tfidf), (StaticStudent, _static), (NeuralStudent, _onnx), (QuantizedStudent, _onnx),
           (FastTextLibStudent, write_fasttext))


def _listing(folder: Path) -> list[tuple[str, int]]:
    """Top-level files and folders of a bundle with their sizes in bytes."""
    return [(path.name + ("/" if path.is_dir() else ""), files.dir_size(path)) for path in sorted(folder.iterdir())]
