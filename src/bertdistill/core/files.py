"""Atomic, pickle-free writes: a reader never sees a half-written file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bertdistill.errors import BertdistillError

FORMAT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_dir(folder: Path, build) -> Path:
    """Build a folder atomically: `build(staging)` fills a temporary sibling, which then replaces `folder`, so a
    reader (or a resumed run) never takes a half-written folder for a finished one."""
    import shutil

    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        build(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda handle: handle.write(data))


def write_streamed(path: Path, write) -> None:
    """`write(handle)` fills a binary file that appears at `path` only once it is complete."""
    _atomic_write(path, write)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_to_builtin) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_header(folder: Path, expected_format: str, what: str) -> dict:
    """The `bertdistill.json` of a saved model folder, after checking its format and version."""
    path = Path(folder) / "bertdistill.json"
    if not path.exists():
        raise BertdistillError(f"{folder}: not {what} (no bertdistill.json)")
    header = read_json(path)
    if header.get("format") != expected_format or header.get("version") != FORMAT_VERSION:
        raise BertdistillError(f"{path}: unsupported format {header.get('format')!r} "
                               f"version {header.get('version')!r}")
    return header


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    _atomic_write(path, lambda handle: np.savez(handle, **arrays))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def dir_size(path: Path) -> int:
    """Bytes on disk of every file under `path` (or of the file itself)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
