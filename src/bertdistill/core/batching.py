"""Tokenized texts to batches: truncation, dynamic padding, length-grouped training batches and batched
inference in length order, shared by the teacher, its ONNX export and the neural students."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def encode(tokenizer, texts: list[str], max_length: int, truncation: str = "head") -> list[list[int]]:
    """Token ids (with the special tokens) of each text, at most `max_length`. "head" keeps the start of a long
    text; "head-tail" its first quarter and its last three quarters (Sun et al. 2019: the end of a long comment
    often carries its verdict)."""
    if truncation == "head":
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    head = max_length // 4
    encoded = tokenizer(texts)["input_ids"]
    return [ids if len(ids) <= max_length else ids[:head] + ids[len(ids) - (max_length - head):] for ids in encoded]


def pad_ids(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(batch, longest) int64 token ids right-padded with pad_id (dynamic padding), and the attention mask."""
    width = max(len(ids) for ids in sequences)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, ids in enumerate(sequences):
        input_ids[row, :len(ids)] = ids
        attention_mask[row, :len(ids)] = 1
    return input_ids, attention_mask


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, device) -> dict:
    """`pad_ids` as torch tensors on `device`, keyed as a Hugging Face model's forward takes them."""
    import torch

    input_ids, attention_mask = pad_ids(sequences, pad_id)
    return {"input_ids": torch.from_numpy(input_ids).to(device),
            "attention_mask": torch.from_numpy(attention_mask).to(device)}


def predict_in_length_order(encoded: Sequence[Sequence[int]], batch_size: int,
                            predict: Callable[[list], np.ndarray], progress=None) -> np.ndarray:
    """(n, k) float32 outputs of `predict` (a list of token-id sequences -> (b, k) array) over batches of texts of
    similar length, so little compute goes to padding; rows come back in input order. `progress`: a tqdm
    description, or None for no bar."""
    from tqdm.auto import tqdm

    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    out = None
    with tqdm(total=len(encoded), desc=progress, unit="text", disable=progress is None) as bar:
        for start in range(0, len(encoded), batch_size):
            rows = order[start:start + batch_size]
            logits = predict([encoded[i] for i in rows])
            if out is None:
                out = np.empty((len(encoded), logits.shape[1]), dtype=np.float32)
            out[rows] = logits
            bar.update(len(rows))
    return out


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: sort inside random windows of 50 batches, shuffle the batches."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
