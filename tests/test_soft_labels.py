"""The on-disk cache of teacher logits: keys, hits, misses, chunks, resuming, damaged chunks, other teachers,
single-file caches of earlier versions, and the ONNX labeling backends."""
from __future__ import annotations

import hashlib
import shutil
import zlib

import numpy as np
import pytest

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.labels.soft_labels import (
    BACKENDS,
    cache_path,
    legacy_path,
    load_cached,
    open_labeler,
    read_cached,
    teacher_fingerprint,
    teacher_key,
    teacher_logits,
    texts_fingerprint,
)

TEXTS = ["first text", "second, longer text", "third"]
MANY = [f"text number {i} " + "word " * (i % 7) for i in range(10)]  # 4 chunks of 3 rows (the last has 1)


class FakeTeacher:
    """Stands in for bertdistill.teacher.model.Teacher: a folder with weights, and logits that count the calls."""

    def __init__(self, folder, k: int = 3, seed: int = 0):
        self.folder = folder
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.calls = []

    def predict_logits(self, texts, batch_size=128, progress=False):
        self.calls.append((list(texts), batch_size))
        return self.rng.normal(size=(len(texts), self.k)).astype(np.float32)


class TextTeacher(FakeTeacher):
    """Logits that depend on each text alone (like a real teacher), and an optional interruption after n calls."""

    def __init__(self, folder, interrupt_after: int | None = None):
        super().__init__(folder)
        self.interrupt_after = interrupt_after

    def predict_logits(self, texts, batch_size=128, progress=False):
        if self.interrupt_after is not None and len(self.calls) == self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append((list(texts), batch_size))
        return np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=3) for t in texts]
                        ).astype(np.float32)


def make_teacher_folder(folder, weights: bytes = b"weights-v1", config: bytes = b'{"hidden_size": 32}'):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(config)
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.fixture()
def teacher(tmp_path):
    return FakeTeacher(make_teacher_folder(tmp_path / "teacher"))


@pytest.fixture()
def cache_dir(tmp_path):
    return tmp_path / "cache"


def chunked(teacher, cache_dir, texts=MANY):
    return teacher_logits(teacher, texts, cache_dir, batch_size=2, chunk_rows=3)


def chunk_folder(teacher, cache_dir, texts=MANY):
    return cache_path(cache_dir, teacher_fingerprint(teacher.folder), texts)


# --- keys, hits and misses -------------------------------------------------------------------------------------------

def test_miss_computes_and_stores_then_hit_returns_identical_array_without_teacher(teacher, cache_dir):
    first = teacher_logits(teacher, TEXTS, cache_dir, batch_size=7)
    assert first.shape == (3, 3)
    assert len(teacher.calls) == 1 and teacher.calls[0] == (TEXTS, 7)
    assert (cache_path(cache_dir, teacher_fingerprint(teacher.folder), TEXTS) / "manifest.json").exists()

    second = teacher_logits(teacher, TEXTS, cache_dir)
    assert len(teacher.calls) == 1, "a cache hit must not run the teacher"
    np.testing.assert_array_equal(second, first)
    assert second.dtype == first.dtype
    np.testing.assert_array_equal(load_cached(teacher.folder, TEXTS, cache_dir), first)


def test_different_texts_use_a_different_key_and_the_teacher_labels_only_texts_no_cache_holds(teacher, cache_dir):
    first = teacher_logits(teacher, TEXTS, cache_dir)
    for other, fresh in ((TEXTS[:2], []), (TEXTS[::-1], []), (TEXTS + [""], [""]),
                         ([TEXTS[0] + " ", *TEXTS[1:]], [TEXTS[0] + " "])):
        assert texts_fingerprint(other) != texts_fingerprint(TEXTS)
        calls = len(teacher.calls)
        result = teacher_logits(teacher, other, cache_dir)
        assert result.shape == (len(other), 3)
        assert [texts for texts, _ in teacher.calls[calls:]] == ([fresh] if fresh else [])
        for row, text in enumerate(other):  # a text labeled before keeps its logits, wherever it now sits
            if text in TEXTS:
                np.testing.assert_array_equal(result[row], first[TEXTS.index(text)])
    np.testing.assert_array_equal(teacher_logits(teacher, TEXTS, cache_dir), first)
    assert len(teacher.calls) == 3
    assert len(list(cache_dir.glob("*/manifest.json"))) == 5


