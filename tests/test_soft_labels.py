"""The on-disk cache of teacher logits: keys, hits, misses and damaged files."""
from __future__ import annotations

import numpy as np
import pytest

from bertdistill import io
from bertdistill.errors import BertdistillError
from bertdistill.soft_labels import (cache_path, load_cached, read_cached, teacher_fingerprint, teacher_logits,
                                     texts_fingerprint)

TEXTS = ["first text", "second, longer text", "third"]


class FakeTeacher:
    """Stands in for bertdistill.teacher.Teacher: a folder with weights, and logits that count the calls."""

    def __init__(self, folder, k: int = 3, seed: int = 0):
        self.folder = folder
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.calls = []

    def predict_logits(self, texts, batch_size=128, progress=False):
        self.calls.append((list(texts), batch_size))
        return self.rng.normal(size=(len(texts), self.k)).astype(np.float32)


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


def test_miss_computes_and_stores_then_hit_returns_identical_array_without_teacher(teacher, cache_dir):
    first = teacher_logits(teacher, TEXTS, cache_dir, batch_size=7)
    assert first.shape == (3, 3)
    assert len(teacher.calls) == 1 and teacher.calls[0] == (TEXTS, 7)
    assert cache_path(cache_dir, teacher_fingerprint(teacher.folder), TEXTS).exists()

    second = teacher_logits(teacher, TEXTS, cache_dir)
    assert len(teacher.calls) == 1, "a cache hit must not run the teacher"
    np.testing.assert_array_equal(second, first)
    assert second.dtype == first.dtype
    np.testing.assert_array_equal(load_cached(teacher.folder, TEXTS, cache_dir), first)


def test_different_texts_use_a_different_key(teacher, cache_dir):
    first = teacher_logits(teacher, TEXTS, cache_dir)
    for other in (TEXTS[:2], TEXTS[::-1], TEXTS + [""], [TEXTS[0] + " ", *TEXTS[1:]]):
        assert texts_fingerprint(other) != texts_fingerprint(TEXTS)
        result = teacher_logits(teacher, other, cache_dir)
        assert result.shape == (len(other), 3)
    assert len(teacher.calls) == 5
    np.testing.assert_array_equal(teacher_logits(teacher, TEXTS, cache_dir), first)
    assert len(teacher.calls) == 5
    assert len(list(cache_dir.glob("*.npz"))) == 5


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


def test_load_cached_miss_says_which_stage_to_run(teacher, cache_dir):
    with pytest.raises(BertdistillError, match="bertdistill label"):
        load_cached(teacher.folder, TEXTS, cache_dir)


@pytest.fixture()
def cached_file(teacher, cache_dir):
    teacher_logits(teacher, TEXTS, cache_dir)
    return cache_path(cache_dir, teacher_fingerprint(teacher.folder), TEXTS)


def _truncate_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncate_tail(path):
    data = path.read_bytes()
    path.write_bytes(data[:-30])


def _empty(path):
    path.write_bytes(b"")


def _garbage(path):
    path.write_bytes(b"this is not an npz file at all" * 10)


def _flip_bytes_in_data(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def _wrong_rows(path):
    io.write_npz(path, logits=np.zeros((2, 3), dtype=np.float32))


def _non_finite(path):
    io.write_npz(path, logits=np.array([[0, 1, 2], [np.nan, 0, 0], [0, 0, 0]], dtype=np.float32))


def _wrong_key(path):
    io.write_npz(path, something_else=np.zeros((3, 3), dtype=np.float32))


def _pickled(path):
    io.write_npz(path, logits=np.array([{"a": 1}] * 3, dtype=object))


@pytest.mark.parametrize("damage", [_truncate_half, _truncate_tail, _empty, _garbage, _flip_bytes_in_data, _wrong_rows,
                                    _non_finite, _wrong_key, _pickled])
def test_damaged_cache_is_a_bertdistill_error(teacher, cache_dir, cached_file, damage):
    damage(cached_file)
    with pytest.raises(BertdistillError, match="delete it"):
        teacher_logits(teacher, TEXTS, cache_dir)
    with pytest.raises(BertdistillError, match="delete it"):
        load_cached(teacher.folder, TEXTS, cache_dir)
    assert len(teacher.calls) == 1  # never silently re-labelled


def test_read_cached_returns_the_stored_array(tmp_path):
    logits = np.arange(12, dtype=np.float32).reshape(4, 3)
    io.write_npz(tmp_path / "x.npz", logits=logits)
    np.testing.assert_array_equal(read_cached(tmp_path / "x.npz", 4), logits)
