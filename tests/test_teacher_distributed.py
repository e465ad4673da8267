"""Teacher fine-tuning under `accelerate launch` with 2 CPU processes (gloo, DDP) takes the same steps as one
process on the whole batches: without dropout, the fine-tuned weights agree to float rounding."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file
from test_label_distributed import _free_port

from bertdistill.cli import main
from bertdistill.core import files


def _dropout_free_bert(tiny_bert_dir, folder):
    """The tiny BERT with dropout off, so two runs differ only by how the batches were split."""
    from transformers import BertConfig, BertModel

    config = BertConfig.from_pretrained(tiny_bert_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                        classifier_dropout=0.0)
    BertModel.from_pretrained(tiny_bert_dir, config=config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tiny_bert_dir / name).exists():
            (folder / name).write_bytes((tiny_bert_dir / name).read_bytes())
    return folder


def test_two_processes_fine_tune_like_one(tiny_bert_dir, tmp_path):
    backbone = _dropout_free_bert(tiny_bert_dir, tmp_path / "backbone")
    words = {0: "goal match team score", 1: "pizza pasta recipe bread"}
    for split, n in (("train", 32), ("val", 12), ("test", 12)):
        rows = [f"{words[i % 2]} {' '.join(['more'] * (i % 7))} number {i},{i % 2}" for i in range(n)]
        (tmp_path / f"{split}.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\nformat = "csv"\npath = "{tmp_path}"\ntrain_file = "train.csv"\nval_file = "val.csv"\n'
                      f'test_file = "test.csv"\n[teacher]\nbackbone = "{backbone}"\nepochs = 2\nbatch_size = 8\n'
                      'max_length = 32\nlearning_rate = 1e-3\ndevice = "cpu"\n', encoding="utf-8")
    assert main(["teacher", str(config), "--out", str(tmp_path / "single")]) == 0
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "bertdistill.teacher.distributed", str(config),
               "--out", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": "",
           "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    single, ddp = (load_file(tmp_path / run / "teacher" / "model" / "model.safetensors") for run in ("single", "ddp"))
    assert single.keys() == ddp.keys()
    moved = 0
    start = load_file(backbone / "model.safetensors")
    for name, weights in single.items():
        np.testing.assert_allclose(ddp[name], weights, rtol=0, atol=2e-5, err_msg=name)
        key = name.removeprefix("bert.")
        moved += key in start and not np.allclose(weights, start[key])
    assert moved > 10  # fine-tuning changed the encoder, identically in both runs
    states = [files.read_json(tmp_path / run / "teacher" / "model" / "state.json") for run in ("single", "ddp")]
    assert states[0]["best_epoch"] == states[1]["best_epoch"]
    assert sorted(p.name for p in (tmp_path / "ddp" / "teacher" / "checkpoints").iterdir()) == ["epoch-1", "epoch-2"]
