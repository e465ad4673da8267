"""`bertdistill predict RUN_DIR`: texts from the command line or a file (CSV, JSONL, plain text) through one
model of a run, in batches, to JSONL or CSV with labels and per-label probabilities.

The whole input is read and checked first (a bad row is one line naming file, row and column, before any
model loads); a file output appears only once complete.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator

from bertdistill.core import files
from bertdistill.errors import BertdistillError

FORMATS = ("jsonl", "csv")


def read_texts(path: Path, column: str = "text") -> list[str]:
    """Texts of a .csv (column `column`), .jsonl (field `column`) or any other file (one text per line)."""
    path = Path(path)
    if not path.is_file():
        raise BertdistillError(f"{path}: no such file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise BertdistillError(f"{path}: not UTF-8 text (byte {err.start})") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_texts(path, content, column)
    if suffix == ".jsonl":
        return _jsonl_texts(path, content, column)
    return content.splitlines()


def _csv_texts(path: Path, content: str, column: str) -> list[str]:
    rows = csv.DictReader(io.StringIO(content, newline=""))
    if not rows.fieldnames or column not in rows.fieldnames:
        raise BertdistillError(f"{path}: no column '{column}' (columns: {', '.join(rows.fieldnames or [])}); "
                               "choose one with --column")
    texts = []
    for row_number, row in enumerate(rows, start=2):  # row 1 is the header
        if row[column] is None:
            raise BertdistillError(f"{path}: row {row_number}: too few fields, no value in column '{column}'")
        texts.append(row[column])
    return texts


def _jsonl_texts(path: Path, content: str, field: str) -> list[str]:
    texts = []
    for line_number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise BertdistillError(f"{path}: line {line_number}: not JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise BertdistillError(f"{path}: line {line_number}: no string field '{field}'; choose one with --column")
        texts.append(record[field])
    return texts


def output_format(output: Path | None, requested: str | None) -> str:
    """--format, else the output file's suffix, else JSONL."""
    chosen = requested or (output.suffix.lower().lstrip(".") if output else "jsonl")
    if chosen not in FORMATS:
        raise BertdistillError(f"output format '{chosen}' is not one of {', '.join(FORMATS)}; use --format")
    return chosen


def records(model, texts: list[str], batch_size: int, progress: bool) -> Iterator[dict]:
    """One {text, labels, probabilities} per text, predicted `batch_size` texts at a time."""
    from tqdm.auto import tqdm

    with tqdm(total=len(texts), unit="text", desc=f"predict {model.name}", disable=not progress,
              file=sys.stderr) as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            probs = model.predict_proba(batch)
            for text, row, label in zip(batch, probs, model.labels_of(probs)):
                yield {"text": text, "labels": label,
                       "probabilities": {name: round(float(p), 6) for name, p in zip(model.label_names, row)}}
            bar.update(len(batch))


def write(rows: Iterator[dict], label_names: list[str], fmt: str, handle) -> None:
    """JSONL: one object per text. CSV: text, labels (joined by '|' when several), one p_<label> column each."""
    if fmt == "jsonl":
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.writer(handle)
    writer.writerow(["text", "labels", *(f"p_{name}" for name in label_names)])
    for row in rows:
        labels = row["labels"] if isinstance(row["labels"], list) else [row["labels"]]
        writer.writerow([row["text"], "|".join(labels), *row["probabilities"].values()])


def predict_to(model, texts: list[str], output: Path | None, fmt: str, batch_size: int) -> None:
    """Predict and write to `output` atomically (progress bar on stderr), or stream to stdout."""
    if output is None:
        write(records(model, texts, batch_size, progress=False), model.label_names, fmt, sys.stdout)
        return

    def fill(handle) -> None:
        text_handle = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        write(records(model, texts, batch_size, progress=True), model.label_names, fmt, text_handle)
        text_handle.flush()
        text_handle.detach()

    files.write_streamed(output, fill)
