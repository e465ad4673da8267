"""Lean inference for the TF-IDF linear students: raw string -> n-gram ids -> sparse dot with the weights.

The features come from `tfidf_features.py` (exactly what the fitted TfidfVectorizers compute, each vectorizer
normalised on its own before they are concatenated); only the weight rows of the features present are multiplied.
Training stays in scikit-learn; tests check both paths give the same probabilities.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bertdistill.students.tfidf_features import SparseAnalyzer


class SparseLinear:
    """logits = W · concat(tfidf_1(text), tfidf_2(text), ...) + b, computed from n-gram look-ups."""

    def __init__(self, analyzers: list[SparseAnalyzer], coef: np.ndarray, intercept: np.ndarray):
        self.analyzers = analyzers
        self.offsets = np.cumsum([0] + [len(a.index) for a in analyzers])[:-1].tolist()  # of each block
        self.weight_rows = np.ascontiguousarray(np.asarray(coef, dtype=np.float64).T)  # (d, k): one row a feature
        self.intercept = np.asarray(intercept, dtype=np.float64)
        ends = self.offsets[1:] + [len(self.weight_rows)]
        self.blocks = [self.weight_rows[start:end] for start, end in zip(self.offsets, ends)]  # views, per analyzer

    @classmethod
    def stack(cls, models: list["SparseLinear"]) -> "SparseLinear":
        """One model whose logits are those of `models` side by side. They must share analyzers; a group of
        students on the same features then costs one featurization and one gather-and-dot per text."""
        if any(model.analyzers is not models[0].analyzers for model in models):
            raise ValueError("only models on the same features can be stacked")
        return cls(models[0].analyzers, np.vstack([m.weight_rows.T for m in models]),
                   np.concatenate([m.intercept for m in models]))

    def featurize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, columns, values): the texts' tf-idf rows in CSR layout, every analyzer side by side."""
        rows = [self.row(text) for text in texts]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(columns) for columns, _ in rows], out=indptr[1:])
        return (indptr, np.concatenate([np.zeros(0, np.int64)] + [columns for columns, _ in rows]),
                np.concatenate([np.zeros(0)] + [values for _, values in rows]))

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's columns (every analyzer's block at its offset) and tf-idf values."""
        parts = [analyzer.features(text) for analyzer in self.analyzers]
        columns = np.concatenate([cols + offset if offset else cols for (cols, _), offset in zip(parts, self.offsets)])
        return columns, np.concatenate([values for _, values in parts])

    def logits(self, texts: list[str]) -> np.ndarray:
        """(n, k) float32 logits of raw texts: one text (a served request) is a gather-and-dot per analyzer, with
        no CSR row assembled; a batch is one sparse matrix product."""
        if len(texts) != 1:
            return self.logits_from(self.featurize(texts))
        total = self.intercept.copy()
        for analyzer, block in zip(self.analyzers, self.blocks):
            columns, values = analyzer.features(texts[0])
            if len(columns):  # np.take: several times faster than fancy indexing for a row gather
                total += values @ np.take(block, columns, axis=0)
        return total[None, :].astype(np.float32)

    def logits_from(self, rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """(n, k) float32 logits of featurized rows (CSR layout), by one sparse matrix product."""
        indptr, columns, values = rows
        matrix = sp.csr_matrix((values, columns, indptr), shape=(len(indptr) - 1, self.weight_rows.shape[0]))
        return np.asarray(matrix @ self.weight_rows + self.intercept, dtype=np.float32)
