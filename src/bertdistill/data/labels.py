"""Raw label values -> class ids (multiclass) or 0/1 matrices (multilabel), with row-precise errors."""
from __future__ import annotations

import math

import numpy as np

from bertdistill.data.readers import RawSplit
from bertdistill.errors import BertdistillError


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        # not "none": it is a real class name (TweetEval stance: none / against / favor)
        isinstance(value, str) and value.strip().lower() in ("", "nan", "null"))


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def multiclass_vocabulary(train: RawSplit, names: list[str] | None) -> tuple[list[str], dict]:
    """Label names and a raw-value -> id map. Integer labels index `names`; string labels are names."""
    values = []
    for index, value in enumerate(train.labels):
        if _is_missing(value):
            raise BertdistillError(f"{train.where(index)}: missing label")
        values.append(value)
    ints = [_as_int(v) for v in values]
    if all(i is not None for i in ints):
        if names is None:
            distinct = sorted(set(ints))
            return [str(i) for i in distinct], {i: position for position, i in enumerate(distinct)}
        return list(names), {i: i for i in range(len(names))}
    strings = [str(v).strip() for v in values]
    ordered = list(names) if names is not None else sorted(set(strings))
    return ordered, {name: position for position, name in enumerate(ordered)}


def encode_multiclass(raw: RawSplit, mapping: dict, split: str, seen: set[int] | None) -> np.ndarray:
    """Class ids for one split; `seen` (the train ids) rejects labels that never occur in train."""
    use_ints = all(isinstance(key, int) for key in mapping)
    ids = np.empty(len(raw.labels), dtype=np.int64)
    for index, value in enumerate(raw.labels):
        if _is_missing(value):
            raise BertdistillError(f"{raw.where(index)}: missing label")
        key = _as_int(value) if use_ints else str(value).strip()
        if key not in mapping:
            known = ", ".join(map(str, mapping))
            raise BertdistillError(f"{raw.where(index)}: unknown label {value!r} (known: {known})")
        ids[index] = mapping[key]
        if seen is not None and ids[index] not in seen:
            raise BertdistillError(f"{raw.where(index)}: {split} label {value!r} never appears in train; "
                                   "a model cannot learn it")
    return ids


def encode_multilabel(raw: RawSplit, columns: list[str]) -> np.ndarray:
    matrix = np.zeros((len(raw.labels), len(columns)), dtype=np.int8)
    for index, row in enumerate(raw.labels):
        for column, value in enumerate(row):
            number = _as_int(value) if not isinstance(value, bool) else int(value)
            if number not in (0, 1):
                raise BertdistillError(f"{raw.where(index)}: column '{columns[column]}' must be 0 or 1, "
                                       f"got {value!r}")
            matrix[index, column] = number
    return matrix


def check_trainable(labels: np.ndarray, names: list[str], source: str) -> None:
    """A classifier needs at least two classes in train (every label column needs a positive)."""
    if labels.ndim == 1:
        present = np.unique(labels)
        if len(present) < 2:
            raise BertdistillError(f"{source}: train has a single class ({names[present[0]]!r}); "
                                   "a classifier needs at least two")
        return
    for column, name in enumerate(names):
        if labels[:, column].min() == labels[:, column].max():
            raise BertdistillError(f"{source}: label column '{name}' is constant in train "
                                   f"(all {labels[0, column]}); it cannot be learned")
