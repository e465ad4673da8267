"""ONNX export of the teacher: fp32 matches PyTorch, int8 is a working smaller model, exports are reused."""
from __future__ import annotations

import numpy as np
import pytest

from bertdistill.core import files
from bertdistill.core.batching import pad_ids
from bertdistill.errors import BertdistillError
from bertdistill.teacher.model import MODEL_FORMAT, Teacher
from bertdistill.teacher.onnx_export import RECIPE, OnnxTeacher, export_teacher
from bertdistill.teacher.onnx_export import exported as exported_variants

TEXTS = ["a short one", "", "a much longer text with many more words in it so that padding matters 😀",
         "Ünïcödé tëxt", "x"]


@pytest.fixture(scope="module")
def teacher_dir(tiny_bert_dir, tmp_path_factory):
    """The tiny random BERT with a 3-class head, saved as a bertdistill teacher."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-teacher")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    files.write_json(folder / "bertdistill.json", {"format": MODEL_FORMAT, "version": files.FORMAT_VERSION,
                                                "task": "multiclass", "label_names": ["a", "b", "c"],
                                                "max_length": 32, "backbone": str(tiny_bert_dir)})
    return folder


@pytest.fixture(scope="module")
def exported(teacher_dir, tmp_path_factory):
    return export_teacher(teacher_dir, tmp_path_factory.mktemp("onnx"), TEXTS)


def test_export_writes_both_variants_with_metadata(exported):
    assert set(exported) == {"teacher-onnx", "teacher-onnx-int8"}
    for name, precision in (("teacher-onnx", "fp32"), ("teacher-onnx-int8", "int8")):
        meta = files.read_json(exported[name] / "bertdistill.json")
        assert meta["precision"] == precision and meta["label_names"] == ["a", "b", "c"]
        assert meta["n_params"] > 0 and (exported[name] / "model.onnx").stat().st_size > 0
        assert (exported[name] / "tokenizer.json").exists()  # each folder is self-contained
    assert not list(exported["teacher-onnx"].parent.glob(".*.tmp"))


def test_fp32_logits_match_pytorch(teacher_dir, exported):
    expected = Teacher(teacher_dir, "cpu").predict_logits(TEXTS)
    model = OnnxTeacher(exported["teacher-onnx"])
    np.testing.assert_allclose(model.predict_logits(TEXTS), expected, atol=1e-4)
    single = np.vstack([model.predict_logits([text]) for text in TEXTS])
    np.testing.assert_allclose(single, expected, atol=1e-4)
    probs = model.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert model.role == "teacher" and model.kind == "onnx-fp32"


def test_int8_is_close_and_smaller(exported):
    fp32, int8 = OnnxTeacher(exported["teacher-onnx"]), OnnxTeacher(exported["teacher-onnx-int8"])
    assert int8.kind == "onnx-int8" and int8.n_params == fp32.n_params
    assert int8.params_["calibration_texts"] == len(TEXTS)  # all of them: fewer than 256
    assert set(int8.params_["kept_fp32"]) == {"outlier_channels", "split_matmuls", "fp32_matmuls"}
    assert fp32.params_["fused"]["Attention"] == 2  # one fused attention op per layer
    difference = np.abs(int8.predict_logits(TEXTS) - fp32.predict_logits(TEXTS))
    assert np.isfinite(difference).all() and difference.max() < 0.5
    sizes = [(exported[name] / "model.onnx").stat().st_size for name in ("teacher-onnx", "teacher-onnx-int8")]
    assert sizes[1] < sizes[0]


def test_export_is_reused_when_present(teacher_dir, exported):
    before = {name: (folder / "model.onnx").stat().st_mtime_ns for name, folder in exported.items()}
    again = export_teacher(teacher_dir, exported["teacher-onnx"].parent, TEXTS)
    assert {name: (folder / "model.onnx").stat().st_mtime_ns for name, folder in again.items()} == before


def test_an_export_by_an_older_recipe_is_made_again(teacher_dir, tmp_path):
    out = tmp_path / "old"
    export_teacher(teacher_dir, out, TEXTS)
    meta = files.read_json(out / "onnx-int8" / "bertdistill.json")
    files.write_json(out / "onnx-int8" / "bertdistill.json", {**meta, "recipe": 1})
    assert list(exported_variants(out)) == ["teacher-onnx"]
    export_teacher(teacher_dir, out, TEXTS)
    assert files.read_json(out / "onnx-int8" / "bertdistill.json")["recipe"] == RECIPE
    assert not list(out.glob(".*.tmp"))


def test_not_an_onnx_teacher_is_a_clear_error(teacher_dir):
    with pytest.raises(BertdistillError, match="not an ONNX teacher"):
        OnnxTeacher(teacher_dir)


def test_pad_ids():
    ids, mask = pad_ids([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == np.int64


def test_exported_lists_finished_variants_only(exported, tmp_path):
    assert exported_variants(exported["teacher-onnx"].parent) == exported
    assert exported_variants(tmp_path) == {}
