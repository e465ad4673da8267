"""The teacher's raw logits for a list of texts, cached on disk in chunks under a key of (teacher, backend, texts).

Students read soft targets from here and never run the teacher. Logits are stored at T = 1; a temperature is
applied by whoever trains on them, so one cache serves every temperature.

Layout: `cache_dir/<teacher>[-<backend>]-<texts>/manifest.json` and `chunk-00000.npz`, ... Chunk c holds the
logits of rows [c * chunk_rows, (c + 1) * chunk_rows); it is written atomically, then the manifest records its row
range and sha256. Labeling goes chunk by chunk, so memory holds one chunk's activations, and an interrupted run
resumes at the chunks the manifest does not vouch for; a chunk whose bytes, shape or values do not match its record
is labeled again, never used. A manifest written for another teacher or other texts is refused. Chunks can be
shared out between processes (`Shard`, see label_distributed.py): chunk c goes to process c mod P and only the
first process writes the manifest, so the result is the same concatenation in row order for any P.
Each chunk also stores a 64-bit hash of each of its texts, so a new text list (a corpus added, augmentation turned
on) labels only the texts that no cache of the same teacher key holds yet; the others' logits are copied. They come
from another batch, so under bf16 they can differ from a fresh pass in the last bits, as between any two batchings.
Single-file caches (`<key>.npz`) written by earlier versions are still read.
"""
from __future__ import annotations

import hashlib
import io as bytes_io
import time
import zipfile
from functools import partial
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from bertdistill.core import files
from bertdistill.core.processes import Shard
from bertdistill.errors import BertdistillError
from bertdistill.names import TEACHER_INT8, TEACHER_ONNX

CACHE_FORMAT = "bertdistill-soft-labels"
CHUNK_ROWS = 4096  # ~20 s of MiniLM on a CPU core: what an interruption can cost
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")


def teacher_fingerprint(teacher_folder: Path) -> str:
    """Hash of the teacher's weights and config: a different teacher never reuses a cache. The weights are every
    safetensors file of the folder (one, or the shards of a large model), in name order."""
    digest = hashlib.sha256()
    folder = Path(teacher_folder)
    weights = sorted(p.name for p in folder.glob("model*.safetensors"))
    if not weights:
        raise BertdistillError(f"{folder}: no safetensors weights (model*.safetensors)")
    for name in ("config.json", *weights):
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def teacher_key(teacher_folder: Path, backend: str = "torch") -> str:
    """The teacher's fingerprint, plus the backend when it is not PyTorch fp32 (bf16 or int8 logits are not fp32
    logits), and for an ONNX export its recipe (a new recipe changes them)."""
    from bertdistill.teacher.onnx_export import RECIPE

    fingerprint = teacher_fingerprint(teacher_folder)
    if backend.startswith("torch"):
        return fingerprint if backend == "torch" else f"{fingerprint}-{backend}"
    return f"{fingerprint}-{backend}-r{RECIPE}"


def texts_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))  # length prefix: ["ab","c"] != ["a","bc"]
        digest.update(encoded)
    return digest.hexdigest()[:16]


def cache_path(cache_dir: Path, key: str, texts: list[str]) -> Path:
    """The folder of chunks for these texts labeled by the teacher `key`."""
    return Path(cache_dir) / f"{key}-{texts_fingerprint(texts)}"


def legacy_path(cache_dir: Path, key: str, texts: list[str]) -> Path:
    return Path(cache_dir) / f"{key}-{texts_fingerprint(texts)}.npz"


def teacher_logits(teacher, texts: list[str], cache_dir: Path, batch_size: int = 128, *, key: str | None = None,
                   chunk_rows: int = CHUNK_ROWS, shard: Shard = Shard()) -> np.ndarray:
    """(n, k) logits from the cache; chunks not (validly) cached yet are labeled and stored first.

    `teacher` is anything with `predict_logits(texts, batch_size=...)` (Teacher, OnnxTeacher); `key` names it in
    the cache (default: the fingerprint of `teacher.folder`)."""
    key = key or teacher_key(teacher.folder)
    folder = cache_path(cache_dir, key, texts)
    if not (folder / "manifest.json").exists():
        legacy = _read_legacy(legacy_path(cache_dir, key, texts), len(texts))
        if legacy is not None:
            return legacy
    manifest = label_chunks(teacher, texts, folder, key, batch_size, chunk_rows, shard)
    return read_chunks(folder, manifest)


