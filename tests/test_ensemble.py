"""Ensembles: weights on val, greedy selection under a latency budget, the model contract, the stage, bad input."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bertdistill.config import (
    EnsembleConfig,
    EvalConfig,
    StudentsConfig,
    TfidfConfig,
    config_from_dict,
)
from bertdistill.ensembles.ensemble import (
    Ensemble,
    MemberGroup,
    empty_results,
    greedy_objective,
    greedy_selection,
    latency_budget,
    load_all,
    log_loss,
    read_header,
    simplex_weights,
    train_all,
)
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer, probabilities
from bertdistill.rundir import check_ensembles
from bertdistill.students import TrainingData
from bertdistill.students.linear import TfidfLogisticRegression, TfidfLogitRidge
from bertdistill.students.tfidf_features import SparseAnalyzer


class KeywordStudent:
    """A student without a shared featurizer: certain of the class whose keyword it sees, else uniform."""

    kind, role, twin, n_params, shippable = "keyword", "baseline", None, 3, True

    def __init__(self, keywords: list[str]):
        self.keywords = keywords

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        probs = np.full((len(texts), len(self.keywords)), 1 / len(self.keywords))
        for row, text in enumerate(texts):
            for column, word in enumerate(self.keywords):
                if word in text.split():
                    probs[row] = np.eye(len(self.keywords))[column]
        return probs


@pytest.fixture(scope="module")
def students(multiclass_dataset):
    """Two TF-IDF students sharing one featurizer, and one keyword student."""
    data = multiclass_dataset
    labels = data.train.labels
    logits = (3.0 * np.eye(3)[labels]).astype(np.float32)
    training = TrainingData(data.train.texts, labels, logits, data.task, data.label_names)
    scorer = Scorer.for_dataset(data, None, None)
    config = StudentsConfig(trials=1, tfidf=TfidfConfig(min_df=1))
    fitted = {cls.kind: cls(config).fit(training, data.val.texts, data.val.labels, scorer)
              for cls in (TfidfLogisticRegression, TfidfLogitRidge)}
    return {**fitted, "keyword": KeywordStudent(["goal", "pizza", "laptop"])}


def test_prediction_is_the_weighted_average_of_members(students, multiclass_dataset):
    texts = multiclass_dataset.test.texts
    weights = {"tfidf-lr": 1.0, "tfidf-logit-ridge": 2.0, "keyword": 1.0}
    ensemble = Ensemble(students, weights, "multiclass", {})
    expected = sum(students[n].predict_proba(texts) * w / 4 for n, w in weights.items())
    np.testing.assert_allclose(ensemble.predict_proba(texts), expected, atol=1e-6)
    np.testing.assert_allclose(np.vstack([ensemble.predict_proba([t]) for t in texts]), expected, atol=1e-6)
    np.testing.assert_allclose(probabilities(ensemble.predict_logits(texts), "multiclass"), expected, atol=1e-5)
    assert ensemble.weights == {"tfidf-lr": 0.25, "tfidf-logit-ridge": 0.5, "keyword": 0.25}
    assert ensemble.role == "ensemble" and ensemble.n_params == sum(s.n_params for s in students.values())


def test_an_ensemble_of_one_student_predicts_exactly_as_that_student(students, multiclass_dataset, monkeypatch):
    """...and costs what it costs: no grouping, stacking or averaging on the way (a greedy pick under a tight
    latency budget is often one student)."""
    texts = multiclass_dataset.test.texts
    monkeypatch.setattr(MemberGroup, "predict_proba", lambda *args: pytest.fail("averaged"))
    for name in ("tfidf-lr", "keyword"):
        ensemble = Ensemble(students, {name: 3.0, "tfidf-logit-ridge": 0.0}, "multiclass", {})
        assert list(ensemble.members) == [name] and ensemble.weights == {name: 1.0}
        for batch in (texts, texts[:1]):
            probs = ensemble.predict_proba(batch)
            assert probs.dtype == np.float32
            np.testing.assert_array_equal(probs, np.asarray(students[name].predict_proba(batch), np.float32))


def test_members_sharing_features_featurize_once(students, monkeypatch):
    calls = []
    original = SparseAnalyzer.features
    monkeypatch.setattr(SparseAnalyzer, "features", lambda self, text: calls.append(text) or original(self, text))
    ensemble = Ensemble(students, {"tfidf-lr": 1, "tfidf-logit-ridge": 1, "keyword": 1}, "multiclass", {})
    assert [group.names for group in ensemble.groups] == [["tfidf-lr", "tfidf-logit-ridge"], ["keyword"]]
    assert ensemble.groups[0].stacked is not None and ensemble.groups[1].stacked is None
    analyzers = len(students["tfidf-lr"].sparse_.analyzers)
    ensemble.predict_proba(["a goal today"])  # one text: each analyzer once, not once per member
    assert calls == ["a goal today"] * analyzers
    calls.clear()
    ensemble.predict_proba(["a goal today", "pizza"])
    assert len(calls) == 2 * analyzers


def test_save_load_round_trip_and_missing_member(students, multiclass_dataset, tmp_path):
    ensemble = Ensemble(students, {"tfidf-lr": 1, "keyword": 3}, "multiclass", {"method": "mean"})
    ensemble.save(tmp_path / "ens")
    header = read_header(tmp_path / "ens")
    assert header["members"] == [{"name": "tfidf-lr", "weight": 0.25}, {"name": "keyword", "weight": 0.75}]
    loaded = Ensemble.load(tmp_path / "ens", students)
    texts = multiclass_dataset.test.texts
    np.testing.assert_allclose(loaded.predict_proba(texts), ensemble.predict_proba(texts))
    with pytest.raises(BertdistillError, match="keyword not trained"):
        Ensemble.load(tmp_path / "ens", {"tfidf-lr": students["tfidf-lr"]})
    with pytest.raises(BertdistillError, match="not an ensemble"):
        read_header(tmp_path)


def test_simplex_weights_prefer_the_better_member_and_never_lose_to_it():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    good = 0.8 * np.eye(3)[labels] + 0.2 * rng.dirichlet([1, 1, 1], 300)
    noise = rng.dirichlet([1, 1, 1], 300)
    weights = simplex_weights({"good": good, "noise": noise}, labels, "multiclass")
    assert weights["good"] > 0.9 and sum(weights.values()) == pytest.approx(1)
    mixed = sum(w * {"good": good, "noise": noise}[n] for n, w in weights.items())
    assert log_loss(labels, mixed, "multiclass") <= log_loss(labels, good, "multiclass") + 1e-9


def test_log_loss_hand_worked():
    assert log_loss(np.array([0, 1]), np.array([[0.5, 0.5], [0.25, 0.75]]), "multiclass") == pytest.approx(
        -(np.log(0.5) + np.log(0.75)) / 2)
    assert log_loss(np.array([[1, 0]]), np.array([[0.5, 0.25]]), "multilabel") == pytest.approx(
        -(np.log(0.5) + np.log(0.75)) / 2)


def _complementary():
    """a is right on the first half, b on the second, c is uniform: a + b together are right everywhere."""
    labels = np.array([0, 1] * 20)
    half = np.arange(40) < 20
    a = np.where(half[:, None], np.eye(2)[labels] * 0.8 + 0.1, 0.45 + 0.1 * np.eye(2)[1 - labels])
    b = np.where(~half[:, None], np.eye(2)[labels] * 0.8 + 0.1, 0.45 + 0.1 * np.eye(2)[1 - labels])
    return labels, {"a": a, "b": b, "c": np.full((40, 2), 0.5)}


def test_greedy_combines_complementary_members_within_budget():
    labels, probs = _complementary()
    scorer = Scorer("multiclass", ["x", "y"], "macro_f1")
    cost = {"a": 1.0, "b": 1.0, "c": 0.1}
    measured = []
    latency = lambda names: measured.append(names) or sum(cost[n] for n in names)
    result = greedy_selection(probs, labels, scorer, latency, budget_ms=2.5, max_rounds=5, objective="metric")
    assert set(result["counts"]) == {"a", "b"} and result["trace"][0]["val_score"] < 1.0
    assert max(step["p50_ms"] for step in result["trace"]) <= 2.5
    assert len(measured) == len(set(measured))  # each set is timed once
    alone = greedy_selection(probs, labels, scorer, latency, budget_ms=1.5, max_rounds=5, objective="metric")
    assert set(alone["counts"]) <= {"a", "b", "c"} and len(set(alone["counts"]) - {"c"}) == 1


def test_greedy_with_a_budget_nobody_meets_is_empty():
    labels, probs = _complementary()
    scorer = Scorer("multiclass", ["x", "y"], "macro_f1")
    result = greedy_selection(probs, labels, scorer, lambda names: 5.0, budget_ms=1.0, max_rounds=3,
                              objective="log_loss")
    assert result == {"counts": {}, "trace": [], "fastest_ms": 5.0}


def _sure_and_hedged():
    """"sure" is right on 31 of 40 val rows at 0.99 and wrong on the rest at 0.99; "hedged" is right on 30 at 0.6:
    "sure" has the higher macro-F1, "hedged" the far lower log-loss."""
    labels = np.array([0, 1] * 20)
    rows = np.arange(40)
    sure = np.eye(2)[np.where(rows < 31, labels, 1 - labels)] * 0.98 + 0.01
    hedged = np.eye(2)[np.where(rows < 30, labels, 1 - labels)] * 0.2 + 0.4
    return labels, {"sure": sure, "hedged": hedged}


@pytest.mark.parametrize("objective,chosen", [("metric", "sure"), ("log_loss", "hedged")])
def test_greedy_climbs_the_objective_it_is_given(objective, chosen):
    labels, probs = _sure_and_hedged()
    scorer = Scorer("multiclass", ["x", "y"], "macro_f1")
    assert scorer.score(labels, probs["sure"]) > scorer.score(labels, probs["hedged"])
    assert log_loss(labels, probs["sure"], "multiclass") > log_loss(labels, probs["hedged"], "multiclass")
    result = greedy_selection(probs, labels, scorer, lambda names: 0.1, budget_ms=1.0, max_rounds=1,
                              objective=objective)
    assert result["counts"] == {chosen: 1}
    step = result["trace"][0]
    assert step["val_score"] == pytest.approx(scorer.score(labels, probs[chosen]))
    assert step["val_log_loss"] == pytest.approx(log_loss(labels, probs[chosen], "multiclass"))


@pytest.mark.parametrize("objective,metric,resolved", [
    ("auto", "macro_f1", "log_loss"), ("auto", "class_f1", "log_loss"), ("auto", "mean_roc_auc", "metric"),
    ("metric", "macro_f1", "metric"), ("log_loss", "mean_roc_auc", "log_loss"),
])
def test_greedy_objective_auto_follows_the_kind_of_metric(objective, metric, resolved):
    assert greedy_objective(objective, metric) == resolved


def test_latency_budget_from_ms_or_from_the_teacher():
    assert latency_budget(EnsembleConfig(name="e", budget_ms=0.2), lambda: 1 / 0)[0] == 0.2
    budget, basis = latency_budget(EnsembleConfig(name="e", budget_teacher_fraction=0.01), lambda: 12.0)
    assert budget == pytest.approx(0.12) and "12.000 ms" in basis
    assert latency_budget(EnsembleConfig(name="e"), lambda: 10.0)[0] == pytest.approx(0.1)  # default 1/100


@pytest.mark.parametrize("raw,message", [
    ({"name": "e", "method": "mean", "budget_ms": 1.0}, "needs method = 'greedy'"),
    ({"name": "e", "budget_ms": 1.0, "budget_teacher_fraction": 0.1}, "not both"),
    ({"name": "e", "members": []}, "members is empty"),
    ({"name": "e", "method": "weighted", "objective": "log_loss"}, "objective is for method = 'greedy'"),
    ({"name": "e", "objective": "accuracy"}, "ensembles.0.objective"),
    ({"name": "bad name/"}, "ensembles.0.name"),
    ({"name": "e", "mehtod": "mean"}, "unknown config key 'ensembles.0.mehtod'"),
])
def test_bad_ensemble_config_is_an_error(raw, message):
    with pytest.raises(BertdistillError, match=message):
        config_from_dict({"data": {"path": "x"}, "ensembles": [raw]})


def test_check_ensembles_rejects_unknown_members_and_taken_names():
    include = ["tfidf-lr", "tfidf-soft-lr"]
    check_ensembles([EnsembleConfig(name="e", members=["tfidf-lr"])], include)
    with pytest.raises(BertdistillError, match="member\\(s\\) cnn not in students.include"):
        check_ensembles([EnsembleConfig(name="e", members=["tfidf-lr", "cnn"])], include)
    with pytest.raises(BertdistillError, match="'tfidf-lr' is already used"):
        check_ensembles([EnsembleConfig(name="tfidf-lr")], include)
    with pytest.raises(BertdistillError, match="'e' is already used"):
        check_ensembles([EnsembleConfig(name="e"), EnsembleConfig(name="e", method="mean")], include)


def _run(dataset, tmp_path, specs, latency_texts=10):
    return SimpleNamespace(dataset=dataset, scorer=Scorer.for_dataset(dataset, None, None), out=tmp_path,
                           teacher_dir=tmp_path / "no-teacher", config=SimpleNamespace(
                               ensembles=specs, eval=EvalConfig(latency_texts=latency_texts, warmup=2)))


def test_stage_builds_saves_reports_empty_and_rebuilds_on_change(students, multiclass_dataset, tmp_path):
    specs = [EnsembleConfig(name="avg", method="mean", members=["tfidf-lr", "keyword"]),
             EnsembleConfig(name="fit", method="weighted"),
             EnsembleConfig(name="fast", method="greedy", budget_ms=60_000.0, max_rounds=3),
             EnsembleConfig(name="none", method="greedy", budget_ms=1e-9)]
    headers = train_all(_run(multiclass_dataset, tmp_path, specs), students)
    assert [h["status"] for h in headers] == ["built", "built", "built", "empty"]
    assert [m["name"] for m in headers[0]["members"]] == ["tfidf-lr", "keyword"]
    assert headers[2]["budget_basis"] == "budget_ms = 60000.0" and len(headers[2]["trace"]) == 3
    assert headers[2]["objective"] == "log_loss"  # "auto" on a macro-F1 run
    assert [h["latency_texts"] for h in headers] == [None, None, 10, 10]  # greedy times as many as the evaluation
    assert "no student fits the latency budget" in headers[3]["reason"]
    models = load_all(specs, students, tmp_path / "ensembles")
    assert list(models) == ["avg", "fit", "fast"]  # the empty one is not a model...
    assert empty_results(specs, tmp_path / "ensembles")[0]["name"] == "none"  # ...but it is reported
    probs = models["fit"].predict_proba(multiclass_dataset.test.texts)
    assert probs.shape == (15, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)

    stamp = (tmp_path / "ensembles" / "avg" / "bertdistill.json").stat().st_mtime_ns
    changed = [EnsembleConfig(name="avg", method="mean", members=["tfidf-lr", "tfidf-logit-ridge"]), *specs[1:]]
    headers = train_all(_run(multiclass_dataset, tmp_path, changed), students)
    assert [m["name"] for m in headers[0]["members"]] == ["tfidf-lr", "tfidf-logit-ridge"]
    assert (tmp_path / "ensembles" / "fit" / "bertdistill.json").stat().st_mtime_ns > 0
    assert (tmp_path / "ensembles" / "avg" / "bertdistill.json").stat().st_mtime_ns != stamp
    assert not list((tmp_path / "ensembles").glob(".*.tmp"))

    # same specs, same students: kept (the empty greedy one is always retried); the greedy one timed on another
    # number of texts, or a member retrained (other val predictions): chosen again
    def stamps():
        return {name: (tmp_path / "ensembles" / name / "bertdistill.json").stat().st_mtime_ns
                for name in ("avg", "fit", "fast")}

    before = stamps()
    train_all(_run(multiclass_dataset, tmp_path, changed), students)
    assert stamps() == before
    train_all(_run(multiclass_dataset, tmp_path, changed, latency_texts=12), students)  # greedy's timing changes
    retimed = stamps()
    assert retimed["fast"] != before["fast"] and (retimed["avg"], retimed["fit"]) == (before["avg"], before["fit"])
    before = retimed
    train_all(_run(multiclass_dataset, tmp_path, changed), {**students, "tfidf-logit-ridge": students["keyword"]})
    after = stamps()
    assert after["avg"] != before["avg"] and after["fit"] != before["fit"]  # tfidf-logit-ridge is a candidate of both


def test_stage_errors_name_the_problem(students, multiclass_dataset, tmp_path):
    with pytest.raises(BertdistillError, match="student\\(s\\) cnn not trained"):
        train_all(_run(multiclass_dataset, tmp_path, [EnsembleConfig(name="e", method="mean",
                                                                        members=["cnn"])]), students)
    with pytest.raises(BertdistillError, match="run `bertdistill ensembles`"):
        load_all([EnsembleConfig(name="later")], students, tmp_path / "ensembles")
