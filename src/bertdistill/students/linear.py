"""Linear students on TF-IDF word + character n-grams (scikit-learn).

Three ways to train the same model `logits = W · tfidf(text) + b`, so their comparison isolates the targets:
- `tfidf-lr`: logistic regression on gold hard labels (the baseline);
- `tfidf-soft-lr`: logistic regression on the teacher's temperature-softened distribution. scikit-learn takes
  no probability targets, so each row is expanded into one row per class weighted by the teacher's probability
  (per label: a positive and a negative row), which minimises exactly the soft cross-entropy;
- `tfidf-logit-ridge`: ridge regression on the teacher's logits (Ba & Caruana 2014).
Each tries the same number of hyper-parameter settings (`students.trials`) and keeps the best on val.
Inference does not go through scikit-learn: `sparse_linear.SparseLinear` computes the same logits from n-gram
look-ups (about 20x faster for one text); the saved format is unchanged.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from tqdm.auto import tqdm

from bertdistill.config import StudentsConfig, TfidfConfig
from bertdistill.core import files
from bertdistill.evaluation.metrics import Scorer, probabilities
from bertdistill.names import is_multilabel
from bertdistill.students.base import TrainingData, read_header, require, write_header
from bertdistill.students.sparse_linear import SparseLinear
from bertdistill.students.tfidf_features import SparseAnalyzer


class TfidfFeatures:
    """Word 1..n-gram and character n-gram TF-IDF, concatenated; saved as vocabularies + idf arrays."""

    def __init__(self, vectorizers: list[TfidfVectorizer]):
        self.vectorizers = vectorizers

    @classmethod
    def build(cls, config: TfidfConfig) -> "TfidfFeatures":
        common = dict(sublinear_tf=True, min_df=config.min_df, dtype=np.float32, max_features=config.max_features // 2)
        return cls([
            TfidfVectorizer(analyzer="word", ngram_range=(1, config.word_ngram_max), token_pattern=r"(?u)\b\w+\b",
                            **common),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(config.char_ngram_min, config.char_ngram_max), **common),
        ])

    def fit_transform(self, texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([v.fit_transform(texts) for v in self.vectorizers], format="csr")

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([v.transform(texts) for v in self.vectorizers], format="csr")

    @property
    def n_features(self) -> int:
        return sum(len(v.vocabulary_) for v in self.vectorizers)

    def specs(self) -> list[dict]:
        """Per vectorizer: the parameters that shape its features and its vocabulary in column order."""
        specs = []
        for vectorizer in self.vectorizers:
            terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
            params = {k: vectorizer.get_params()[k] for k in ("analyzer", "ngram_range", "token_pattern",
                                                             "lowercase", "sublinear_tf", "min_df")}
            specs.append({"params": params, "vocabulary": terms})
        return specs

    def sparse_analyzers(self) -> tuple[str, list[SparseAnalyzer]]:
        """The fast analyzers for these features and a fingerprint of them; students with equal features share
        one set (memory, and an ensemble computes the features once for all of them)."""
        specs = self.specs()
        digest = hashlib.sha256(json.dumps(specs).encode())
        for vectorizer in self.vectorizers:
            digest.update(np.ascontiguousarray(vectorizer.idf_, dtype=np.float64).tobytes())
        key = digest.hexdigest()[:16]
        if key not in _analyzers:
            _analyzers[key] = [SparseAnalyzer.from_params(spec["params"], spec["vocabulary"], v.idf_)
                               for spec, v in zip(specs, self.vectorizers)]
        return key, _analyzers[key]

    def save(self, folder: Path) -> None:
        files.write_json(folder / "tfidf.json", self.specs())
        files.write_npz(folder / "tfidf_idf.npz", **{f"idf_{i}": v.idf_ for i, v in enumerate(self.vectorizers)})

    @classmethod
    def load(cls, folder: Path) -> "TfidfFeatures":
        idfs = files.read_npz(folder / "tfidf_idf.npz")
        vectorizers = []
        for i, spec in enumerate(files.read_json(folder / "tfidf.json")):
            params = {**spec["params"], "ngram_range": tuple(spec["params"]["ngram_range"])}
            vectorizer = TfidfVectorizer(**params, vocabulary=spec["vocabulary"], dtype=np.float32)
            vectorizer.idf_ = idfs[f"idf_{i}"]
            vectorizers.append(vectorizer)
        return cls(vectorizers)


_featurized: dict[str, tuple] = {}  # last (features, X_train, X_val): the students of one run share them
_analyzers: dict[str, list[SparseAnalyzer]] = {}  # fast analyzers by feature fingerprint, shared by students


def featurize(config: TfidfConfig, train_texts: list[str], val_texts: list[str]):
    """Fit TF-IDF on the training texts; memoised so the three linear students fit it once per run."""
    key = hashlib.sha256(json.dumps([config.model_dump(), train_texts, val_texts]).encode()).hexdigest()
    if key not in _featurized:
        features = TfidfFeatures.build(config)
        x_train = features.fit_transform(train_texts)
        _featurized.clear()
        _featurized[key] = (features, x_train, features.transform(val_texts))
    return _featurized[key]


class TfidfLinear:
    """Shared model and persistence of the TF-IDF students; subclasses only say how to fit W and b."""

    kind: ClassVar[str]
    role: ClassVar[str]
    twin: ClassVar[str | None] = None
    config_fields: ClassVar[tuple[str, ...]] = ("trials", "seed", "tfidf")
    family: ClassVar[str] = "tfidf"
    derived_from: ClassVar[str | None] = None
    shippable: ClassVar[bool] = True

    def __init__(self, config: StudentsConfig | None = None):
        self.config = config or StudentsConfig()

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        """Every setting of the TF-IDF students fits every task and teacher: nothing can fail early."""

    def candidates(self) -> list[dict]:
        raise NotImplementedError

    def mixes_gold(self, params: dict) -> bool:
        """Whether this setting also learns from gold labels (unusable on texts without them)."""
        return False

    def fit_weights(self, x: sp.csr_matrix, data: TrainingData, params: dict) -> tuple[np.ndarray, np.ndarray]:
        """(k, d) weights and (k,) bias of the logits for one hyper-parameter setting."""
        raise NotImplementedError

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None):  # a search takes seconds: nothing to resume
        self.features_, x_train, x_val = featurize(self.config.tfidf, data.texts, val_texts)
        self.task_, self.label_names_ = data.task, list(data.label_names)
        self.search_, best = [], None
        # settings that mix in gold labels are left out when there are none
        candidates = [c for c in self.candidates() if data.labels is not None or not self.mixes_gold(c)]
        for params in tqdm(candidates, desc=f"{self.kind} search", unit="fit"):
            weights, bias = self.fit_weights(x_train, data, params)
            val_score = scorer.score(val_labels, probabilities(x_val @ weights.T + bias, data.task))
            self.search_.append({"params": params, "val_score": val_score})
            if best is None or val_score > best[0]:
                best = (val_score, params, weights, bias)
        self.val_score_, self.params_, self.coef_, self.intercept_ = best
        self._build_fast_path()
        return self

    def _build_fast_path(self) -> None:
        """`sparse_` predicts; `feature_key_` is equal for students on the same features (ensembles stack them)."""
        self.feature_key_, analyzers = self.features_.sparse_analyzers()
        self.sparse_ = SparseLinear(analyzers, self.coef_, self.intercept_)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        return self.sparse_.logits(texts)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task_)

    @property
    def n_params(self) -> int:
        return int(self.coef_.size + self.intercept_.size)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        self.features_.save(folder)
        files.write_npz(folder / "linear.npz", coef=self.coef_, intercept=self.intercept_)
        write_header(folder, self.kind, self.task_, self.label_names_, params=self.params_,
                     val_score=self.val_score_, search=self.search_)

    @classmethod
    def load(cls, folder: Path):
        header = read_header(folder)
        student = cls()
        student.features_ = TfidfFeatures.load(Path(folder))
        arrays = files.read_npz(Path(folder) / "linear.npz")
        student.coef_, student.intercept_ = arrays["coef"], arrays["intercept"]
        student.task_, student.label_names_ = header["task"], header["label_names"]
        student.params_, student.val_score_, student.search_ = header["params"], header["val_score"], header["search"]
        student._build_fast_path()
        return student


def _c_grid(count: int) -> list[float]:
    return [float(c) for c in np.geomspace(0.5, 64.0, count)]


def _logreg(x, y, weight, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights of an L2 logistic regression, as (k, d) logits; a binary model becomes logits [0, z]."""
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y, sample_weight=weight)
    coef, bias = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    if coef.shape[0] == 1:
        coef, bias = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], bias]).astype(np.float32)
    return coef, bias