def load_cached(teacher_folder: Path, texts: list[str], cache_dir: Path, backend: str = "torch") -> np.ndarray:
    """Cached logits for `texts`, or an error that says which stage to run first."""
    key = teacher_key(teacher_folder, backend)
    folder = cache_path(cache_dir, key, texts)
    if not (folder / "manifest.json").exists():
        if legacy_path(cache_dir, key, texts).exists():
            return read_cached(legacy_path(cache_dir, key, texts), len(texts))
        other = _other_teachers(Path(cache_dir), texts, key)
        if other:
            raise BertdistillError(f"the soft labels for these texts in {cache_dir} come from another teacher "
                                   f"({', '.join(other)}), not this one ({key}); run `bertdistill label` to label "
                                   "them with this teacher")
        raise BertdistillError(f"no teacher logits for these texts in {cache_dir}; run `bertdistill label` first")
    manifest = open_manifest(folder, key, texts, CHUNK_ROWS, create=False)
    missing = [c for c in range(n_chunks(manifest)) if _valid_chunk(folder, manifest, c) is None]
    if missing:
        raise BertdistillError(f"{folder}: {len(missing)} of {n_chunks(manifest)} chunks of teacher logits are "
                               "missing or damaged; run `bertdistill label` to label them")
    return read_chunks(folder, manifest)


def open_manifest(folder: Path, key: str, texts: list[str], chunk_rows: int, create: bool = True) -> dict:
    """The folder's manifest (written first if absent and `create`); one for another teacher or texts is refused."""
    path = folder / "manifest.json"
    expected = {"teacher": key, "texts": texts_fingerprint(texts), "rows": len(texts)}
    manifest = _read_manifest(path)
    if manifest is None:
        manifest = {"format": CACHE_FORMAT, "version": files.FORMAT_VERSION, **expected, "chunk_rows": chunk_rows,
                    "classes": None, "chunks": {}}
        if create:
            files.write_json(path, manifest)
        return manifest
    for field, value in expected.items():
        if manifest.get(field) != value:
            raise BertdistillError(f"{path}: soft labels made for {field} {manifest.get(field)!r}, not {value!r} "
                                   "(a cache from another teacher or of other texts); delete that folder or "
                                   "choose another cache directory")
    return manifest


