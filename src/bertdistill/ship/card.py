"""The model card (README.md) of an exported bundle, from what the run directory recorded.

What the model is, the data, its test metrics, fidelity and latency (its leaderboard.json entry, with the machine
from environment.json), the teacher, how it was trained, usage and files. A run not yet evaluated has no
leaderboard: the card says so rather than leave blanks. Metrics are percentages with 2 decimals, times in ms with
3 significant digits.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer
from bertdistill.names import TEACHER, is_multilabel

METRIC_NAMES = {"macro_f1": "macro F1", "accuracy": "accuracy", "mean_roc_auc": "mean ROC-AUC",
                "macro_f1_tuned": "macro F1, thresholds tuned on val", "class_f1": "F1 of the metric classes",
                "per_class_f1": "F1", "per_label_roc_auc": "ROC-AUC"}
LOSSES = {"hard": "cross-entropy on the gold labels", "kl": "KL divergence to the teacher's softened probabilities",
          "soft_bce": "binary cross-entropy to the teacher's softened per-label probabilities",
          "mse": "mean squared error to the teacher's logits"}
FILES = {"bundle.json": "what the model is: kind, task, labels, thresholds, encoder, members",
         "bundle.py": "the loader: numpy, onnxruntime and tokenizers only", "README.md": "this card",
         "model.onnx": "the network (ONNX), one unpadded text per call", "tokenizer.json": "the subword tokenizer, "
         "truncation included (Hugging Face `tokenizers`)", "token_ids.npz": "tokenizer id -> the student's row",
         "words.json": "the word vocabulary, by row", "static.npz": "SIF-scaled token table, SIF weights, linear head",
         "tfidf.json": "per vectorizer: analyzer, n-gram range, lowercase, sublinear tf, token pattern, vocabulary",
         "tfidf.npz": "idf per vectorizer, weights and bias of the linear layer", "members": "one bundle per member"}


@dataclass
class RunRecords:
    """What a run directory recorded about its models, read once."""

    folder: Path
    config: dict
    dataset: dict  # dataset.json: name, task, label_names, rows per split
    entries: dict[str, dict]  # leaderboard.json entries by model name; empty before `evaluate`
    environment: dict | None  # machine, threads, date of the evaluation
    teacher: dict | None  # teacher/model/bertdistill.json

    @classmethod
    def read(cls, folder: Path) -> "RunRecords":
        if not folder.is_dir():
            raise BertdistillError(f"{folder}: no such run directory")
        for required in ("config.json", "dataset.json"):
            if not (folder / required).exists():
                raise BertdistillError(f"{folder}: no {required}; give the directory of a bertdistill run")
        entries = _optional(folder / "leaderboard.json") or []
        return cls(folder, files.read_json(folder / "config.json"), files.read_json(folder / "dataset.json"),
                   {entry["name"]: entry for entry in entries}, _optional(folder / "environment.json"),
                   _optional(folder / "teacher" / "model" / "bertdistill.json"))

    @property
    def metric(self) -> str:
        data = self.config.get("data", {})
        dataset = SimpleNamespace(task=self.dataset["task"], label_names=self.dataset["label_names"])
        return Scorer.for_dataset(dataset, data.get("metric"), data.get("metric_classes")).metric

    def trained_with(self, name: str) -> dict:
        return _optional(self.folder / "students" / name / "trained_with.json") or {}


def _optional(path: Path):
    return files.read_json(path) if path.exists() else None


def percent(value: float) -> str:
    return f"{100 * value:.2f}%" if math.isfinite(value) else "undefined"


def milliseconds(value: float) -> str:
    return f"{significant(value)} ms"


def megabytes(size: int) -> str:
    return f"{significant(size / 1e6)} MB" if size >= 1e5 else f"{significant(size / 1e3)} kB"


def significant(value: float, digits: int = 3) -> str:
    """`value` with `digits` significant digits, never in exponent notation (0.100, 86.8, 113, 1234)."""
    decimals = digits - 1 - math.floor(math.log10(abs(value))) if value else digits - 1
    return f"{value:.{max(decimals, 0)}f}"


def model_card(run: RunRecords, name: str, model, thresholds: list[float] | None,
               listing: list[tuple[str, int]]) -> str:
    """The README.md of the bundle of `model` (a student or an Ensemble) named `name`; `listing`: its files."""
    entry = run.entries.get(name)
    sections = [_summary(run, name, model, entry), _data(run), _results(run, entry, thresholds), _teacher(run),
                _training(run, name, model), _usage(run), _files(listing)]
    return "\n\n".join(sections) + "\n"


def _summary(run: RunRecords, name: str, model, entry: dict | None) -> str:
    role = getattr(model, "role", "ensemble")
    what = {"baseline": "a hard-label baseline: trained on gold labels only, no teacher",
            "distilled": "distilled from the run's teacher",
            "ensemble": "an ensemble of the run's students"}.get(role, role)
    module_doc = sys.modules[type(model).__module__].__doc__ or ""
    rows = [("kind", f"`{model.kind}`: {module_doc.splitlines()[0]}" if module_doc else f"`{model.kind}`"),
            ("role", role)]
    if getattr(model, "twin", None):
        trained = (run.folder / "students" / model.twin / "bertdistill.json").exists()
        rows.append(("hard-label twin", f"`{model.twin}`, the same model trained on gold labels only"
                     + ("" if trained else " (not trained in this run)")))
    if getattr(model, "derived_from", None):
        rows.append(("made from", f"`{model.derived_from}`, the fp32 student of the run"))
    if entry:
        rows += [("parameters", f"{entry['n_params']:,}"), ("size in the run", megabytes(entry["size_bytes"]))]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([f"# {name}", "", f"`{name}` of the bertdistill run `{run.config.get('name', run.folder.name)}`, "
                      f"{what}. Exported {when} by `bertdistill export`; this folder runs without bertdistill.", "",
                      _table(["", ""], rows)])


def _data(run: RunRecords) -> str:
    dataset = run.dataset
    labels = ", ".join(f"`{label}`" for label in dataset["label_names"])
    kind = "multilabel: any subset of" if is_multilabel(dataset["task"]) else "multiclass: one of"
    rows = [(split, f"{count:,}") for split, count in dataset["rows"].items()]
    return "\n".join(["## Data", "", f"`{dataset['name']}`, {kind} {labels}.", "", _table(["split", "texts"], rows)])


def _results(run: RunRecords, entry: dict | None, thresholds: list[float] | None) -> str:
    if entry is None:
        lines = ["## Results on test", "", "Not evaluated: the run has no leaderboard entry for this model. Run "
                 "`bertdistill evaluate` on the run and export again for test metrics, fidelity and latency."]
        if thresholds is not None:
            lines.append("Every label's threshold is 0.5 until then.")
        return "\n".join(lines)
    teacher = run.entries.get(TEACHER)
    scalar = [key for key, value in entry["metrics"].items() if isinstance(value, (int, float))]
    rows = [(METRIC_NAMES.get(key, key), percent(entry["metrics"][key]),
             percent(teacher["metrics"][key]) if teacher and key in teacher["metrics"] else "") for key in scalar]
    fidelity = entry.get("fidelity") or {}
    if fidelity:
        rows += [("agreement with the teacher", percent(fidelity["agreement"]), ""),
                 ("cosine to the teacher's probabilities", f"{fidelity['cosine']:.4f}", ""),
                 ("KL(teacher || model)", f"{fidelity['kl']:.4f}", "")]
    latency, teacher_latency = entry["latency_ms"], (teacher or {}).get("latency_ms")
    for quantile in ("p50", "p95"):
        rows.append((f"latency {quantile}, one text", milliseconds(latency[quantile]),
                     milliseconds(teacher_latency[quantile]) if teacher_latency else ""))
    lines = ["## Results on test", "", f"From the run's leaderboard (`{run.metric}` is its headline metric).", "",
             _table(["", "this model", "teacher (PyTorch)"], rows), "", _latency_note(run)]
    lines += ["", *_per_label(entry["metrics"], run.dataset["label_names"])]
    if thresholds is not None:
        how = "tuned on val" if entry.get("thresholds") else "0.5: none was tuned"
        lines += ["", f"A label is predicted when its probability reaches its threshold ({how}): "
                  + ", ".join(f"`{label}` {t:.3f}" for label, t in zip(run.dataset["label_names"], thresholds)) + "."]
    return "\n".join(lines)


def _latency_note(run: RunRecords) -> str:
    env = run.environment
    if not env:
        return "Latency: measured by bertdistill in-process (not through this bundle), one text at a time."
    return (f"Latency: measured by bertdistill in-process (not through this bundle), one raw text at a time after a "
            f"warm-up, {_count(env['threads'], 'thread')}, on {env['machine']}, {env['date']}.")


def _per_label(metrics: dict, label_names: list[str]) -> list[str]:
    per_label = [key for key, value in metrics.items() if isinstance(value, dict)]
    if not per_label:
        return []
    rows = [(f"`{label}`", *(percent(metrics[key][label]) for key in per_label)) for label in label_names]
    return [_table(["label", *(METRIC_NAMES.get(key, key) for key in per_label)], rows)]


def _teacher(run: RunRecords) -> str:
    config = run.config.get("teacher", {})
    header = run.teacher or {}
    source = config.get("reuse") or header.get("backbone") or config.get("backbone")
    how = ("an existing classifier, adopted as it is" if config.get("reuse") else
           f"fine-tuned for up to {_count(config.get('epochs'), 'epoch')} at learning rate "
           f"{config.get('learning_rate')}")
    line = f"`{source}`, {how}; texts truncated to {header.get('max_length', config.get('max_length'))} tokens."
    teacher = run.entries.get(TEACHER)
    if teacher:
        line += (f" Test {METRIC_NAMES.get(run.metric, run.metric)} {percent(teacher['metrics'][run.metric])}, "
                 f"p50 latency {milliseconds(teacher['latency_ms']['p50'])}, {teacher['n_params']:,} parameters.")
    return "\n".join(["## Teacher", "", line])


def _training(run: RunRecords, name: str, model) -> str:
    if getattr(model, "role", "ensemble") == "ensemble":
        return _ensemble_training(run, model)
    lines = ["## How it was trained", "", _texts_line(run, name, model.role), *_loss_lines(model.params_)]
    scalar = [(key, _value(value)) for key, value in model.params_.items() if isinstance(value, (int, float, str))]
    if scalar:
        lines += ["", "Hyper-parameters:", "", _table(["parameter", "value"], scalar)]
    return "\n".join(lines)


def _texts_line(run: RunRecords, name: str, role: str) -> str:
    train = run.dataset["rows"]["train"]
    rows = run.trained_with(name).get("rows") or train
    if role == "baseline":
        return f"Trained on the gold labels of the {train:,} train texts."
    transfer = run.config.get("transfer", {})
    sources = [f"{len(transfer['corpora'])} unlabelled corpora"] if transfer.get("corpora") else []
    sources += ["augmented copies of train texts"] if transfer.get("augment") else []
    extra = f" and {rows - train:,} more from {' and '.join(sources)}" if rows > train and sources else ""
    return (f"Trained on the teacher's outputs over a transfer set of {rows:,} texts: the {train:,} train texts"
            f"{extra}, all labelled by the teacher.")


def _loss_lines(params: dict) -> list[str]:
    """The distillation settings a student records: a neural loss, or a TF-IDF student's soft-target mix."""
    loss = params.get("loss")
    if isinstance(loss, dict):
        line = f"Loss: {LOSSES.get(loss['kind'], loss['kind'])}"
        if loss["kind"] != "hard":
            line += (f", temperature {_value(loss['temperature'])}, alpha {_value(loss['alpha'])} (the teacher "
                     "term's share; the rest is the loss on gold labels, where a text has them)")
        return ["", line + "."]
    if "temperature" in params:
        return ["", f"Targets: the teacher's probabilities at temperature {_value(params['temperature'])}, mixed "
                    f"with the gold labels at alpha {_value(params['alpha'])} (the teacher's share)."]
    return []


