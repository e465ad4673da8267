"""Bring your own fine-tuned teacher: any Hugging Face sequence classifier (a folder or a hub name) adopted into
a run, its labels mapped onto the dataset's by name.

A classifier whose `id2label` lists the same classes in another order would otherwise teach swapped classes, so
its outputs are matched to the data's label names (case, spaces, `-` and `_` ignored); names that do not match
are an error unless `teacher.label_map` (data label -> teacher label) says which is which. The matched output
columns, in the data's order, are recorded in the teacher's bertdistill.json and applied to every logit it
predicts (PyTorch and ONNX alike). The adopted copy always holds safetensors weights (a `.bin` is converted once).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.teacher import backbones

MODEL_FORMAT = "bertdistill-teacher"


def resolve(reuse: str) -> str:
    """A local folder as given; otherwise a hub name, fetched into the Hugging Face cache."""
    if Path(reuse).exists():
        if not Path(reuse, "config.json").exists():
            raise BertdistillError(f"teacher.reuse: {reuse} is not a model folder (no config.json)")
        return reuse
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(reuse, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt", "*.model"])
    except Exception as err:  # the hub's own error classes vary by version; all mean "cannot get it"
        raise BertdistillError(f"teacher.reuse: '{reuse}' is neither a folder nor a reachable hub model "
                               f"({str(err).splitlines()[0]})") from None


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def label_columns(model_config: dict, label_names: list[str], label_map: dict[str, str] | None,
                  origin: str) -> list[int]:
    """For each data label (in order), the output column of the classifier that predicts it."""
    id2label = {int(i): name for i, name in (model_config.get("id2label") or {}).items()}
    if not id2label:
        id2label = {i: f"LABEL_{i}" for i in range(int(model_config.get("num_labels", 0)))}
    label_map = label_map or {}
    unknown = sorted(set(label_map) - set(label_names))
    if unknown:
        raise BertdistillError(f"teacher.label_map: no data label {', '.join(map(repr, unknown))} "
                               f"(data labels: {', '.join(label_names)})")
    by_name = {_normal(name): column for column, name in id2label.items()}
    columns, unmatched = [], []
    for name in label_names:
        column = by_name.get(_normal(label_map.get(name, name)))
        if column is None:
            unmatched.append(name)
        columns.append(column)
    if unmatched:
        teacher = ", ".join(id2label[c] for c in sorted(id2label))
        raise BertdistillError(f"{origin}: the classifier's labels ({teacher}) do not name the data's "
                               f"{', '.join(unmatched)}; map them with teacher.label_map, e.g. "
                               f"label_map = {{ {unmatched[0]} = \"{id2label[min(id2label)]}\" }}")
    if len(set(columns)) < len(columns):
        raise BertdistillError(f"{origin}: two data labels map to the same classifier output ({columns})")
    return columns


def adopt(source: str, target: Path, task: str, label_names: list[str], max_length: int,
          label_map: dict[str, str] | None) -> Path:
    """Copy the classifier at `source` (resolved by `resolve`) into `target` with its bertdistill.json."""
    config = backbones.read_config(source)
    columns = label_columns(config, label_names, label_map, f"teacher.reuse = {source}")
    outputs = len(config.get("id2label") or {}) or int(config.get("num_labels", len(columns)))

    def build(staging: Path) -> None:
        staging.rmdir()
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns("optimizer.*", "checkpoint*", "*.tmp"))
        backbones.to_safetensors(staging)
        files.write_json(staging / "bertdistill.json", {
            "format": MODEL_FORMAT, "version": files.FORMAT_VERSION, "task": task, "label_names": label_names,
            "max_length": max_length, "backbone": str(source),
            "label_columns": None if columns == list(range(outputs)) else columns})

    return files.publish_dir(target, build)