def n_chunks(manifest: dict) -> int:
    return -(-manifest["rows"] // manifest["chunk_rows"])


def chunk_range(manifest: dict, index: int) -> tuple[int, int]:
    start = index * manifest["chunk_rows"]
    return start, min(start + manifest["chunk_rows"], manifest["rows"])


def label_chunks(teacher, texts: list[str], folder: Path, key: str, batch_size: int = 128,
                 chunk_rows: int = CHUNK_ROWS, shard: Shard = Shard()) -> dict:
    """Label every chunk not validly cached (this process: its share of them); returns the final manifest."""
    if shard.rank == 0:
        open_manifest(folder, key, texts, chunk_rows)
    shard.barrier()
    manifest = open_manifest(folder, key, texts, chunk_rows, create=False)
    todo = [c for c in range(n_chunks(manifest)) if _valid_chunk(folder, manifest, c) is None]
    mine = todo[shard.rank::shard.world]
    known = _labeled_rows(folder.parent, key) if mine else None
    began, done, reused = time.perf_counter(), 0, 0
    rows = sum(stop - start for start, stop in map(partial(chunk_range, manifest), mine))
    where = f" [{shard.rank}/{shard.world}]" if shard.world > 1 else ""
    bar = tqdm(total=rows, unit="text", desc=f"teacher labeling{where}", disable=not todo, mininterval=2)
    for step in range(-(-len(todo) // shard.world)):  # rounds: each process labels at most one chunk per round
        records = ([_label_chunk(teacher, texts, folder, manifest, mine[step], batch_size, known)]
                   if step < len(mine) else [])
        bar.update(sum(r["stop"] - r["start"] for r in records))
        records = shard.gather(records)
        done += sum(r["stop"] - r["start"] - r["reused"] for r in records)
        reused += sum(r["reused"] for r in records)
        if shard.rank == 0:
            _record(folder, manifest, records)
    bar.close()
    if todo and shard.rank == 0:
        _record_speed(folder, manifest, done, time.perf_counter() - began, len(todo), shard.world, reused)
    shard.barrier()
    return open_manifest(folder, key, texts, chunk_rows, create=False)


def _label_chunk(teacher, texts: list[str], folder: Path, manifest: dict, index: int, batch_size: int,
                 known: LabeledRows) -> dict:
    """Label one chunk (rows that `known` holds are copied, not labeled) and write it with its texts' hashes."""
    start, stop = chunk_range(manifest, index)
    hashes = text_hashes(texts[start:stop])
    found, logits = known.lookup(hashes)
    fresh = [t for t, hit in zip(texts[start:stop], found) if not hit]
    if fresh:
        new = np.asarray(teacher.predict_logits(fresh, batch_size=batch_size), dtype=np.float32)
        if logits is None:
            logits = new
        else:
            logits[~found] = new
    name = f"chunk-{index:05d}.npz"
    buffer = bytes_io.BytesIO()
    np.savez(buffer, logits=logits, text_hashes=hashes)
    files.write_bytes(folder / name, buffer.getvalue())
    return {"index": index, "file": name, "start": start, "stop": stop, "classes": int(logits.shape[1]),
            "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(), "reused": int(found.sum())}


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """A 64-bit hash per text (blake2b of its UTF-8 bytes): what finds a text's logits in another cache folder."""
    return np.array([int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
                     for t in texts], dtype=np.uint64)


class LabeledRows:
    """Every row of the cache folders of one teacher key, findable by text hash (sorted, for a binary search)."""

    def __init__(self, hashes: np.ndarray, logits: np.ndarray):
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.logits = hashes[order], logits[order]

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, logits with the found rows filled), or (all False, None) when nothing is known."""
        if not len(self.hashes):
            return np.zeros(len(hashes), bool), None
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        found = self.hashes[at] == hashes
        logits = np.zeros((len(hashes), self.logits.shape[1]), dtype=np.float32)
        logits[found] = self.logits[at[found]]
        return found, logits


def _labeled_rows(cache_dir: Path, key: str) -> LabeledRows:
    """The rows already labeled by teacher `key` in any folder of cache_dir, from its sound chunks that store
    their texts' hashes (chunks of earlier versions do not, and are skipped)."""
    chunks = []
    for folder in sorted(cache_dir.glob(f"{key}-*")):
        manifest = _read_manifest(folder / "manifest.json") if folder.is_dir() else None
        if manifest is not None and manifest.get("teacher") == key:
            chunks += [c for c in (_sound_chunk(folder, manifest, i) for i in range(n_chunks(manifest)))
                       if c is not None and "text_hashes" in c]
    if not chunks:
        return LabeledRows(np.zeros(0, np.uint64), np.zeros((0, 0), np.float32))
    return LabeledRows(np.concatenate([c["text_hashes"] for c in chunks]),
                       np.concatenate([c["logits"] for c in chunks]))


def _record(folder: Path, manifest: dict, records: list[dict]) -> None:
    for record in records:
        manifest["classes"] = manifest["classes"] or record["classes"]
        manifest["chunks"][str(record["index"])] = {k: record[k] for k in ("file", "start", "stop", "sha256")}
    files.write_json(folder / "manifest.json", manifest)


def _record_speed(folder: Path, manifest: dict, texts: int, seconds: float, chunks: int, processes: int,
                  reused: int = 0) -> None:
    rate = texts / max(seconds, 1e-9)
    cached = n_chunks(manifest) - chunks
    print(f"teacher labeling: {texts} texts in {seconds:.1f} s = {rate:.0f} texts/s ({processes} process"
          f"{'es' if processes > 1 else ''}; {cached} of {n_chunks(manifest)} chunks were already cached, "
          f"{reused} texts copied from other caches of this teacher)")
    manifest["labeling"] = {"texts": texts, "seconds": round(seconds, 3), "texts_per_s": round(rate, 1),
                            "processes": processes, "reused_texts": reused}
    files.write_json(folder / "manifest.json", manifest)


def iter_chunks(folder: Path, manifest: dict) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, logits) per chunk in row order: a consumer can stream a cache larger than memory."""
    for index in range(n_chunks(manifest)):
        logits = _valid_chunk(folder, manifest, index)
        if logits is None:
            raise BertdistillError(f"{folder}: chunk {index} is missing or damaged; run `bertdistill label` again")
        yield *chunk_range(manifest, index), logits


def read_chunks(folder: Path, manifest: dict) -> np.ndarray:
    """The (rows, k) logits of every chunk, in row order."""
    parts = [logits for _, _, logits in iter_chunks(folder, manifest)]
    return np.concatenate(parts) if parts else np.zeros((0, manifest["classes"] or 0), dtype=np.float32)


def _valid_chunk(folder: Path, manifest: dict, index: int) -> np.ndarray | None:
    """The chunk's logits if its file matches the manifest's record (range, sha256, shape, finite), else None."""
    stored = _sound_chunk(folder, manifest, index)
    return None if stored is None else stored["logits"]


def _sound_chunk(folder: Path, manifest: dict, index: int) -> dict[str, np.ndarray] | None:
    """The chunk's arrays (logits, and text_hashes if it has them) if it passes _valid_chunk's checks, else None."""
    record = manifest["chunks"].get(str(index))
    if record is None or (record.get("start"), record.get("stop")) != chunk_range(manifest, index):
        return None
    try:
        data = (folder / record["file"]).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        return None
    try:
        with np.load(bytes_io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    logits, rows = arrays.get("logits"), record["stop"] - record["start"]
    if (logits is None or logits.shape != (rows, manifest["classes"]) or logits.dtype != np.float32
            or not np.isfinite(logits).all()):
        return None
    if "text_hashes" in arrays and arrays["text_hashes"].shape != (rows,):
        return None
    return arrays


def _read_manifest(path: Path) -> dict | None:
    """The manifest, or None if absent; an unreadable one is set aside (its chunks cannot be trusted)."""
    if not path.exists():
        return None
    try:
        manifest = files.read_json(path)
        header = (manifest.get("format"), manifest.get("version"))
        if header == (CACHE_FORMAT, files.FORMAT_VERSION) and isinstance(manifest.get("chunks"), dict):
            return manifest
    except (OSError, ValueError, AttributeError):
        pass
    print(f"warning: {path} is unreadable; its chunks will be labeled again")
    return None


def _other_teachers(cache_dir: Path, texts: list[str], key: str) -> list[str]:
    """Keys of other teachers whose soft labels for these texts are in cache_dir."""
    suffix = f"-{texts_fingerprint(texts)}"
    names = [p.name.removesuffix(".npz") for p in cache_dir.glob(f"*{suffix}*")] if cache_dir.is_dir() else []
    return sorted({n.removesuffix(suffix) for n in names if n.endswith(suffix)} - {key})


def _read_legacy(path: Path, rows: int) -> np.ndarray | None:
    """A single-file cache of an earlier version if present and sound; a damaged one is ignored (labeled anew)."""
    if not path.exists():
        return None
    try:
        return read_cached(path, rows)
    except BertdistillError as err:
        print(f"warning: {err}; labeling these texts again")
        return None


def read_cached(path: Path, rows: int) -> np.ndarray:
    """A single-file (earlier version) cache, checked: readable, `rows` rows, finite."""
    try:
        logits = files.read_npz(path)["logits"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated: EOF / bad zip
        raise BertdistillError(f"{path}: unreadable soft-label cache ({err}); delete it to re-label") from None
    if logits.shape[0] != rows or not np.isfinite(logits).all():
        raise BertdistillError(f"{path}: soft-label cache has {logits.shape[0]} rows for {rows} texts or "
                               "non-finite values; delete it to re-label")
    return logits


def open_labeler(teacher_dir: Path, backend: str = "torch", device: str = "auto", threads: int | None = None,
                 export_dir: Path | None = None, calibration_texts: Sequence[str] = ()):
    """What labels the texts: the PyTorch teacher (fp32, or under bf16 autocast), or its ONNX Runtime export (fp32
    or int8) on the CPU.

    ONNX exports go to export_dir (default: beside the teacher folder, where `evaluate` puts them too); a new int8
    export is calibrated on `calibration_texts` (train texts; see onnx_export)."""
    if backend not in BACKENDS:
        raise BertdistillError(f"teacher.label_backend: '{backend}' is not one of {', '.join(BACKENDS)}")
    if backend.startswith("torch"):
        from bertdistill.teacher.model import Teacher

        return Teacher(teacher_dir, device, bf16=backend == "torch-bf16")
    import torch

    from bertdistill.teacher import onnx_export

    folders = onnx_export.export_teacher(teacher_dir, export_dir or Path(teacher_dir).parent, calibration_texts)
    variant = TEACHER_ONNX if backend == "onnx" else TEACHER_INT8
    return onnx_export.OnnxTeacher(folders[variant], threads or torch.get_num_threads())
