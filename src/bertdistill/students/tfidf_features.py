"""TF-IDF features of one text as a fitted scikit-learn TfidfVectorizer computes them, without scikit-learn.

This reproduces exactly what a fitted vectorizer computes: the `word`, `char` and `char_wb` analyzers, lowercasing,
sublinear tf, idf and l2 normalisation. scikit-learn's `transform` builds and validates a CSR matrix per call (about
1.5 ms for one tweet), most of it overhead. Word n-grams are counted with a dict. Character n-grams, hundreds per
tweet, are packed into integers and looked up in a cuckoo hash table with a few array operations, never built as
Python strings. Tests check the features against scikit-learn's.

Left out on purpose: stop words, accent stripping, custom tokenizers or preprocessors (the students use none);
`SparseAnalyzer.from_params` refuses an analyzer it does not reproduce rather than compute something else. numpy
and the standard library only: exported TF-IDF bundles ship a copy of this file next to bundle.py.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from itertools import repeat

import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")  # the same normalisation scikit-learn applies before char n-grams


class SparseAnalyzer:
    """One fitted vectorizer: n-gram extraction, vocabulary, idf; `features` maps a text to its tf-idf row.

    Every n-gram is a window over a sequence of codes: characters (char, char_wb) or tokens (word), and windows
    are looked up as packed integers (`PackedNgrams`). A vocabulary that cannot be packed falls back to counting
    n-gram strings with a dict: same result, slower.
    """

    def __init__(self, analyzer: str, ngram_range: tuple[int, int], vocabulary: list[str], idf: np.ndarray,
                 token_pattern: str, lowercase: bool, sublinear_tf: bool):
        self.analyzer, (self.min_n, self.max_n) = analyzer, ngram_range
        self.index = {term: column for column, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.tokenize = re.compile(token_pattern).findall
        self.lowercase, self.sublinear_tf = lowercase, sublinear_tf
        self.codes = TokenCodes.build(vocabulary, self.tokenize) if analyzer == "word" else CharCodes.build(vocabulary)
        sequences = None if self.codes is None else self.codes.vocabulary_codes(vocabulary)
        self.packed = None if sequences is None else PackedNgrams.build(sequences, self.codes.bits, self.max_n)

    @classmethod
    def from_params(cls, params: dict, vocabulary: list[str], idf: np.ndarray) -> "SparseAnalyzer":
        """Build from the saved vectorizer parameters (those `TfidfFeatures.save` writes; norm is always l2)."""
        if params["analyzer"] not in ("word", "char", "char_wb"):
            raise ValueError(f"fast TF-IDF path: unsupported analyzer {params['analyzer']!r}")
        return cls(params["analyzer"], tuple(params["ngram_range"]), vocabulary, idf, params["token_pattern"],
                   params["lowercase"], params["sublinear_tf"])

    def ngrams(self, text: str) -> list[str]:
        """The analyzer's n-grams of one text as strings, as scikit-learn yields them (order aside)."""
        if self.lowercase:
            text = text.lower()
        if self.analyzer == "word":
            return word_ngrams(self.tokenize(text), self.min_n, self.max_n)
        if self.analyzer == "char_wb":
            return char_wb_ngrams(text, self.min_n, self.max_n)
        return char_ngrams(_WHITE_SPACES.sub(" ", text), self.min_n, self.max_n)

    def term_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct vocabulary columns present in `text` and how often each occurs."""
        if self.packed is None:
            return self._counts_by_lookup(self.ngrams(text))
        if self.lowercase:
            text = text.lower()
        if self.analyzer == "word":
            return self.packed.term_counts(self.codes.encode(self.tokenize(text)), self.min_n)
        if self.analyzer == "char":
            return self.packed.term_counts(self.codes.encode(_WHITE_SPACES.sub(" ", text)), self.min_n)
        words = text.split()
        if not words:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        columns, counts = self.packed.term_counts(self.codes.encode(" " + " ".join(words) + " "), self.min_n)
        if 1 < self.min_n < 4:  # no correction can apply (see `wb_corrections`): the common, fast case
            return columns, counts
        extra_columns, extra_counts = self._counts_by_lookup(wb_corrections(words, self.min_n))
        merged, inverse = np.unique(np.concatenate([columns, extra_columns]), return_inverse=True)
        return merged, np.bincount(inverse, weights=np.concatenate([counts, extra_counts]))

    def _counts_by_lookup(self, grams: list[str]) -> tuple[np.ndarray, np.ndarray]:
        get = self.index.get
        pairs = [(column, count) for gram, count in Counter(grams).items() if (column := get(gram)) is not None]
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        columns, counts = zip(*pairs)
        return np.array(columns, dtype=np.int64), np.array(counts, dtype=np.float64)

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Columns present in `text` and their tf-idf values, l2-normalised (an empty text gives nothing)."""
        columns, counts = self.term_counts(text)
        if not len(columns):
            return columns, counts
        values = (np.log(counts) + 1.0 if self.sublinear_tf else counts) * self.idf[columns]
        values /= math.sqrt(float(values @ values))
        return columns, values


