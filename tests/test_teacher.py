"""Teacher fine-tuning, checkpointing, resuming and batched inference, on a tiny random BERT."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

from bertdistill.config import TeacherConfig
from bertdistill.core.checkpoint import load_optimizer, save_optimizer
from bertdistill.core.training import parameter_groups
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer
from bertdistill.teacher import model as teacher_module
from bertdistill.teacher.model import (
    Teacher,
    fine_tune,
    length_grouped_batches,
    pad_batch,
)


class ScriptedScorer:
    """Returns the given val scores one epoch after the other, so which epoch is best is known."""

    metric = "macro_f1"

    def __init__(self, scores: list[float]):
        self.scores = list(scores)
        self.calls = 0

    def score(self, labels, probs, thresholds=None) -> float:
        assert probs.shape == (len(labels), 3)
        self.calls += 1
        return self.scores.pop(0)


def teacher_config(tiny_bert_dir, **changes) -> TeacherConfig:
    settings = dict(backbone=str(tiny_bert_dir), epochs=2, batch_size=8, max_length=32, device="cpu",
                    learning_rate=1e-3)
    return TeacherConfig(**{**settings, **changes})


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_weights(a, b) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=1e-6, msg=name)


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def trained(tiny_bert_dir, multiclass_dataset, tmp_path_factory):
    """An uninterrupted 2-epoch run in which epoch 1 scores best on val."""
    out = tmp_path_factory.mktemp("teacher-run")
    result = fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir), ScriptedScorer([0.9, 0.4]), out)
    return out, result


def test_fine_tune_writes_epoch_checkpoints_and_model(trained, multiclass_dataset):
    out, result = trained
    assert result == out / "model"
    for epoch in (1, 2):
        folder = out / "checkpoints" / f"epoch-{epoch}"
        assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
        assert json.loads((folder / "state.json").read_text())["epoch"] == epoch
    meta = json.loads((result / "bertdistill.json").read_text())
    assert meta["format"] == "bertdistill-teacher"
    assert (meta["task"], meta["label_names"], meta["max_length"]) == ("multiclass", multiclass_dataset.label_names,
                                                                        32)
    # optimizer state kept only for the latest epoch; never in the published model
    assert (out / "checkpoints" / "epoch-2" / "optimizer.json").exists()
    assert not (out / "checkpoints" / "epoch-1" / "optimizer.json").exists()
    assert not list(result.glob("optimizer.*"))
    assert not list(out.glob(".*.tmp")) and not list((out / "checkpoints").glob(".*.tmp"))
    assert not list(result.rglob("*.bin")) and not list(result.rglob("*.pkl"))


def test_best_epoch_is_the_best_on_val_not_the_last(trained):
    out, result = trained
    state = json.loads((result / "state.json").read_text())
    assert state["best_epoch"] == 1
    assert {int(k): v for k, v in state["val_scores"].items()} == {1: 0.9, 2: 0.4}
    assert_same_weights(result / "model.safetensors", out / "checkpoints" / "epoch-1" / "model.safetensors")
    first, last = weights(out / "checkpoints" / "epoch-1" / "model.safetensors"), \
        weights(out / "checkpoints" / "epoch-2" / "model.safetensors")
    assert any(not torch.equal(first[name], last[name]) for name in first), "epoch 2 did not train"


def test_finished_run_is_not_retrained(trained, multiclass_dataset, tiny_bert_dir, capsys):
    out, result = trained
    scorer = ScriptedScorer([])
    assert fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir), scorer, out) == result
    assert scorer.calls == 0
    assert "teacher epoch" not in capsys.readouterr().out


def test_interrupted_run_resumes_after_last_epoch_and_matches_uninterrupted(
        trained, tiny_bert_dir, multiclass_dataset, tmp_path, monkeypatch, capsys):
    reference, _ = trained
    real_batches = teacher_module.length_grouped_batches
    calls = []

    def crash_in_epoch_two(lengths, batch_size, rng):
        calls.append(1)
        batches = real_batches(lengths, batch_size, rng)
        if len(calls) == 2:  # the process dies early in epoch 2
            raise Interrupted
        return batches

    monkeypatch.setattr(teacher_module, "length_grouped_batches", crash_in_epoch_two)
    with pytest.raises(Interrupted):
        fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir), ScriptedScorer([0.9, 0.4]), tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / "epoch-1" / "optimizer.json").exists()
    assert not (tmp_path / "checkpoints" / "epoch-2").exists() and not (tmp_path / "model").exists()
    capsys.readouterr()

    scorer = ScriptedScorer([0.4])  # only epoch 2 is evaluated again
    result = fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir), scorer, tmp_path)
    output = capsys.readouterr().out
    assert "resuming after epoch 1" in output
    assert "teacher epoch 1:" not in output and "teacher epoch 2:" in output
    assert scorer.calls == 1
    # same weights as the run that was never interrupted (model, optimizer and schedule all restored)
    assert_same_weights(tmp_path / "checkpoints" / "epoch-2" / "model.safetensors",
                        reference / "checkpoints" / "epoch-2" / "model.safetensors")
    assert json.loads((result / "state.json").read_text())["best_epoch"] == 1


def test_crash_after_last_epoch_publishes_without_training(trained, multiclass_dataset, tiny_bert_dir, tmp_path,
                                                           capsys):
    reference, _ = trained
    shutil.copytree(reference / "checkpoints", tmp_path / "checkpoints")
    (tmp_path / ".model.tmp").mkdir()  # debris of a publish that was cut short
    scorer = ScriptedScorer([])
    result = fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir), scorer, tmp_path)
    output = capsys.readouterr().out
    assert "resuming after epoch 2" in output and "teacher epoch 1:" not in output and "teacher epoch 2:" not in output
    assert scorer.calls == 0
    assert json.loads((result / "state.json").read_text())["best_epoch"] == 1
    assert_same_weights(result / "model.safetensors", reference / "model" / "model.safetensors")
    assert not (tmp_path / ".model.tmp").exists()


def test_a_finished_run_asked_for_more_epochs_trains_on_from_its_last_epoch(
        trained, multiclass_dataset, tiny_bert_dir, tmp_path, capsys):
    reference, _ = trained
    shutil.copytree(reference, tmp_path, dirs_exist_ok=True)
    (tmp_path / "onnx-int8").mkdir()  # an export of the weights published before
    capsys.readouterr()
    scorer = ScriptedScorer([0.95])
    result = fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir, epochs=3), scorer, tmp_path)
    output = capsys.readouterr().out
    assert "continuing the finished run to epoch 3" in output and "resuming after epoch 2" in output
    assert "teacher epoch 3:" in output and "teacher epoch 2:" not in output and scorer.calls == 1
    state = json.loads((result / "state.json").read_text())
    assert state["best_epoch"] == 3 and {int(k) for k in state["val_scores"]} == {1, 2, 3}
    assert_same_weights(result / "model.safetensors", tmp_path / "checkpoints" / "epoch-3" / "model.safetensors")
    assert not (tmp_path / "onnx-int8").exists()
    again = ScriptedScorer([])
    fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir, epochs=3), again, tmp_path)
    assert again.calls == 0  # the epochs asked for are done


def test_a_finished_run_whose_val_stalled_is_not_trained_on(trained, multiclass_dataset, tiny_bert_dir, tmp_path):
    reference, _ = trained  # val 0.9 then 0.4: with patience 1, epoch 2 already stalled
    shutil.copytree(reference, tmp_path, dirs_exist_ok=True)
    scorer = ScriptedScorer([])
    fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir, epochs=3, patience=1), scorer, tmp_path)
    assert scorer.calls == 0


def test_more_teacher_epochs_are_accepted_only_by_a_command_that_trains_the_teacher(multiclass_dataset, tmp_path):
    from bertdistill import pipeline
    from bertdistill.config import config_from_dict

    rows = [(t, ["sports", "food", "tech"][y]) for split in ("train", "val", "test")
            for t, y in zip(multiclass_dataset.split(split).texts, multiclass_dataset.split(split).labels)]
    (tmp_path / "data.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")

    def run_with(epochs: int):
        config = config_from_dict({"data": {"format": "csv", "path": str(tmp_path / "data.csv")},
                                   "teacher": {"epochs": epochs}, "students": {"include": ["tfidf-lr"]}})
        return pipeline.prepare(config, tmp_path / "run")

    pipeline.start(run_with(2))
    (tmp_path / "run" / "teacher" / "model").mkdir(parents=True)
    (tmp_path / "run" / "teacher" / "model" / "bertdistill.json").write_text("{}")  # a finished teacher
    for epochs, trains_teacher in ((3, False), (1, True)):
        with pytest.raises(BertdistillError, match=r"different \[teacher\] config"):
            pipeline.start(run_with(epochs), trains_teacher=trains_teacher)
    pipeline.start(run_with(3), trains_teacher=True)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["teacher"]["epochs"] == 3


def test_a_half_written_checkpoint_is_ignored_on_resume(tiny_bert_dir, multiclass_dataset, tmp_path, capsys):
    """An epoch folder without optimizer state (e.g. a crash while writing it) is not resumed from."""
    broken = tmp_path / "checkpoints" / "epoch-1"
    broken.mkdir(parents=True)
    (broken / "state.json").write_text('{"epoch": 1, "val_score": 0.5}')
    config = teacher_config(tiny_bert_dir, epochs=1)
    fine_tune(multiclass_dataset, config, ScriptedScorer([0.5]), tmp_path)
    assert "resuming" not in capsys.readouterr().out


def _tiny_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, 10)
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    loss = model(torch.randn(5, 4, generator=generator)).pow(2).sum()
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def test_optimizer_and_scheduler_state_round_trip_exactly(tmp_path):
    model, optimizer, scheduler = _tiny_optimizer()
    for seed in range(3):
        _step(model, optimizer, scheduler, seed)
    save_optimizer(optimizer, scheduler, tmp_path)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.bin"))

    clone, clone_optimizer, clone_scheduler = _tiny_optimizer(seed=1)
    clone.load_state_dict(model.state_dict())
    load_optimizer(clone_optimizer, clone_scheduler, tmp_path)
    original, restored = optimizer.state_dict(), clone_optimizer.state_dict()
    assert original["state"].keys() == restored["state"].keys()
    for index, values in original["state"].items():
        assert values.keys() == restored["state"][index].keys()
        for key, value in values.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(restored["state"][index][key])), (index, key)
    for group, clone_group in zip(original["param_groups"], restored["param_groups"]):
        assert {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()} == \
               {k: list(v) if isinstance(v, tuple) else v for k, v in clone_group.items()}
    assert clone_scheduler.get_last_lr() == scheduler.get_last_lr()
    assert clone_scheduler.last_epoch == scheduler.last_epoch == 3

    for seed in (10, 11):  # training on from the restored state is bit-identical
        _step(model, optimizer, scheduler, seed)
        _step(clone, clone_optimizer, clone_scheduler, seed)
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def loaded_teacher(trained) -> Teacher:
    return Teacher(trained[1], device="cpu")


def test_teacher_loads_meta(loaded_teacher, multiclass_dataset):
    assert loaded_teacher.task == "multiclass"
    assert loaded_teacher.label_names == multiclass_dataset.label_names
    assert loaded_teacher.n_params > 0


def test_predict_logits_independent_of_batch_size_and_order(loaded_teacher, multiclass_dataset):
    texts = multiclass_dataset.test.texts + ["short", "a much longer text " * 5, "goal"]
    reference = loaded_teacher.predict_logits(texts, batch_size=len(texts))
    assert reference.shape == (len(texts), 3) and reference.dtype == np.float32
    for batch_size in (1, 3, 7):
        np.testing.assert_allclose(loaded_teacher.predict_logits(texts, batch_size=batch_size), reference, atol=1e-5)
    np.testing.assert_allclose(loaded_teacher.predict_logits(texts[::-1], batch_size=4), reference[::-1], atol=1e-5)
    assert np.abs(reference - reference[0]).max() > 1e-4, "rows too similar for an order check to mean anything"


def test_predict_logits_rows_match_the_model_run_one_text_at_a_time(loaded_teacher, trained, multiclass_dataset):
    """Ground truth computed without bertdistill's batching: length sorting must not scramble rows."""
    texts = multiclass_dataset.val.texts[:6] + ["tiny", "a fairly long sentence with many many words in it"]
    tokenizer = AutoTokenizer.from_pretrained(trained[1])
    model = AutoModelForSequenceClassification.from_pretrained(trained[1]).eval()
    with torch.no_grad():
        expected = np.concatenate([model(**tokenizer([t], truncation=True, max_length=32, return_tensors="pt"))
                                   .logits.numpy() for t in texts])
    np.testing.assert_allclose(loaded_teacher.predict_logits(texts, batch_size=3), expected, atol=1e-5)