def test_rows_are_copied_only_from_the_same_teacher_key_and_from_sound_chunks_with_text_hashes(teacher, cache_dir):
    first = chunked(teacher, cache_dir)
    other_key = teacher_key(teacher.folder, "torch-bf16")
    teacher_logits(teacher, MANY[:3], cache_dir, key=other_key)  # bf16 logits are not fp32 ones: labeled anew
    assert teacher.calls[-1][0] == MANY[:3]

    folder = chunk_folder(teacher, cache_dir)
    with np.load(folder / "chunk-00000.npz") as stored:  # a sound chunk of an earlier version: logits only
        np.savez(folder / "chunk-00000.npz", logits=stored["logits"])
    manifest = files.read_json(folder / "manifest.json")
    manifest["chunks"]["0"]["sha256"] = hashlib.sha256((folder / "chunk-00000.npz").read_bytes()).hexdigest()
    files.write_json(folder / "manifest.json", manifest)
    np.testing.assert_array_equal(load_cached(teacher.folder, MANY, cache_dir)[:3], first[:3])
    (folder / "chunk-00001.npz").write_bytes(b"damaged")  # rows 3-5 can no longer be copied
    calls = len(teacher.calls)
    result = teacher_logits(teacher, MANY[:6] + ["new"], cache_dir, batch_size=2, chunk_rows=3)
    assert sorted(t for texts, _ in teacher.calls[calls:] for t in texts) == sorted(MANY[:6] + ["new"])
    assert not np.array_equal(result[:6], first[:6])  # labeled again (FakeTeacher draws new numbers)

    calls = len(teacher.calls)
    reused = teacher_logits(teacher, ["new", MANY[9], MANY[7]], cache_dir)
    assert [texts for texts, _ in teacher.calls[calls:]] == []
    np.testing.assert_array_equal(reused, np.stack([result[6], first[9], first[7]]))


@pytest.mark.parametrize("changed", ["model.safetensors", "config.json"])
def test_different_teacher_files_use_a_different_key(tmp_path, cache_dir, changed):
    one = FakeTeacher(make_teacher_folder(tmp_path / "one"), seed=0)
    changes = {"weights": b"weights-v2"} if changed == "model.safetensors" else {"config": b'{"hidden_size": 64}'}
    two = FakeTeacher(make_teacher_folder(tmp_path / "two", **changes), seed=1)
    same = FakeTeacher(make_teacher_folder(tmp_path / "same"), seed=2)
    assert teacher_fingerprint(one.folder) != teacher_fingerprint(two.folder)
    assert teacher_fingerprint(one.folder) == teacher_fingerprint(same.folder)  # contents, not the path

    from_one = teacher_logits(one, TEXTS, cache_dir)
    from_two = teacher_logits(two, TEXTS, cache_dir)
    assert len(two.calls) == 1
    assert not np.array_equal(from_one, from_two)
    np.testing.assert_array_equal(teacher_logits(same, TEXTS, cache_dir), from_one)  # same weights elsewhere: hit
    assert same.calls == []


def test_teacher_fingerprint_reads_large_files_completely(tmp_path):
    big = bytes(range(256)) * 40_000  # > one 4 MiB read block
    a = make_teacher_folder(tmp_path / "a", weights=big)
    b = make_teacher_folder(tmp_path / "b", weights=big[:-1] + b"\x00")  # differs in the last byte only
    assert teacher_fingerprint(a) != teacher_fingerprint(b)


def test_texts_fingerprint_is_length_prefixed():
    assert texts_fingerprint(["ab", "c"]) != texts_fingerprint(["a", "bc"])
    assert texts_fingerprint(["", "abc"]) != texts_fingerprint(["abc", ""])
    assert texts_fingerprint(["abc"]) != texts_fingerprint(["abc", ""])
    assert texts_fingerprint([]) != texts_fingerprint([""])
    assert texts_fingerprint(["é"]) != texts_fingerprint(["e"])
    assert texts_fingerprint(["ab", "c"]) == texts_fingerprint(["ab", "c"])


def test_backends_have_their_own_keys(teacher):
    keys = {teacher_key(teacher.folder, backend) for backend in BACKENDS}
    assert len(keys) == len(BACKENDS) and teacher_key(teacher.folder) == teacher_fingerprint(teacher.folder)


def test_load_cached_miss_says_which_stage_to_run(teacher, cache_dir):
    with pytest.raises(BertdistillError, match="bertdistill label"):
        load_cached(teacher.folder, TEXTS, cache_dir)


# --- chunks and resuming ---------------------------------------------------------------------------------------------