def _per_label(x, data: TrainingData, fit_column) -> tuple[np.ndarray, np.ndarray]:
    """Multilabel: one binary model per label column, stacked into (k, d) logits."""
    pairs = [fit_column(x, j) for j in range(len(data.label_names))]
    return np.vstack([coef[1:] for coef, _ in pairs]), np.concatenate([bias[1:] for _, bias in pairs])


class TfidfLogisticRegression(TfidfLinear):
    kind = "tfidf-lr"
    role = "baseline"

    def candidates(self) -> list[dict]:
        return [{"C": c} for c in _c_grid(self.config.trials)]

    def fit_weights(self, x, data: TrainingData, params: dict):
        labels = require(data, "labels", self.kind)
        seed = self.config.seed
        if not is_multilabel(data.task):
            return _logreg(x, labels, None, params["C"], seed)
        return _per_label(x, data, lambda x, j: _logreg(x, labels[:, j], None, params["C"], seed))


class TfidfSoftLogisticRegression(TfidfLinear):
    kind = "tfidf-soft-lr"
    role = "distilled"
    twin = "tfidf-lr"
    # (temperature, alpha): alpha is the teacher's share of the target, 1 - alpha the gold label's (Hinton et al.);
    # alpha < 1 lets the student fall back on gold labels where the teacher is weak (rare Jigsaw labels)
    settings = ((1.0, 1.0), (2.0, 1.0), (1.0, 0.5))

    def candidates(self) -> list[dict]:
        per_setting = -(-self.config.trials // len(self.settings))  # ceil: never fewer than trials
        grid = [{"C": float(c), "temperature": t, "alpha": a} for t, a in self.settings
                for c in np.geomspace(2.0, 256.0, per_setting)]  # soft targets need less regularisation
        return grid[: self.config.trials]

    def mixes_gold(self, params: dict) -> bool:
        return params["alpha"] < 1

    def fit_weights(self, x, data: TrainingData, params: dict):
        soft = probabilities(require(data, "teacher_logits", self.kind), data.task, params["temperature"])
        if params["alpha"] < 1:  # (n, k) mixed targets: alpha * teacher + (1 - alpha) * gold where there is gold
            gold = require(data, "labels", self.kind)
            labelled = gold >= 0 if not is_multilabel(data.task) else (gold >= 0).all(axis=1)
            gold = (np.eye(soft.shape[1])[np.maximum(gold, 0)] if not is_multilabel(data.task)
                    else gold.astype(soft.dtype))
            mixed = params["alpha"] * soft + (1 - params["alpha"]) * gold
            soft = np.where(labelled[:, None], mixed, soft)
        seed = self.config.seed
        if not is_multilabel(data.task):
            return _logreg(*expand_soft_targets(x, soft), params["C"], seed)
        return _per_label(x, data, lambda x, j: _logreg(
            *expand_soft_targets(x, np.stack([1 - soft[:, j], soft[:, j]], axis=1)), params["C"], seed))


def expand_soft_targets(x: sp.csr_matrix, soft: np.ndarray, floor: float = 1e-4):
    """Rows repeated once per class with weight p(class): weighted CE on them = soft CE on the originals."""
    rows, classes = np.nonzero(soft >= floor)  # dropping near-zero weights changes the loss by < floor
    return x[rows], classes, soft[rows, classes]


class TfidfLogitRidge(TfidfLinear):
    kind = "tfidf-logit-ridge"
    role = "distilled"
    twin = "tfidf-lr"

    def candidates(self) -> list[dict]:
        return [{"alpha": float(a)} for a in np.geomspace(0.05, 20.0, self.config.trials)]

    def fit_weights(self, x, data: TrainingData, params: dict):
        logits = require(data, "teacher_logits", self.kind)
        if not is_multilabel(data.task):  # softmax ignores a per-row shift: regress on centred logits
            logits = logits - logits.mean(axis=1, keepdims=True)
        model = Ridge(alpha=params["alpha"], random_state=self.config.seed).fit(x, logits)
        return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
