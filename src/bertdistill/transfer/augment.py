"""Tang et al. (2019) augmentation of the train texts: masking, POS-guided word replacement, n-gram sampling.

Pure functions over whitespace-separated words. Per word of a sample, one draw u ~ U(0, 1): u < p_mask puts the
teacher's mask token in its place, p_mask <= u < p_mask + p_pos puts a word of the same Penn Treebank tag drawn by
its frequency in the train texts (its surrounding punctuation and capitalisation kept); then with probability p_ng
the sample shrinks to a random n-gram, n uniform in 1..5. Each text has its own random stream, seeded by (seed, its
index), so its samples do not depend on the other texts. Left out on purpose: sub-word masking (words are what
the students see) and replacing words the tagger cannot read (mentions, hashtags, URLs, emoji, contractions).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from bertdistill.transfer.pos import Tagger

MAX_NGRAM = 5
# A word with a replaceable core: optional opening punctuation, letters (and inner hyphens), closing punctuation.
_WORD = re.compile(r"^([\"'(\[]*)([A-Za-z][A-Za-z-]*)([.,!?;:\"')\]]*)$")


@dataclass(frozen=True)
class AugmentParams:
    p_mask: float
    p_pos: float
    p_ng: float
    samples_per_text: int
    seed: int


def split_word(word: str) -> tuple[str, str, str] | None:
    """(prefix, core, suffix) of a word whose core can be POS-replaced, else None."""
    match = _WORD.match(word)
    return match.groups() if match else None


def tag_words(words: list[str], tagger: Tagger) -> list[str | None]:
    """The tag of each word's core (tagged in context), None for words that are not replaceable."""
    parts = [split_word(word) for word in words]
    tags = tagger([part[1] if part else word for part, word in zip(parts, words)])
    return [tag if part else None for part, tag in zip(parts, tags)]


class PosVocabulary:
    """Per tag, the train words carrying it and their counts: what a POS-guided replacement draws from."""

    def __init__(self, counts: dict[str, Counter]):
        self.words = {tag: list(counter) for tag, counter in counts.items()}
        self.cumulative = {tag: np.cumsum(list(counter.values())) for tag, counter in counts.items()}

    @classmethod
    def from_tagged(cls, tagged: Iterable[tuple[list[str], list[str | None]]]) -> "PosVocabulary":
        counts: dict[str, Counter] = {}
        for words, tags in tagged:
            for word, tag in zip(words, tags):
                if tag is not None:
                    core = split_word(word)[1]
                    counts.setdefault(tag, Counter())[core if tag.startswith("NNP") else core.lower()] += 1
        return cls(counts)

    def draw(self, tag: str, rng: np.random.Generator) -> str | None:
        """A word with this tag, drawn by unigram frequency; None if train has no word with it."""
        cumulative = self.cumulative.get(tag)
        if cumulative is None:
            return None
        index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return self.words[tag][min(index, len(cumulative) - 1)]


def _match_case(original: str, word: str) -> str:
    if len(original) > 1 and original.isupper():
        return word.upper()
    return word[:1].upper() + word[1:] if original[:1].isupper() else word


def augment_words(words: list[str], tags: list[str | None], params: AugmentParams, mask_token: str,
                  vocabulary: PosVocabulary | None, rng: np.random.Generator) -> str:
    """One synthetic sample of a text (already split into words and tagged)."""
    draws = rng.random(len(words))
    sample = []
    for word, tag, u in zip(words, tags, draws):
        if u < params.p_mask:
            word = mask_token
        elif u < params.p_mask + params.p_pos and tag is not None and vocabulary is not None:
            prefix, core, suffix = split_word(word)
            replacement = vocabulary.draw(tag, rng)
            word = word if replacement is None else prefix + _match_case(core, replacement) + suffix
        sample.append(word)
    if sample and rng.random() < params.p_ng:
        n = int(rng.integers(1, MAX_NGRAM + 1))
        start = int(rng.integers(0, max(len(sample) - n, 0) + 1))
        sample = sample[start:start + n]
    return " ".join(sample)


def augment(texts: list[str], params: AugmentParams, mask_token: str, tagger: Tagger | None) -> list[str]:
    """samples_per_text samples of every text, in text order; duplicates and copies of any input text dropped."""
    words = [text.split() for text in texts]
    use_pos = params.p_pos > 0 and tagger is not None
    tags = [tag_words(w, tagger) if use_pos else [None] * len(w) for w in words]
    vocabulary = PosVocabulary.from_tagged(zip(words, tags)) if use_pos else None
    seen = set(texts) | {" ".join(w) for w in words}  # copies of an original, spacing aside, are not new
    samples = []
    for index, (text_words, text_tags) in enumerate(zip(words, tags)):
        if not text_words:
            continue
        rng = np.random.default_rng([params.seed, index])
        for _ in range(params.samples_per_text):
            sample = augment_words(text_words, text_tags, params, mask_token, vocabulary, rng)
            if sample not in seen:
                seen.add(sample)
                samples.append(sample)
    return samples
