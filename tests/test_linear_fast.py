"""The fast TF-IDF inference path gives what scikit-learn gives, on real tweets and on awkward text."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from bertdistill.config import StudentsConfig, TfidfConfig
from bertdistill.evaluation.metrics import Scorer, probabilities
from bertdistill.students import TrainingData, load_student
from bertdistill.students.linear import TfidfLogitRidge, TfidfSoftLogisticRegression
from bertdistill.students.sparse_linear import SparseLinear
from bertdistill.students.tfidf_features import SparseAnalyzer

TWEETS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tweeteval" / "offensive"
AWKWARD = ["", "   ", "\t\n", "a", "I", "x y", "😀", "😀🔥 emoji only 🔥🔥", "Ünïcödé İstanbul ß ﬁ ǅ", "ÀÉÎ õü",
           "tab\tsep\nnew  line   many    spaces", "@user @user URL #hashtag!!!", "don't can't won't",
           "UPPER lower MiXeD", "数字 中文 文本", "عربى نص", "a" * 300, "😀 " * 50, "\u200b zero\u200bwidth",
           "ﬀ ligature", "123 4567 89", "...", "x"]


def _real_texts() -> list[str]:
    if TWEETS.exists():
        lines = (TWEETS / "train_text.txt").read_text(encoding="utf-8").splitlines()
        return lines[:600]
    rng = np.random.default_rng(0)  # no shared data: synthetic texts with a mixed alphabet
    words = ["good", "bad", "héllo", "wörld", "😀", "#tag", "@user", "über", "naïve", "ok", "no", "yes"]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(600)]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _real_texts()


ANALYZERS = [
    dict(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b"),
    dict(analyzer="word", ngram_range=(2, 3)),
    dict(analyzer="char_wb", ngram_range=(2, 5)),
    dict(analyzer="char_wb", ngram_range=(1, 3)),  # 1-grams: the space shared by two words counts twice
    dict(analyzer="char_wb", ngram_range=(4, 6)),  # short words are kept whole
    dict(analyzer="char", ngram_range=(1, 4)),
    dict(analyzer="char_wb", ngram_range=(2, 12)),  # too wide to pack into 60 bits: the dict path
    dict(analyzer="char_wb", ngram_range=(2, 4), lowercase=False, sublinear_tf=False),
]


@pytest.mark.parametrize("params", ANALYZERS, ids=lambda p: f"{p['analyzer']}{p['ngram_range']}")
def test_analyzer_reproduces_tfidf_vectorizer(texts, params):
    full = {"sublinear_tf": True, "min_df": 2, "lowercase": True, "token_pattern": r"(?u)\b\w\w+\b", **params}
    vectorizer = TfidfVectorizer(**full, dtype=np.float64).fit(texts[:400])
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    analyzer = SparseAnalyzer.from_params(full, terms, vectorizer.idf_)
    assert (analyzer.packed is None) == (params["ngram_range"] == (2, 12))
    probe = texts[400:] + AWKWARD
    expected = vectorizer.transform(probe).toarray()
    for row, text in enumerate(probe):
        columns, values = analyzer.features(text)
        got = np.zeros(len(terms))
        got[columns] = values
        np.testing.assert_allclose(got, expected[row], atol=1e-9, err_msg=repr(text))


@pytest.fixture(scope="module")
def students(texts):
    """A soft-LR (multiclass) and a logit-ridge (multilabel) student fitted on real tweets with teacher-like logits."""
    rng = np.random.default_rng(0)
    train, val = texts[:400], texts[400:500]
    fitted = []
    for cls, task, k in ((TfidfSoftLogisticRegression, "multiclass", 3), (TfidfLogitRidge, "multilabel", 4)):
        logits = rng.normal(0, 2, size=(len(train), k)).astype(np.float32)
        val_labels = rng.integers(0, 2, size=(len(val), k)) if task == "multilabel" else rng.integers(0, k, len(val))
        names = [f"c{i}" for i in range(k)]
        data = TrainingData(train, None, logits, task, names)
        scorer = Scorer(task, names, "mean_roc_auc" if task == "multilabel" else "macro_f1")
        config = StudentsConfig(trials=1, tfidf=TfidfConfig(min_df=2))
        fitted.append(cls(config).fit(data, val, val_labels, scorer))
    return fitted


def _sklearn_proba(student, texts: list[str]) -> np.ndarray:
    logits = student.features_.transform(texts) @ student.coef_.T + student.intercept_
    return probabilities(np.asarray(logits, dtype=np.float64), student.task_)


def test_student_probabilities_match_sklearn_path_to_1e5(students, texts, tmp_path):
    probe = texts[500:] + AWKWARD
    for student in students:
        expected = _sklearn_proba(student, probe)
        np.testing.assert_allclose(student.predict_proba(probe), expected, atol=1e-5)
        one_at_a_time = np.vstack([student.predict_proba([text]) for text in probe])
        np.testing.assert_allclose(one_at_a_time, expected, atol=1e-5)
        student.save(tmp_path / student.kind)
        reloaded = load_student(tmp_path / student.kind)
        np.testing.assert_allclose(reloaded.predict_proba(probe), expected, atol=1e-5)


def test_students_with_equal_features_share_analyzers_and_stack(students, texts):
    soft, ridge = students
    assert soft.feature_key_ == ridge.feature_key_
    assert soft.sparse_.analyzers is ridge.sparse_.analyzers
    stacked = SparseLinear.stack([soft.sparse_, ridge.sparse_])
    logits = stacked.logits(texts[:5])
    np.testing.assert_allclose(logits, np.hstack([soft.predict_logits(texts[:5]), ridge.predict_logits(texts[:5])]),
                               atol=1e-5)


def test_featurize_rows_are_the_sklearn_tfidf_rows(students, texts):
    student = students[0]
    probe = texts[500:520] + AWKWARD
    indptr, columns, values = student.sparse_.featurize(probe)
    matrix = sp.csr_matrix((values, columns, indptr), shape=(len(probe), student.features_.n_features))
    np.testing.assert_allclose(matrix.toarray(), student.features_.transform(probe).toarray(), atol=1e-6)


def test_sparse_linear_single_and_batch_agree():
    analyzer = SparseAnalyzer.from_params({"analyzer": "word", "ngram_range": (1, 1), "token_pattern": r"\w+",
                                           "lowercase": True, "sublinear_tf": False}, ["a", "b"], np.ones(2))
    model = SparseLinear([analyzer], np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([0.5, -0.5]))
    # "a a b": counts (2, 1), l2-normalised (2, 1)/sqrt(5); logits = W x + b
    expected = np.array([2 / 5 ** 0.5 + 0.5, 2 / 5 ** 0.5 - 0.5])
    np.testing.assert_allclose(model.logits(["a a b"])[0], expected, rtol=1e-6)
    assert model.logits([]).shape == (0, 2) and model.logits(["a a b"]).dtype == np.float32
    batch = model.logits(["a a b", "", "zzz"])
    np.testing.assert_allclose(batch[0], expected, rtol=1e-6)
    np.testing.assert_allclose(batch[1:], [[0.5, -0.5], [0.5, -0.5]])  # no known feature: the bias alone
    for text, row in zip(["a a b", "", "zzz"], batch):  # the one-text path gives the batch path's logits
        np.testing.assert_allclose(model.logits([text])[0], row, rtol=1e-6)
