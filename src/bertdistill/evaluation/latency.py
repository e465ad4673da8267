"""Inference cost, end to end: raw strings in, probabilities out, warmed up, at a stated thread count."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

Predict = Callable[[list[str]], np.ndarray]


@contextmanager
def limited_threads(threads: int):
    """Pin torch and the BLAS / OpenMP pools to `threads` for the duration of a measurement."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def single_text_latency(predict: Predict, texts: list[str], warmup: int, label: str = "") -> dict:
    """Milliseconds per call of predict([text]), one text at a time: p50, p95 and mean."""
    for text in texts[:warmup]:
        predict([text])
    timings = []
    for text in tqdm(texts, desc=f"latency {label}".strip(), unit="text", leave=False):
        start = time.perf_counter()
        predict([text])
        timings.append((time.perf_counter() - start) * 1000)
    timings = np.array(timings)
    return {"p50": float(np.percentile(timings, 50)), "p95": float(np.percentile(timings, 95)),
            "mean": float(timings.mean()), "n": len(timings)}


def throughput(predict: Predict, texts: list[str], batch_size: int, label: str = "") -> float:
    """Texts per second when predicting in batches of `batch_size` (after one warm-up batch)."""
    predict(texts[:batch_size])
    start = time.perf_counter()
    for offset in tqdm(range(0, len(texts), batch_size), desc=f"throughput {label}".strip(), unit="batch",
                       leave=False):
        predict(texts[offset:offset + batch_size])
    return len(texts) / (time.perf_counter() - start)


def benchmark_texts(texts: list[str], count: int, seed: int = 0) -> list[str]:
    """`count` texts drawn (with repetition if needed) from the given ones, reproducibly."""
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), size=count, replace=len(texts) < count)]
