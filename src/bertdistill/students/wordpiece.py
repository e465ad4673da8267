"""BERT-style WordPiece tokenization in Python with per-character and per-word caches: the subword students'
single-text path, in bertdistill and in exported bundles.

For one short text, the Rust tokenizer's Python call costs 55-85 µs here, most of it per-call overhead; this path
costs 6-10 µs (p50) for a tweet seen for the first time and about 4 µs for one seen before, so that a static
student's whole prediction fits in fastText's latency. It applies to the `tokenizers` pipeline BertNormalizer ->
BertPreTokenizer -> WordPiece (BERT, MiniLM, MPNet and their cased variants); `for_tokenizer` returns None for any
other (BPE, SentencePiece, other normalizers), whose callers keep the Rust tokenizer.

Exact by construction rather than by re-implementing Unicode tables (Rust's and Python's differ on unassigned and
recent characters, and on a final capital sigma): BertNormalizer works character by character, so the first time a
character is seen the Rust normalizer and pre-tokenizer are asked what it becomes (dropped, whitespace, a CJK
character padded with spaces, accents stripped, lower-cased) and whether the result is punctuation (split off on
its own). That answer is cached as a `str.translate` entry that pads punctuation with spaces, so a text becomes its
words with one `translate` and one `split`. WordPiece itself (greedy longest match, the unknown token for a word
too long or with an unmatched piece) runs once per distinct word, then comes from a cache. Both caches start full:
every character of the vocabulary and of the common symbol and emoji blocks, and every whole word of the vocabulary
(its own single piece); that takes about 30 ms at load and a third to a half off a first-seen tweet (TweetEval test
tweets, p50: 10.6 -> 6.1 µs on emotion, 17.3 -> 10.5 on offensive). A text that contains an added token ([CLS],
[MASK]...: the Rust tokenizer matches those whole, before WordPiece) is left to the Rust tokenizer. Ids without
special tokens; tests hold them to the Rust tokenizer on real tweets and random Unicode. `single_text_ids` adds the
special tokens and the truncation. Standard library only: exported bundles ship a copy of this file next to
bundle.py.
"""
from __future__ import annotations

import json
import re
from typing import Callable, Sequence

CACHE_WORDS = 200_000  # words remembered; beyond that the cache is cleared (a long-running server stays bounded)
# characters learnt up front besides the vocabulary's: punctuation, symbols, arrows, variation selectors, emoji
SYMBOL_RANGES = ((0x2000, 0x2C00), (0xFE00, 0xFE10), (0x1F000, 0x1FB00))
PROBE = "Probe, with Ünïcode 😀 and ##pieces: tokenization!"  # single_text_ids checks its ids against Rust's


class WordPiece:
    """Token ids of a text, as the BERT-style Rust tokenizer `fast` (a `tokenizers.Tokenizer`) gives them."""

    def __init__(self, fast, vocab: dict[str, int], unk: str, prefix: str, max_chars: int, added: Sequence[str] = ()):
        self.fast, self.normalizer, self.pre_tokenizer = fast, fast.normalizer, fast.pre_tokenizer
        self.vocab, self.unk, self.prefix, self.max_chars = vocab, vocab[unk], prefix, max_chars
        self.table: dict[int, str] = {}  # codepoint -> what it becomes, punctuation padded with spaces
        self._learn(map(chr, range(128)))
        self._learn({char for token in vocab for char in token if ord(char) not in self.table}
                    | {chr(code) for low, high in SYMBOL_RANGES for code in range(low, high)})
        # a word that is itself in the vocabulary is its own single piece (greedy longest match takes it whole):
        # known from the start, so that a text's first sight costs little more than its second
        self.known = {token: [i] for token, i in vocab.items()
                      if not token.startswith(prefix) and len(token) <= max_chars}
        self.words: dict[str, list[int]] = dict(self.known)
        # the added tokens ([CLS], [MASK]...) as a text containing them reads here: the Rust tokenizer matches them
        # whole, so such a text goes to it (any case, any accents: a few texts too many rather than one too few)
        forms = [re.escape(form) for form in (self._normalized(token).strip() for token in added) if form]
        self.added = re.compile("|".join(forms)).search if forms else None

    @classmethod
    def for_tokenizer(cls, fast, spec: dict) -> "WordPiece | None":
        """For the Rust tokenizer `fast` and its tokenizer.json content `spec`; None unless that is BertNormalizer +
        BertPreTokenizer + WordPiece, with the normalizer's text cleaning on (it turns every whitespace character
        into a space, so that Python's `split` splits where Rust's pre-tokenizer does)."""
        normalizer, pre, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec.get("model") or {}
        if (normalizer.get("type"), pre.get("type"), model.get("type")) != ("BertNormalizer", "BertPreTokenizer",
                                                                          "WordPiece"):
            return None
        if not normalizer.get("clean_text", True):
            return None
        if model.get("unk_token") not in model.get("vocab", {}):
            return None
        return cls(fast, model["vocab"], model["unk_token"], model.get("continuing_subword_prefix", "##"),
                   model.get("max_input_chars_per_word", 100), [t["content"] for t in spec.get("added_tokens") or []])

    def _learn(self, chars) -> None:
        """Ask the Rust normalizer and pre-tokenizer what each character becomes."""
        for char in chars:
            normalized = self.normalizer.normalize_str(char)
            self.table[ord(char)] = "".join(self._split_form(c) for c in normalized)

    def _split_form(self, char: str) -> str:
        """' ' for a character the pre-tokenizer splits on, ' c ' for one it isolates (punctuation), else itself."""
        pieces = [piece for piece, _ in self.pre_tokenizer.pre_tokenize_str(f"a{char}a")]
        if pieces == ["a", "a"]:
            return " "
        return f" {char} " if pieces == ["a", char, "a"] else char

    def _normalized(self, text: str) -> str:
        """The text normalized, punctuation padded with spaces: split on whitespace, its words."""
        if not text.isascii():
            unseen = {char for char in text if ord(char) not in self.table}
            if unseen:
                self._learn(unseen)
        return text.translate(self.table)

    def ids(self, text: str) -> list[int]:
        normalized = self._normalized(text)
        if self.added and self.added(normalized):
            return self.fast.encode(text, add_special_tokens=False).ids
        ids: list[int] = []
        words = self.words
        for word in normalized.split():
            pieces = words.get(word)
            if pieces is None:
                if len(words) >= CACHE_WORDS + len(self.known):
                    words.clear()
                    words.update(self.known)
                pieces = words[word] = self._pieces(word)
            ids.extend(pieces)
        return ids

    def _pieces(self, word: str) -> list[int]:
        """Greedy longest-match-first WordPiece of one word."""
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces


def single_text_ids(fast, max_length: int) -> Callable[[str], list[int]] | None:
    """text -> the ids `fast.encode(text).ids` gives, for the Rust tokenizer `fast` (a `tokenizers.Tokenizer`
    truncating at max_length, no padding): WordPiece in Python between its two special tokens. None unless `fast`
    is a tokenizer WordPiece reproduces, adds exactly two special tokens, and gives a probe text the same ids."""
    wordpiece = WordPiece.for_tokenizer(fast, json.loads(fast.to_str()))
    specials = fast.encode("").ids
    if wordpiece is None or len(specials) != 2 or max_length < 3:
        return None
    first, last = specials
    words = wordpiece.ids

    def ids(text: str) -> list[int]:
        return [first, *words(text)[:max_length - 2], last]

    return ids if ids(PROBE) == fast.encode(PROBE).ids else None
