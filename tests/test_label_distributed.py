"""Labeling shared out between processes gives exactly the single-process logits: in-process (threads standing in
for ranks, every chunk labeled once) and for real under `accelerate launch` with 2 CPU processes (gloo)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
from test_soft_labels import TextTeacher, make_teacher_folder, make_tiny_teacher

from bertdistill.core import files
from bertdistill.labels.soft_labels import (
    Shard,
    cache_path,
    load_cached,
    open_labeler,
    teacher_key,
    teacher_logits,
)

TEXTS = [f"text {i} " + "longer " * (i % 5) + "😀" * (i % 2) for i in range(23)]


def thread_shards(world: int) -> list[Shard]:
    """Shards for `world` threads: a barrier and an all-gather over a shared board, like torch.distributed's."""
    barrier = threading.Barrier(world)
    board: list = [None] * world

    def make(rank: int) -> Shard:
        def gather(items: list) -> list:
            board[rank] = items
            barrier.wait()
            gathered = [item for part in board for item in part]
            barrier.wait()  # nobody overwrites the board before everyone has read it
            return gathered

        return Shard(rank, world, gather, barrier.wait)

    return [make(rank) for rank in range(world)]


@pytest.mark.parametrize("world", [2, 3])
def test_shards_label_every_chunk_once_and_merge_in_row_order(tmp_path, world):
    folder = make_teacher_folder(tmp_path / "teacher")
    single = teacher_logits(TextTeacher(folder), TEXTS, tmp_path / "single", chunk_rows=4)
    teachers, results = [TextTeacher(folder) for _ in range(world)], [None] * world

    def work(rank: int, shard: Shard) -> None:
        results[rank] = teacher_logits(teachers[rank], TEXTS, tmp_path / "shared", chunk_rows=4, shard=shard)

    threads = [threading.Thread(target=work, args=(rank, shard)) for rank, shard in enumerate(thread_shards(world))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    labeled = sorted(text for teacher in teachers for texts, _ in teacher.calls for text in texts)
    assert labeled == sorted(TEXTS)  # 6 chunks, each labeled by exactly one rank
    assert [len(t.calls) for t in teachers] == [len(range(rank, 6, world)) for rank in range(world)]
    for result in results:
        np.testing.assert_array_equal(result, single)
    manifest = files.read_json(cache_path(tmp_path / "shared", teacher_key(folder), TEXTS) / "manifest.json")
    assert manifest["labeling"]["processes"] == world and len(manifest["chunks"]) == 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_accelerate_launch_with_two_cpu_processes_matches_one_process(tiny_bert_dir, tmp_path):
    teacher_dir = make_tiny_teacher(tiny_bert_dir, tmp_path / "teacher" / "model")
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    single = teacher_logits(open_labeler(teacher_dir, "torch", "cpu"), TEXTS, tmp_path / "single", 4, chunk_rows=5)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "bertdistill.labels.distributed",
               "--teacher", str(teacher_dir), "--texts", str(tmp_path / "texts.txt"), "--cache",
               str(tmp_path / "distributed"), "--batch-size", "4", "--chunk-rows", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": "",
           "HF_HOME": str(tmp_path / "hf")}  # CPU processes joined by gloo; no user accelerate config
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[0/2]" in done.stderr and "[1/2]" in done.stderr  # both processes labeled chunks
    distributed = load_cached(teacher_dir, TEXTS, tmp_path / "distributed")
    np.testing.assert_allclose(distributed, single, rtol=0, atol=1e-6)
    assert (distributed.argmax(1) == single.argmax(1)).all()
    manifest = files.read_json(cache_path(tmp_path / "distributed", teacher_key(teacher_dir), TEXTS) / "manifest.json")
    assert manifest["labeling"]["processes"] == 2 and len(manifest["chunks"]) == 5