def test_chunks_cover_the_rows_in_order_and_the_manifest_records_them(tmp_path, cache_dir):
    teacher = TextTeacher(make_teacher_folder(tmp_path / "t"))
    logits = chunked(teacher, cache_dir)
    assert [texts for texts, _ in teacher.calls] == [MANY[0:3], MANY[3:6], MANY[6:9], MANY[9:10]]
    np.testing.assert_array_equal(logits, TextTeacher(teacher.folder).predict_logits(MANY))
    manifest = files.read_json(chunk_folder(teacher, cache_dir) / "manifest.json")
    assert [(c["start"], c["stop"]) for c in manifest["chunks"].values()] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert manifest["rows"] == 10 and manifest["classes"] == 3 and manifest["labeling"]["texts"] == 10
    assert all(len(c["sha256"]) == 64 for c in manifest["chunks"].values())


@pytest.mark.parametrize("k", [1, 3])
def test_an_interrupted_labeling_resumes_with_the_remaining_chunks_only(tmp_path, cache_dir, k):
    folder = make_teacher_folder(tmp_path / "t")
    with pytest.raises(KeyboardInterrupt):
        chunked(TextTeacher(folder, interrupt_after=k), cache_dir)
    with pytest.raises(BertdistillError, match=f"{4 - k} of 4 chunks"):
        load_cached(folder, MANY, cache_dir)
    resumed = TextTeacher(folder)
    logits = chunked(resumed, cache_dir)
    assert len(resumed.calls) == 4 - k and resumed.calls[0][0] == MANY[3 * k:3 * k + 3]
    uninterrupted = chunked(TextTeacher(folder), tmp_path / "other-cache")
    np.testing.assert_array_equal(logits, uninterrupted)
    np.testing.assert_array_equal(load_cached(folder, MANY, cache_dir), uninterrupted)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-30])


def _garbage(path):
    path.write_bytes(b"this is not an npz file at all" * 10)


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _delete(path):
    path.unlink()


def _wrong_rows(path):
    files.write_npz(path, logits=np.zeros((2, 3), dtype=np.float32))


def _nan_with_a_matching_checksum(path):
    """A chunk whose bytes match a (forged) record but whose values are not finite."""
    import hashlib

    files.write_npz(path, logits=np.full((3, 3), np.nan, dtype=np.float32))
    manifest_path = path.parent / "manifest.json"
    manifest = files.read_json(manifest_path)
    manifest["chunks"]["1"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    files.write_json(manifest_path, manifest)


def _forget_record(path):
    manifest_path = path.parent / "manifest.json"
    manifest = files.read_json(manifest_path)
    del manifest["chunks"]["1"]
    files.write_json(manifest_path, manifest)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _flip_bytes, _delete, _wrong_rows,
                                    _nan_with_a_matching_checksum, _forget_record])
def test_a_damaged_or_partial_chunk_is_relabeled_never_used(tmp_path, cache_dir, damage):
    folder = make_teacher_folder(tmp_path / "t")
    expected = chunked(TextTeacher(folder), cache_dir)
    damage(chunk_folder(TextTeacher(folder), cache_dir) / "chunk-00001.npz")
    with pytest.raises(BertdistillError, match="1 of 4 chunks"):
        load_cached(folder, MANY, cache_dir)
    again = TextTeacher(folder)
    np.testing.assert_array_equal(chunked(again, cache_dir), expected)
    assert [texts for texts, _ in again.calls] == [MANY[3:6]]
    np.testing.assert_array_equal(load_cached(folder, MANY, cache_dir), expected)


def test_an_unreadable_manifest_means_labeling_everything_again(tmp_path, cache_dir):
    folder = make_teacher_folder(tmp_path / "t")
    expected = chunked(TextTeacher(folder), cache_dir)
    (chunk_folder(TextTeacher(folder), cache_dir) / "manifest.json").write_text("{not json")
    again = TextTeacher(folder)
    np.testing.assert_array_equal(chunked(again, cache_dir), expected)
    assert len(again.calls) == 4


# --- another teacher -------------------------------------------------------------------------------------------------

def test_load_cached_refuses_another_teachers_logits(tmp_path, cache_dir):
    one = FakeTeacher(make_teacher_folder(tmp_path / "one"))
    two = make_teacher_folder(tmp_path / "two", weights=b"weights-v2")
    teacher_logits(one, TEXTS, cache_dir)
    with pytest.raises(BertdistillError, match=f"another teacher \\({teacher_fingerprint(one.folder)}\\)"):
        load_cached(two, TEXTS, cache_dir)


def test_a_cache_folder_copied_from_another_teacher_is_refused(tmp_path, cache_dir):
    one = FakeTeacher(make_teacher_folder(tmp_path / "one"))
    two = FakeTeacher(make_teacher_folder(tmp_path / "two", weights=b"weights-v2"))
    teacher_logits(one, TEXTS, cache_dir)
    shutil.copytree(chunk_folder(one, cache_dir, TEXTS), chunk_folder(two, cache_dir, TEXTS))
    with pytest.raises(BertdistillError, match="another teacher"):
        teacher_logits(two, TEXTS, cache_dir)
    with pytest.raises(BertdistillError, match="another teacher"):
        load_cached(two.folder, TEXTS, cache_dir)
    assert two.calls == []


