"""The teacher's raw logits for a list of texts, cached on disk under a key of (teacher weights, texts).

Students read soft targets from here and never run the teacher. Logits are stored at T = 1; a temperature
is applied by whoever trains on them, so one cache serves every temperature.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from . import io
from .errors import BertdistillError


def teacher_fingerprint(teacher_folder: Path) -> str:
    """Hash of the teacher's weights and config: a different teacher never reuses a cache."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with open(Path(teacher_folder) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def texts_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))  # length prefix: ["ab","c"] != ["a","bc"]
        digest.update(encoded)
    return digest.hexdigest()[:16]


def cache_path(cache_dir: Path, teacher_key: str, texts: list[str]) -> Path:
    return Path(cache_dir) / f"{teacher_key}-{texts_fingerprint(texts)}.npz"


def teacher_logits(teacher, texts: list[str], cache_dir: Path, batch_size: int = 128) -> np.ndarray:
    """(n, k) logits from the cache, computing and storing them on a miss."""
    path = cache_path(cache_dir, teacher_fingerprint(teacher.folder), texts)
    if path.exists():
        return read_cached(path, len(texts))
    logits = teacher.predict_logits(texts, batch_size=batch_size, progress=True)
    io.write_npz(path, logits=logits)
    return logits


def load_cached(teacher_folder: Path, texts: list[str], cache_dir: Path) -> np.ndarray:
    """Cached logits for `texts`, or an error that says which stage to run first."""
    path = cache_path(cache_dir, teacher_fingerprint(teacher_folder), texts)
    if not path.exists():
        raise BertdistillError(f"no teacher logits for these texts in {cache_dir}; run `bertdistill label` first")
    return read_cached(path, len(texts))


def read_cached(path: Path, rows: int) -> np.ndarray:
    try:
        logits = io.read_npz(path)["logits"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated: EOF / bad zip
        raise BertdistillError(f"{path}: unreadable soft-label cache ({err}); delete it to re-label") from None
    if logits.shape[0] != rows or not np.isfinite(logits).all():
        raise BertdistillError(f"{path}: soft-label cache has {logits.shape[0]} rows for {rows} texts or "
                               "non-finite values; delete it to re-label")
    return logits
