"""Readers for each on-disk layout. They return raw strings; `labels.py` turns them into ids.

Every reader keeps rows aligned exactly as stored (TweetEval's empty lines are real, empty tweets) and says
which file and row a problem is in.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from bertdistill.errors import BertdistillError


@dataclass
class RawSplit:
    texts: list[str]
    labels: list  # multiclass: one raw value per row; multilabel: one list of raw values per row
    source: str  # file (or dataset) named in error messages
    row_word: str = "row"  # "line" for line-per-row files
    first_row: int = 1

    def where(self, index: int) -> str:
        return f"{self.source}, {self.row_word} {index + self.first_row}"


def read_utf8(path: Path) -> str:
    """The file decoded as UTF-8, or an error naming the line with the first bad byte."""
    if not path.is_file():
        raise BertdistillError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise BertdistillError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise BertdistillError(f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[err.start]:02x}); "
                               "re-save the file as UTF-8") from None


def _lines(path: Path) -> list[str]:
    # split on "\n" only: str.splitlines would also split on U+2028 etc., which occur inside tweets
    text = read_utf8(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_tweeteval(folder: Path) -> tuple[dict[str, RawSplit], list[str] | None]:
    """`{split}_text.txt` + `{split}_labels.txt` per split, label names from `mapping.txt`."""
    if not folder.is_dir():
        raise BertdistillError(f"{folder}: not a folder with TweetEval files (train_text.txt, train_labels.txt)")
    splits = {}
    for split in ("train", "val", "test"):
        text_file, label_file = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
        if not text_file.exists() and not label_file.exists():
            continue
        texts, labels = _lines(text_file), _lines(label_file)
        if len(texts) != len(labels):
            raise BertdistillError(f"{text_file} has {len(texts)} lines but {label_file} has {len(labels)}: "
                                   "every text needs exactly one label line")
        splits[split] = RawSplit(texts, [label.strip() for label in labels], str(label_file), "line")
    mapping = folder / "mapping.txt"
    return splits, (_read_mapping(mapping) if mapping.exists() else None)


def _read_mapping(path: Path) -> list[str]:
    names = {}
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        key, sep, name = line.partition("\t")
        if not sep or not key.strip().isdigit():
            raise BertdistillError(f"{path}, line {number}: expected 'id<TAB>name', got {line!r}")
        names[int(key)] = name.strip()
    if sorted(names) != list(range(len(names))):
        raise BertdistillError(f"{path}: label ids must be 0..{len(names) - 1}, got {sorted(names)}")
    return [names[i] for i in range(len(names))]


def read_table(path: Path, fmt: str, text_column: str, label_columns: list[str]) -> RawSplit:
    """One CSV / TSV / JSONL file: the text column and the label column(s), all as strings."""
    import pandas as pd  # here: TweetEval files and config errors do not wait for pandas

    text = read_utf8(path)
    if not text.strip():
        raise BertdistillError(f"{path}: file is empty")
    try:
        if fmt == "jsonl":
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
        else:
            frame = pd.read_csv(io.StringIO(text), sep="\t" if fmt == "tsv" else ",", dtype=str,
                                keep_default_na=False, na_values=[])
    except ValueError as err:
        raise BertdistillError(f"{path}: cannot parse as {fmt.upper()}: {str(err).splitlines()[0]}") from None
    if frame.empty:
        raise BertdistillError(f"{path}: file has a header but no rows")
    for column in [text_column, *label_columns]:
        if column not in frame.columns:
            available = ", ".join(map(str, frame.columns))
            raise BertdistillError(f"{path}: no column '{column}' (columns: {available})")
    first_row = 1 if fmt == "jsonl" else 2  # CSV rows are counted from the header line
    raw = RawSplit([], [], str(path), "line" if fmt == "jsonl" else "row", first_row)
    raw.texts = _texts(frame[text_column].tolist(), raw, text_column)
    if len(label_columns) == 1:
        raw.labels = frame[label_columns[0]].tolist()
    else:
        raw.labels = frame[label_columns].values.tolist()
    return raw


def _texts(values: list, raw: RawSplit, column: str) -> list[str]:
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise BertdistillError(f"{raw.where(index)}: column '{column}' has no text ({value!r})")
    return values


def read_hf(name: str, config: str | None, splits: dict[str, str], text_column: str,
            label_columns: list[str]) -> tuple[dict[str, RawSplit], list[str] | None]:
    """A Hugging Face dataset: a folder written by `save_to_disk`, else a hub name (needs the network)."""
    import datasets

    try:
        if Path(name).is_dir():
            loaded = datasets.load_from_disk(name)
        else:
            loaded = datasets.load_dataset(name, config)
    except Exception as err:  # the hub raises many types; the user needs the one line
        raise BertdistillError(f"cannot load Hugging Face dataset '{name}': {str(err).splitlines()[0]}") from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    result = {}
    for ours, theirs in splits.items():
        if theirs not in loaded:
            continue
        part = loaded[theirs]
        for column in [text_column, *label_columns]:
            if column not in part.column_names:
                raise BertdistillError(f"{name} [{theirs}]: no column '{column}' (columns: "
                                       f"{', '.join(part.column_names)})")
        raw = RawSplit([], [], f"{name} [{theirs}]", "row", 0)
        raw.texts = _texts(part[text_column], raw, text_column)
        if len(label_columns) == 1:
            raw.labels = part[label_columns[0]]
        else:
            raw.labels = [list(row) for row in zip(*(part[c] for c in label_columns))]
        result[ours] = raw
    if "train" not in result:
        raise BertdistillError(f"{name}: no split '{splits.get('train')}' (splits: {', '.join(loaded)})")
    feature = loaded[splits["train"]].features.get(label_columns[0])
    names = list(feature.names) if len(label_columns) == 1 and hasattr(feature, "names") else None
    return result, names