def word_ngrams(tokens: list[str], min_n: int, max_n: int) -> list[str]:
    """Token n-grams joined by one space, n in [min_n, max_n]."""
    grams = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n, len(tokens)) + 1):
        grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def char_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Every substring of length n in [min_n, max_n] (text already whitespace-normalised)."""
    grams = []
    for n in range(min_n, min(max_n, len(text)) + 1):
        grams += [text[i:i + n] for i in range(len(text) - n + 1)]
    return grams


def char_wb_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Character n-grams inside each space-padded word; a word shorter than n counts once, whole.

    Windows over the whole padded text " w1 w2 " rather than word by word (fewer Python-level loops): a window
    that straddles two words has a space inside it, and no vocabulary entry does, so it is dropped at look-up.
    Two corrections keep the counts exact: a space shared by two words is one 1-gram per word, and a padded word
    shorter than min_n is kept whole, as scikit-learn does.
    """
    words = text.split()
    if not words:
        return []
    joined = " " + " ".join(words) + " "
    grams = []
    for n in range(min_n, max_n + 1):
        grams += [joined[i:i + n] for i in range(len(joined) - n + 1)]
    return grams + wb_corrections(words, min_n)


def wb_corrections(words: list[str], min_n: int) -> list[str]:
    """What windows over the joined padded words miss: a space between two words is a 1-gram of each, and a
    padded word shorter than min_n is one whole n-gram. Both are empty when 1 < min_n < 4."""
    shared_spaces = [" "] * (len(words) - 1) if min_n == 1 else []
    return shared_spaces + [f" {word} " for word in words if len(word) + 2 < min_n]


class CharCodes:
    """Characters -> codes 1..A, A = the vocabulary's alphabet; 0 for a character no term contains. The table
    only reaches the largest code point used (anything above maps to its last entry, 0), so it stays in cache."""

    def __init__(self, table: np.ndarray):
        self.table, self.bits = table, int(table.max()).bit_length()

    @classmethod
    def build(cls, vocabulary: list[str]) -> "CharCodes | None":
        points = sorted({ord(char) for term in vocabulary for char in term})
        if not points:
            return None
        table = np.zeros(points[-1] + 2, dtype=np.uint32)
        table[points] = np.arange(1, len(points) + 1)
        return cls(table)

    def vocabulary_codes(self, vocabulary: list[str]) -> list[list[int]]:
        return [[int(self.table[ord(char)]) for char in term] for term in vocabulary]

    def encode(self, text: str) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        return self.table[np.minimum(points, len(self.table) - 1)]


class TokenCodes:
    """Tokens -> codes 1..T over every token of the vocabulary's terms; 0 for a token no term contains."""

    def __init__(self, index: dict[str, int], tokenize):
        self.index, self.tokenize = index, tokenize
        self.bits = len(index).bit_length()

    @classmethod
    def build(cls, vocabulary: list[str], tokenize) -> "TokenCodes | None":
        """None unless every term is its tokens joined by one space (else token boundaries are ambiguous)."""
        index: dict[str, int] = {}
        for term in vocabulary:
            tokens = tokenize(term)
            if " ".join(tokens) != term:
                return None
            for token in tokens:
                index.setdefault(token, len(index) + 1)
        return cls(index, tokenize) if index else None

    def vocabulary_codes(self, vocabulary: list[str]) -> list[list[int]]:
        return [[self.index[token] for token in self.tokenize(term)] for term in vocabulary]

    def encode(self, tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(self.index.get, tokens, repeat(0)), dtype=np.uint32, count=len(tokens))