# --- single-file caches of earlier versions --------------------------------------------------------------------------

@pytest.fixture()
def legacy_file(teacher, cache_dir):
    path = legacy_path(cache_dir, teacher_fingerprint(teacher.folder), TEXTS)
    files.write_npz(path, logits=np.arange(9, dtype=np.float32).reshape(3, 3))
    return path


def test_a_legacy_single_file_cache_is_still_read(teacher, cache_dir, legacy_file):
    expected = np.arange(9, dtype=np.float32).reshape(3, 3)
    np.testing.assert_array_equal(load_cached(teacher.folder, TEXTS, cache_dir), expected)
    np.testing.assert_array_equal(teacher_logits(teacher, TEXTS, cache_dir), expected)
    assert teacher.calls == []


def _empty(path):
    path.write_bytes(b"")


def _non_finite(path):
    files.write_npz(path, logits=np.array([[0, 1, 2], [np.nan, 0, 0], [0, 0, 0]], dtype=np.float32))


def _wrong_key(path):
    files.write_npz(path, something_else=np.zeros((3, 3), dtype=np.float32))


def _pickled(path):
    files.write_npz(path, logits=np.array([{"a": 1}] * 3, dtype=object))


@pytest.mark.parametrize("damage", [_truncate, _empty, _garbage, _flip_bytes, _wrong_rows, _non_finite, _wrong_key,
                                    _pickled])
def test_a_damaged_legacy_cache_is_an_error_to_read_and_relabeled_by_the_label_stage(teacher, cache_dir, legacy_file,
                                                                                    damage):
    damage(legacy_file)
    with pytest.raises(BertdistillError, match="delete it"):
        load_cached(teacher.folder, TEXTS, cache_dir)
    relabeled = teacher_logits(teacher, TEXTS, cache_dir)
    assert len(teacher.calls) == 1
    np.testing.assert_array_equal(load_cached(teacher.folder, TEXTS, cache_dir), relabeled)


def test_read_cached_returns_the_stored_array(tmp_path):
    logits = np.arange(12, dtype=np.float32).reshape(4, 3)
    files.write_npz(tmp_path / "x.npz", logits=logits)
    np.testing.assert_array_equal(read_cached(tmp_path / "x.npz", 4), logits)


# --- a real (tiny) teacher through each backend ----------------------------------------------------------------------

def make_tiny_teacher(tiny_bert_dir, folder):
    """The tiny random BERT with a 3-class head, saved as a bertdistill teacher."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertdistill.teacher.model import MODEL_FORMAT

    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    files.write_json(folder / "bertdistill.json", {"format": MODEL_FORMAT, "version": files.FORMAT_VERSION,
                                                "task": "multiclass", "label_names": ["a", "b", "c"],
                                                "max_length": 32, "backbone": str(tiny_bert_dir)})
    return folder


def test_onnx_backends_label_like_the_pytorch_teacher(tiny_bert_dir, tmp_path):
    teacher_dir = make_tiny_teacher(tiny_bert_dir, tmp_path / "teacher" / "model")
    texts = MANY + ["", "Ünïcödé 😀", "a much longer text " * 6]
    by_backend = {}
    for backend in ("torch", "torch-bf16", "onnx", "onnx-int8"):
        labeler = open_labeler(teacher_dir, backend, device="cpu", threads=1)
        by_backend[backend] = teacher_logits(labeler, texts, tmp_path / "cache", 4, chunk_rows=5,
                                             key=teacher_key(teacher_dir, backend))
        np.testing.assert_array_equal(load_cached(teacher_dir, texts, tmp_path / "cache", backend), by_backend[backend])
    assert (tmp_path / "teacher" / "onnx-int8" / "model.onnx").exists()  # exported where `evaluate` looks
    np.testing.assert_allclose(by_backend["onnx"], by_backend["torch"], atol=1e-4)
    assert np.abs(by_backend["onnx-int8"] - by_backend["onnx"]).max() < 0.5
    assert np.abs(by_backend["torch-bf16"] - by_backend["torch"]).max() < 0.5  # bf16 keeps 8 bits of mantissa
    assert not np.array_equal(by_backend["torch-bf16"], by_backend["torch"])  # autocast did run in bf16
    assert len(list((tmp_path / "cache").glob("*/manifest.json"))) == 4
    with pytest.raises(BertdistillError, match="label_backend"):
        open_labeler(teacher_dir, "tensorrt")
