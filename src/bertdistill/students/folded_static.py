"""A static student's head folded into its token table: a text costs one gather, one sum and at most one small
product. numpy only: bertdistill's static students predict with it, and exported static bundles ship a copy of this
file next to bundle.py.

The student is x = (sum of a text's SIF-scaled table rows) / s . W0 + b0, s the sum of their SIF weights; logits =
x for a linear head, else relu(x) . W1 + b1. Row i of the folded table `shares` is token i's scaled row . W0 plus
its SIF weight x b0, then that weight. For a text, total = the sum of its rows, s = total[-1] > 0: x = total[:-1] /
s, and since relu(x / s) = relu(x) / s, relu(x) . W1 + b1 = relu(total) . [W1; b1] / s.
"""
from __future__ import annotations

import numpy as np


def fold(scaled_table: np.ndarray, sif_weights: np.ndarray,
         layers: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray | None]:
    """(shares (vocab, units + 1), output (units + 1, labels) or None for a linear head), float32, from the table
    with each row times its SIF weight, the SIF weights, and the head's linear layers as (coef (in, out), bias)."""
    first, bias = layers[0]
    shares = np.column_stack([scaled_table @ first + sif_weights[:, None] * bias, sif_weights])
    output = np.vstack([layers[1][0], layers[1][1]]).astype(np.float32) if len(layers) > 1 else None
    return np.ascontiguousarray(shares, dtype=np.float32), output


def logits(shares: np.ndarray, output: np.ndarray | None, ids: np.ndarray) -> np.ndarray:
    """(labels,) logits of one text's token ids."""
    total = shares.take(ids, axis=0).sum(0)
    if output is None:
        return total[:-1] / total[-1]
    return np.maximum(total, 0, out=total) @ output / total[-1]