class PackedNgrams:
    """Exact vocabulary look-up of n-grams over a code sequence, vectorised over a whole text.

    An n-gram is a leading 1 bit followed by its n codes of `bits` bits each, so n-grams of different lengths
    never share a key and no Python string is built per window. Windows that run past the end (padded with code
    0) or hold an unknown code never match. The vocabulary sits in a cuckoo hash table — every key in one of its
    two slots — so a text's keys are looked up with a fixed handful of array operations (about 40% faster than a
    binary search over the sorted vocabulary, measured on tweets).
    """

    MAX_BITS = 63

    def __init__(self, bits: int, max_n: int, hashed: "CuckooTable"):
        self.bits, self.max_n, self.hashed = bits, max_n, hashed
        # key of the window of length n at i = windows[i] @ powers[:, n - 1] + leading[n - 1], where windows[i]
        # holds the codes at i .. i + max_n - 1: one gather and one small integer matrix product for all n
        self.powers = np.array([[1 << bits * (n - j) if j <= n else 0 for n in range(max_n)] for j in range(max_n)],
                               dtype=np.uint64)
        self.leading = np.array([1 << bits * n for n in range(1, max_n + 1)], dtype=np.uint64)
        self.window_index = np.zeros((0, max_n), dtype=np.intp)

    @classmethod
    def build(cls, sequences: list[list[int]], bits: int, max_n: int) -> "PackedNgrams | None":
        """None when max_n codes do not fit in 63 bits (the caller counts strings instead)."""
        if bits * max_n > cls.MAX_BITS or not sequences:
            return None
        keys = []
        for codes in sequences:
            key = 1
            for code in codes:
                key = (key << bits) | code
            keys.append(key)
        return cls(bits, max_n, CuckooTable.build(keys))

    def term_counts(self, codes: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
        """Distinct vocabulary columns among the windows of length min_n..max_n of `codes`, with their counts."""
        length = len(codes)
        if length > len(self.window_index):  # grown rarely: texts are mostly shorter than the last long one
            self.window_index = np.arange(2 * length)[:, None] + np.arange(self.max_n)
        padded = np.zeros(length + self.max_n, dtype=np.uint64)
        padded[:length] = codes
        windows = padded[self.window_index[:length]]  # (length, max_n) codes, 0 past the end
        keys = (windows @ self.powers[:, min_n - 1:] + self.leading[min_n - 1:]).ravel()
        keys.sort()  # equal keys side by side, so equal columns are too: counted as runs, no further sort
        found = self.hashed.columns(keys)
        if not len(found):
            return found, np.zeros(0)
        first = np.empty(len(found) + 1, dtype=bool)  # first[i]: found[i] starts a run; the last entry closes it
        first[0] = first[-1] = True
        np.not_equal(found[1:], found[:-1], out=first[1:-1])
        starts = first.nonzero()[0]
        return found[starts[:-1]], (starts[1:] - starts[:-1]).astype(np.float64)


class CuckooTable:
    """Non-zero uint64 keys -> column (their index in the list built from), each key in one of two slots
    chosen by two multiplicative hashes; a look-up checks both slots of every key at once."""

    def __init__(self, multipliers: np.ndarray, shift: int, keys: np.ndarray, columns: np.ndarray):
        self.multipliers, self.shift = multipliers, np.uint64(shift)
        self.keys, self.key_columns = keys, columns

    @classmethod
    def build(cls, keys: list[int], seed: int = 0) -> "CuckooTable":
        rng = np.random.default_rng(seed)
        size_bits = max(4, (2 * len(keys)).bit_length() + 1)  # load factor < 1/4: placing rarely needs a retry
        for attempt in range(100):
            multipliers = rng.integers(1 << 62, 1 << 63, size=2, dtype=np.uint64) | np.uint64(1)
            table = cls(multipliers, 64 - size_bits, np.zeros(1 << size_bits, np.uint64),
                        np.full(1 << size_bits, -1, np.int32))
            if table._insert_all(keys):
                return table
            size_bits += attempt % 5 == 4  # a few unlucky hash pairs in a row: more room
        raise RuntimeError("cuckoo table: could not place the vocabulary")

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        """(n, 2) candidate slots of each key."""
        return (keys[:, None] * self.multipliers) >> self.shift  # uint64 indices: numpy takes them as they are

    def _insert_all(self, keys: list[int], max_kicks: int = 500) -> bool:
        slots = {key: tuple(pair) for key, pair in zip(keys, self._slots(np.array(keys, np.uint64)).tolist())}
        if any(first == second for first, second in slots.values()):
            return False  # a key with one slot twice would be found twice by `columns`: choose other hashes
        table_keys, table_columns = [0] * len(self.keys), [-1] * len(self.keys)
        for column, key in enumerate(keys):
            slot = slots[key][0]
            for _ in range(max_kicks):
                if table_keys[slot] == 0:
                    table_keys[slot], table_columns[slot] = key, column
                    break
                # evict the occupant to its other slot
                table_keys[slot], key = key, table_keys[slot]
                table_columns[slot], column = column, table_columns[slot]
                first, second = slots[key]
                slot = second if slot == first else first
            else:
                return False
        self.keys, self.key_columns = np.array(table_keys, np.uint64), np.array(table_columns, np.int32)
        return True

    def columns(self, keys: np.ndarray) -> np.ndarray:
        """Column of every key present, in the order of `keys`; absent keys are dropped."""
        slots = self._slots(keys)
        return self.key_columns[slots][self.keys[slots] == keys[:, None]]