def _ensemble_training(run: RunRecords, model) -> str:
    method = model.info.get("method", "")
    budget = f" under a latency budget of {model.info['budget_basis']}" if model.info.get("budget_basis") else ""
    rows = [(f"`{member}`", model.members[member].kind, model.members[member].role, f"{weight:.3f}")
            for member, weight in model.weights.items()]
    return "\n".join(["## How it was built", "", f"The weighted mean of its members' probabilities; members and "
                      f"weights chosen on val by the `{method}` method{budget}. Each member's bundle is in "
                      "`members/`, with its own `bundle.json`.", "",
                      _table(["member", "kind", "role", "weight"], rows)])


def _usage(run: RunRecords) -> str:
    example = "labels (a list per text)" if is_multilabel(run.dataset["task"]) else "one label per text"
    return "\n".join(["## Usage", "", "Needs Python 3.10+, `numpy`, and for neural models `onnxruntime` and "
                      "`tokenizers`:", "", "```python", "import sys", "sys.path.insert(0, \"path/to/this/folder\")",
                      "import bundle", "", "model = bundle.load()  # or bundle.load(\"path/to/this/folder\")",
                      f"model.predict([\"some text\", \"another one\"])  # {example}",
                      "model.predict_proba([\"some text\"])  # (n, k) probabilities, columns in model.label_names",
                      "```", "", "From a shell (prints JSON):", "", "```sh",
                      "python path/to/this/folder/bundle.py \"some text\" \"another one\"", "```"])


def _files(listing: list[tuple[str, int]]) -> str:
    rows = [(f"`{path}`", FILES.get(path.rstrip("/"), ""), megabytes(size)) for path, size in listing]
    rows.append(("`README.md`", FILES["README.md"], ""))
    return "\n".join(["## Files", "", _table(["file", "what", "size"], rows)])


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])
