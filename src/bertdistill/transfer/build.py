"""The transfer set: the train texts first (row i is train row i, so gold labels stay aligned), then augmented
samples of them, then unlabelled corpus texts, without duplicates and without any val or test text (a corpus
that happens to contain the test split must not let the students see the teacher's view of it).

It is saved as `transfer-<key>.json` next to the soft labels, the key hashing everything it depends on (train
texts, corpus texts, the resolved [transfer] settings, the mask token, the tagger), so the label and students
stages read the same texts and a changed setting or corpus builds a new set instead of reusing a stale one.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bertdistill.config import DataConfig, TransferConfig
from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.labels.soft_labels import texts_fingerprint
from bertdistill.transfer.augment import AugmentParams, augment
from bertdistill.transfer.corpora import locate_corpus, read_corpus
from bertdistill.transfer.pos import load_tagger, tagger_id

TRANSFER_FORMAT = "bertdistill-transfer-set"
TANG_P_POS = 0.1  # p_pos when the config leaves it unset and a tagger is installed


@dataclass(frozen=True)
class TransferSet:
    texts: list[str]  # train texts, then augmented, then unlabelled
    n_train: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def has_extra(self) -> bool:
        """Whether it holds texts without gold labels (students then train on the teacher's logits alone)."""
        return len(self.texts) > self.n_train


def is_trivial(config: TransferConfig) -> bool:
    """No augmentation and no corpus: the transfer set is the train texts."""
    return not config.augments and not config.corpora


def needs_mask_token(config: TransferConfig) -> bool:
    return config.augments and config.p_mask > 0


def resolve_params(config: TransferConfig, tagger_installed: bool, n_train: int, warn: bool = True) -> AugmentParams:
    """The augmentation settings in force: an unset p_pos is Tang's 0.1 with a tagger, else 0 (with a warning); an
    unset sample count is sized to max_augmented for n_train train texts."""
    p_pos = config.p_pos
    if p_pos is None:
        p_pos = min(TANG_P_POS, 1 - config.p_mask) if tagger_installed else 0.0
        if not tagger_installed and config.augments and warn:
            print("warning: no part-of-speech tagger installed, so augmentation only masks and samples n-grams; "
                  "pip install textblob for POS-guided replacement")
    elif p_pos > 0 and config.augments and not tagger_installed:
        raise BertdistillError(f"transfer.p_pos = {p_pos} needs a part-of-speech tagger: pip install "
                               "textblob, or set transfer.p_pos = 0")
    return AugmentParams(config.p_mask, p_pos, config.p_ng, config.samples_for(n_train), config.seed)


def check(config: TransferConfig, data: DataConfig) -> None:
    """What can be checked before any work: the corpora exist, a POS tagger is there if p_pos asks for one."""
    for index, corpus in enumerate(config.corpora):
        if corpus.format != "hf":
            locate_corpus(corpus, data, f"transfer.corpora[{index}]")
    if config.augments:
        resolve_params(config, load_tagger() is not None, n_train=1, warn=False)  # checks p_pos only


def build_transfer_set(train_texts: list[str], config: TransferConfig, data: DataConfig, mask_token: str | None,
                       cache_dir: Path | None = None, held_out: list[str] = ()) -> TransferSet:
    """The transfer set for these train texts, read from cache_dir when already built there; no extra text equals
    one of `held_out` (the val and test texts)."""
    if is_trivial(config):
        return TransferSet(list(train_texts), len(train_texts), {"train": len(train_texts)})
    if needs_mask_token(config) and not mask_token:
        raise BertdistillError("transfer.p_mask > 0 needs a teacher tokenizer with a mask token; "
                               "set transfer.p_mask = 0 (or transfer.augment = false)")
    corpora = [read_corpus(c, data, f"transfer.corpora[{i}]") for i, c in enumerate(config.corpora)]
    tagger = load_tagger() if config.augments else None
    params = resolve_params(config, tagger is not None, len(train_texts))
    key = _key(train_texts, corpora, config, params, mask_token, held_out)
    path = None if cache_dir is None else Path(cache_dir) / f"transfer-{key}.json"
    if path is not None and path.exists():
        return _read(path, train_texts)
    start = time.perf_counter()
    made = augment(train_texts, params, mask_token or "", tagger) if config.augments else []
    augmented = _cap(made, config.max_augmented, config.seed)
    extra, counts = _merge(train_texts, augmented, corpora, held_out)
    extra = _cap(extra, config.max_texts, config.seed)
    counts.update(augmented_made=len(made), kept=len(extra), seconds=round(time.perf_counter() - start, 1))
    result = TransferSet(list(train_texts) + extra, len(train_texts), counts)
    print(f"transfer set: {len(train_texts)} train + {len(extra)} more texts ({_describe(counts)})")
    if path is not None:
        files.write_json(path, {"format": TRANSFER_FORMAT, "version": files.FORMAT_VERSION, "key": key,
                             "n_train": result.n_train, "counts": counts, "texts": result.texts})
    return result


def _merge(train_texts: list[str], augmented: list[str], corpora: list[list[str]],
           held_out: list[str]) -> tuple[list[str], dict]:
    """Augmented then corpus texts, each once, none equal to a train, val or test text."""
    held, seen, extra = set(held_out), set(train_texts), []
    counts = {"train": len(train_texts), "augmented": len(augmented), "unlabelled": sum(map(len, corpora)),
              "held_out_dropped": 0}
    for text in [*augmented, *(text for corpus in corpora for text in corpus)]:
        if text in held:
            counts["held_out_dropped"] += 1
        elif text not in seen:
            seen.add(text)
            extra.append(text)
    counts["duplicates_dropped"] = (counts["augmented"] + counts["unlabelled"] - counts["held_out_dropped"]
                                    - len(extra))
    return extra, counts


def _cap(extra: list[str], max_texts: int | None, seed: int) -> list[str]:
    """At most max_texts of them: a seeded random subset, in their original order."""
    if max_texts is None or len(extra) <= max_texts:
        return extra
    keep = np.sort(np.random.default_rng(seed).choice(len(extra), size=max_texts, replace=False))
    return [extra[i] for i in keep]


def _describe(counts: dict) -> str:
    return (f"{counts['augmented']} augmented (of {counts['augmented_made']} made), "
            f"{counts['unlabelled']} unlabelled, {counts['duplicates_dropped']} duplicates and "
            f"{counts['held_out_dropped']} val/test texts dropped, {counts['seconds']} s")


def _key(train_texts, corpora, config: TransferConfig, params: AugmentParams, mask_token: str | None,
         held_out: list[str]) -> str:
    settings = {**config.model_dump(mode="json", exclude={"corpora"}), **asdict(params),
                "mask_token": mask_token, "tagger": tagger_id() if params.p_pos > 0 else None,
                "train": texts_fingerprint(train_texts), "corpora": [texts_fingerprint(c) for c in corpora],
                "held_out": texts_fingerprint(sorted(set(held_out)))}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _read(path: Path, train_texts: list[str]) -> TransferSet:
    try:
        saved = files.read_json(path)
        texts, n_train = saved["texts"], saved["n_train"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BertdistillError(f"{path}: unreadable transfer set ({err}); delete it to rebuild") from None
    header = (saved.get("format"), saved.get("version"))
    if (header != (TRANSFER_FORMAT, files.FORMAT_VERSION) or n_train != len(train_texts)
            or texts[:n_train] != train_texts):
        raise BertdistillError(f"{path}: not the transfer set of these train texts; delete it to rebuild")
    return TransferSet(texts, n_train, saved.get("counts", {}))
