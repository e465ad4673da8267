"""Text -> token ids for the neural students, with a vocabulary pruned to what the training texts use.

`SubwordEncoder` reuses a pretrained model's tokenizer, the teacher's by default (WordPiece, SentencePiece or BPE
alike; no GloVe can be downloaded here), and keeps only the ids seen in training plus the special tokens, so a
student's embedding table holds ~15k rows instead of 30k. `WordEncoder` is a plain lower-cased word vocabulary
built from the training texts.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from bertdistill.core import files

PAD, UNK = 0, 1  # compact ids shared by both encoders
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


class SubwordEncoder:
    """A pretrained model's subword tokenizer followed by a map from its ids to compact ids."""

    kind = "subword"

    def __init__(self, tokenizer, kept: np.ndarray, max_length: int):
        self.tokenizer, self.kept, self.max_length = tokenizer, kept, max_length
        self.id_map = np.full(len(tokenizer), UNK, dtype=np.int64)
        self.id_map[kept] = np.arange(len(kept))
        self.fast_ = None  # the Rust tokenizer alone, for encode
        self.single_ = None  # text -> ids through wordpiece.py: the path for one text, where it applies

    @classmethod
    def fit(cls, tokenizer_folder: Path, texts: list[str], max_length: int) -> "SubwordEncoder":
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
        seen = {i for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] for i in ids}
        special = [tokenizer.pad_token_id, tokenizer.unk_token_id]  # first, so they land on PAD and UNK
        rest = sorted((seen | set(tokenizer.all_special_ids)) - set(special))
        return cls(tokenizer, np.array(special + rest, dtype=np.int64), max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.kept)

    def fast_tokenizer(self):
        """The Rust tokenizer alone (a `tokenizers.Tokenizer`), set to give the ids of `encode` before the id map:
        special tokens added, truncated to max_length, no padding. Exported bundles ship it as tokenizer.json."""
        if self.fast_ is None:
            from tokenizers import Tokenizer

            from bertdistill.students.wordpiece import single_text_ids

            self.fast_ = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
            self.fast_.enable_truncation(self.max_length)
            self.fast_.no_padding()
            self.single_ = single_text_ids(self.fast_, self.max_length)
        return self.fast_

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Compact ids of each text (special tokens added, truncated to max_length, unpadded). The ids the
        tokenizer's Python wrapper gives, through `fast_tokenizer` without that wrapper's per-call overhead; one
        text through the Python WordPiece path where it applies (a tweet: 4-10 µs instead of 55-85)."""
        fast = self.fast_tokenizer()
        if len(texts) == 1:
            ids = self.single_(texts[0]) if self.single_ else fast.encode(texts[0]).ids
            return [self.id_map[ids]]
        return [self.id_map[e.ids] for e in fast.encode_batch(texts)]

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder / "tokenizer")
        files.write_npz(folder / "vocabulary.npz", kept=self.kept)
        files.write_json(folder / "encoder.json", {"kind": self.kind, "max_length": self.max_length})

    @classmethod
    def load(cls, folder: Path, meta: dict) -> "SubwordEncoder":
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        return cls(tokenizer, files.read_npz(folder / "vocabulary.npz")["kept"], meta["max_length"])


class WordEncoder:
    """Lower-cased words and punctuation; the `size` most frequent training words, the rest UNK."""

    kind = "word"

    def __init__(self, words: list[str], max_length: int):
        self.words, self.max_length = words, max_length
        self.index = {word: i for i, word in enumerate(words)}

    @classmethod
    def fit(cls, texts: list[str], size: int, max_length: int) -> "WordEncoder":
        counts = Counter(token for text in texts for token in WORD_PATTERN.findall(text.lower()))
        return cls(["[PAD]", "[UNK]"] + [w for w, _ in counts.most_common(size - 2)], max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        encoded = []
        for text in texts:
            ids = [self.index.get(token, UNK) for token in WORD_PATTERN.findall(text.lower())[: self.max_length]]
            encoded.append(np.asarray(ids or [UNK], dtype=np.int64))  # an empty text still gets one token
        return encoded

    def save(self, folder: Path) -> None:
        files.write_json(folder / "encoder.json", {"kind": self.kind, "max_length": self.max_length,
                                                "words": self.words})

    @classmethod
    def load(cls, folder: Path, meta: dict) -> "WordEncoder":
        return cls(meta["words"], meta["max_length"])


def load_encoder(folder: Path):
    meta = files.read_json(Path(folder) / "encoder.json")
    # "wordpiece": the name of SubwordEncoder in students saved before 0.2
    encoders = {"subword": SubwordEncoder, "wordpiece": SubwordEncoder, "word": WordEncoder}
    return encoders[meta["kind"]].load(Path(folder), meta)
