"""Unlabelled corpora for the transfer set: a text file (one text per line), a CSV / TSV / JSONL column, or a
Hugging Face dataset column. Reuses the dataset readers, so errors name the file, line and column the same way.
Blank texts are dropped; a corpus left with none is an error, and so is a file that is not UTF-8 text.
"""
from __future__ import annotations

from pathlib import Path

from bertdistill.config import CorpusConfig, DataConfig
from bertdistill.data.load import data_dirs
from bertdistill.data.readers import read_hf, read_table, read_utf8
from bertdistill.errors import BertdistillError


def read_lines(path: Path) -> list[str]:
    """One text per line of a UTF-8 file; split on "\\n" only, as TweetEval files are (U+2028 occurs in tweets)."""
    text = read_utf8(path)
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise BertdistillError(f"{path}, line {line}: a NUL byte; this looks like a binary file, not text")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.removesuffix("\r") for line in lines]


def locate_corpus(corpus: CorpusConfig, data: DataConfig, key: str) -> Path:
    """The corpus file: as given if it exists (or is absolute), else looked up in the data folders."""
    path = Path(corpus.path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    for folder in data_dirs(data):
        if (folder / path).exists():
            return folder / path
    looked = ", ".join(str(folder / path) for folder in [Path("."), *data_dirs(data)])
    raise BertdistillError(f"{key}: corpus '{corpus.path}' not found (looked in: {looked})")


def read_corpus(corpus: CorpusConfig, data: DataConfig, key: str = "transfer.corpora") -> list[str]:
    """The corpus's non-blank texts, in file order."""
    if corpus.format == "hf":
        raws, _ = read_hf(corpus.path, corpus.hf_config, {"train": corpus.hf_split}, corpus.column, [corpus.column])
        texts, source = raws["train"].texts, f"{corpus.path} [{corpus.hf_split}]"
    else:
        path = locate_corpus(corpus, data, key)
        if corpus.format == "text":
            texts = read_lines(path)
        else:
            read_lines(path)  # the NUL check: a binary file can still decode as UTF-8
            texts = read_table(path, corpus.format, corpus.column, []).texts
        source = str(path)
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise BertdistillError(f"{key}: corpus {source} has no texts (empty or blank)")
    return texts
