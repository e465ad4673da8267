"""Benchmark helpers: what they measure and return, never how fast anything is."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from bertdistill.evaluation import latency
from bertdistill.evaluation.latency import (
    benchmark_texts,
    limited_threads,
    single_text_latency,
    throughput,
)


class CountingPredict:
    def __init__(self, k: int = 3):
        self.batches: list[list[str]] = []
        self.k = k

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return np.full((len(texts), self.k), 1.0 / self.k)


TEXTS = [f"text number {i}" for i in range(25)]


def test_single_text_latency_keys_and_order():
    predict = CountingPredict()
    result = single_text_latency(predict, TEXTS, warmup=4, label="x")
    assert set(result) == {"p50", "p95", "mean", "n"}
    assert result["n"] == len(TEXTS)
    assert 0 <= result["p50"] <= result["p95"]
    assert result["mean"] >= 0
    assert all(isinstance(result[key], float) for key in ("p50", "p95", "mean"))


def test_single_text_latency_calls_one_text_at_a_time_after_warmup():
    predict = CountingPredict()
    single_text_latency(predict, TEXTS, warmup=4)
    assert [len(batch) for batch in predict.batches] == [1] * (4 + len(TEXTS))
    assert [batch[0] for batch in predict.batches] == TEXTS[:4] + TEXTS
    no_warmup = CountingPredict()
    single_text_latency(no_warmup, TEXTS, warmup=0)
    assert len(no_warmup.batches) == len(TEXTS)


def test_latency_percentiles_come_from_the_measured_timings(monkeypatch):
    """A fake clock makes call i take i ms: the percentiles are then known exactly."""
    # perf_counter is called twice per text (start, end); the differences are 1, 2, ..., 10 ms
    clock = iter([t for i in range(10) for t in (float(i * 100), float(i * 100) + (i + 1) / 1000)])
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    result = single_text_latency(CountingPredict(), TEXTS[:10], warmup=0)
    assert result["p50"] == pytest.approx(np.percentile(np.arange(1, 11), 50))
    assert result["p95"] == pytest.approx(np.percentile(np.arange(1, 11), 95))
    assert result["mean"] == pytest.approx(5.5)


def test_throughput_is_positive_and_covers_all_texts_in_batches():
    predict = CountingPredict()
    rate = throughput(predict, TEXTS, batch_size=8)
    assert rate > 0 and np.isfinite(rate)
    warmup, *timed = predict.batches
    assert warmup == TEXTS[:8]
    assert [len(batch) for batch in timed] == [8, 8, 8, 1]
    assert sum(timed, []) == TEXTS


def test_throughput_with_a_fake_clock(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert throughput(CountingPredict(), TEXTS, batch_size=10) == pytest.approx(25 / 2.5)


def test_limited_threads_sets_and_restores_torch_threads():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with limited_threads(target):
        assert torch.get_num_threads() == target
        assert all(pool["num_threads"] == target for pool in threadpool_info())
    assert torch.get_num_threads() == before


def test_limited_threads_restores_after_an_error():
    before = torch.get_num_threads()
    pools_before = [pool["num_threads"] for pool in threadpool_info()]
    with pytest.raises(RuntimeError, match="boom"):
        with limited_threads(1 if before != 1 else 2):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    assert [pool["num_threads"] for pool in threadpool_info()] == pools_before


def test_benchmark_texts_is_reproducible_and_drawn_from_the_texts():
    texts = [f"t{i}" for i in range(50)]
    drawn = benchmark_texts(texts, 20, seed=3)
    assert len(drawn) == 20 and set(drawn) <= set(texts)
    assert len(set(drawn)) == 20  # enough texts: no repetition
    assert benchmark_texts(texts, 20, seed=3) == drawn
    assert benchmark_texts(texts, 20, seed=4) != drawn


def test_benchmark_texts_repeats_when_there_are_too_few():
    drawn = benchmark_texts(["a", "b", "c"], 10)
    assert len(drawn) == 10 and set(drawn) <= {"a", "b", "c"}