def test_predict_proba_rows_sum_to_one(loaded_teacher, multiclass_dataset):
    probs = loaded_teacher.predict_proba(multiclass_dataset.test.texts)
    assert probs.sum(axis=1) == pytest.approx(np.ones(len(probs)), abs=1e-5)


def test_multilabel_fine_tuning(tiny_bert_dir, multilabel_dataset, tmp_path):
    scorer = Scorer.for_dataset(multilabel_dataset, None, None)
    result = fine_tune(multilabel_dataset, teacher_config(tiny_bert_dir, epochs=1, batch_size=16), scorer, tmp_path)
    config = json.loads((result / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    state = json.loads((result / "state.json").read_text())
    assert np.isfinite(list(state["val_scores"].values())).all()
    teacher = Teacher(result, device="cpu")
    assert (teacher.task, teacher.label_names) == ("multilabel", multilabel_dataset.label_names)
    probs = teacher.predict_proba(multilabel_dataset.test.texts)
    assert probs.shape == (len(multilabel_dataset.test), 3)
    assert ((probs > 0) & (probs < 1)).all()
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent sigmoids, not a softmax


def test_teacher_folder_without_meta_raises(tiny_bert_dir, tmp_path):
    with pytest.raises(BertdistillError, match="bertdistill.json"):
        Teacher(tiny_bert_dir, device="cpu")
    shutil.copytree(tiny_bert_dir, tmp_path / "t")
    (tmp_path / "t" / "bertdistill.json").write_text('{"format": "bertdistill-student"}')
    with pytest.raises(BertdistillError, match="format"):
        Teacher(tmp_path / "t", device="cpu")


def test_unknown_backbone_is_a_bertdistill_error(multiclass_dataset, tmp_path):
    config = TeacherConfig(backbone=str(tmp_path / "no-such-model"), epochs=1, device="cpu")
    with pytest.raises(BertdistillError, match="no-such-model"):
        fine_tune(multiclass_dataset, config, ScriptedScorer([]), tmp_path / "out")


@pytest.mark.parametrize("n,batch_size", [(1, 8), (37, 8), (1000, 8), (450, 16)])
def test_length_grouped_batches_cover_every_index_once(n, batch_size):
    lengths = np.random.default_rng(0).integers(1, 60, size=n)
    batches = length_grouped_batches(lengths, batch_size, np.random.default_rng(5))
    covered = np.concatenate(batches)
    assert sorted(covered.tolist()) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(len(b) < batch_size for b in batches) <= -(-n // (batch_size * 50))  # one short batch per window
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in batches)  # similar lengths: sorted inside a batch


def test_length_grouped_batches_are_seeded_and_shuffled():
    lengths = np.random.default_rng(0).integers(1, 60, size=1000)
    first = length_grouped_batches(lengths, 8, np.random.default_rng(1))
    again = length_grouped_batches(lengths, 8, np.random.default_rng(1))
    other = length_grouped_batches(lengths, 8, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    starts = [lengths[b].min() for b in first]
    assert starts != sorted(starts), "batches should not come shortest first"


def test_length_grouped_batches_reduce_padding():
    lengths = np.random.default_rng(0).integers(1, 60, size=800)
    grouped = length_grouped_batches(lengths, 8, np.random.default_rng(1))
    plain = np.array_split(np.random.default_rng(1).permutation(800), 100)
    padding = lambda batches: sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)  # noqa: E731
    assert padding(grouped) < padding(plain) / 3


def test_pad_batch_shapes_and_masks():
    batch = pad_batch([[101, 5, 6, 102], [101, 102], [101, 7, 102]], pad_id=0, device=torch.device("cpu"))
    assert batch["input_ids"].tolist() == [[101, 5, 6, 102], [101, 102, 0, 0], [101, 7, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.long
    other_pad = pad_batch([[1], [2, 3]], pad_id=9, device=torch.device("cpu"))
    assert other_pad["input_ids"].tolist() == [[1, 9], [2, 3]]
    assert other_pad["attention_mask"].tolist() == [[1, 0], [1, 1]]


def test_interrupted_mid_epoch_resumes_at_the_batch_and_matches_uninterrupted(
        trained, tiny_bert_dir, multiclass_dataset, tmp_path, monkeypatch, capsys):
    """A checkpoint every batch (checkpoint_minutes ~ 0); the process dies after the second one, in epoch 1."""
    reference, _ = trained
    real_save = teacher_module._save_step
    saves = []

    def save_then_die(*args):
        real_save(*args)
        saves.append(args[1:3])
        if len(saves) == 2:
            raise Interrupted

    monkeypatch.setattr(teacher_module, "_save_step", save_then_die)
    config = teacher_config(tiny_bert_dir, checkpoint_minutes=1e-9)
    with pytest.raises(Interrupted):
        fine_tune(multiclass_dataset, config, ScriptedScorer([0.9, 0.4]), tmp_path)
    monkeypatch.undo()
    assert saves == [(1, 1), (1, 2)]
    assert not list((tmp_path / "checkpoints").glob("epoch-*"))
    capsys.readouterr()

    scorer = ScriptedScorer([0.9, 0.4])
    fine_tune(multiclass_dataset, config, scorer, tmp_path)
    assert "resuming in epoch 1 after batch 2" in capsys.readouterr().out
    assert not (tmp_path / "checkpoints" / "step").exists()  # an epoch's end supersedes it
    for epoch in (1, 2):  # weights, optimizer, schedule and dropout RNG all restored
        assert_same_weights(tmp_path / "checkpoints" / f"epoch-{epoch}" / "model.safetensors",
                            reference / "checkpoints" / f"epoch-{epoch}" / "model.safetensors")


@pytest.mark.parametrize("keep, kept", [("best-and-latest", {2, 3}), ("all", {1, 2, 3})])
def test_checkpoints_are_pruned_to_the_best_and_the_latest(tiny_bert_dir, multiclass_dataset, tmp_path, keep, kept):
    config = teacher_config(tiny_bert_dir, epochs=3, patience=3, keep_checkpoints=keep)
    result = fine_tune(multiclass_dataset, config, ScriptedScorer([0.5, 0.9, 0.4]), tmp_path)
    assert {int(p.name.split("-")[1]) for p in (tmp_path / "checkpoints").glob("epoch-*")} == kept
    state = json.loads((result / "state.json").read_text())
    assert state["best_epoch"] == 2
    assert {int(k): v for k, v in state["val_scores"].items()} == {1: 0.5, 2: 0.9, 3: 0.4}


def test_training_stops_after_patience_epochs_without_a_better_val_score(tiny_bert_dir, multiclass_dataset,
                                                                        tmp_path):
    scorer = ScriptedScorer([0.9, 0.4, 0.3])
    result = fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir, epochs=3, patience=1), scorer, tmp_path)
    assert scorer.calls == 2 and not (tmp_path / "checkpoints" / "epoch-3").exists()
    assert json.loads((result / "state.json").read_text())["best_epoch"] == 1


def test_class_weights_counter_imbalance():
    labels = np.array([0] * 6 + [1] * 2)
    assert teacher_module.class_weights(labels, "multiclass", "none") is None
    torch.testing.assert_close(teacher_module.class_weights(labels, "multiclass", "balanced"),
                               torch.tensor([8 / 12, 8 / 4]))
    multilabel = np.array([[1, 0], [0, 0], [0, 0], [0, 1]])  # label 0: 1 of 4, label 1: 1 of 4
    torch.testing.assert_close(teacher_module.class_weights(multilabel, "multilabel", "sqrt-balanced"),
                               torch.tensor([3 ** 0.5, 3 ** 0.5]))


def test_head_tail_truncation_keeps_both_ends_and_the_special_tokens(tiny_bert_dir):
    from bertdistill.core.batching import encode

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    text = " ".join(["hello"] * 20 + ["world"] * 20)
    full = tokenizer([text])["input_ids"][0]
    (ids,) = encode(tokenizer, [text], 16, "head-tail")
    assert len(ids) == 16 and ids[:4] == full[:4] and ids[4:] == full[-12:]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert encode(tokenizer, ["short"], 16, "head-tail") == encode(tokenizer, ["short"], 16, "head")


def test_head_learning_rate_applies_to_the_new_head_alone(tiny_bert_dir, multiclass_dataset, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    encoder, head = parameter_groups(model, 1e-2)
    names = {id(p): name for name, p in model.named_parameters()}
    assert {names[id(p)] for p in head["params"]} == {"classifier.weight", "classifier.bias"}
    assert len(encoder["params"]) + len(head["params"]) == len(names)
    assert "lr" not in encoder and head["lr"] == 1e-2
    assert len(parameter_groups(model, None)) == 1

    fine_tune(multiclass_dataset, teacher_config(tiny_bert_dir, epochs=1, head_learning_rate=1e-2),
              ScriptedScorer([0.5]), tmp_path)
    saved = json.loads((tmp_path / "checkpoints" / "epoch-1" / "optimizer.json").read_text())
    assert [group["initial_lr"] for group in saved["param_groups"]] == [1e-3, 1e-2]
