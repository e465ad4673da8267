"""The teacher as ONNX Runtime models — fp32, and int8 by dynamic quantization — for reference leaderboard rows.

A user who finds the PyTorch teacher too slow would first try exactly these, so every student's speed-up is also
quoted against them; `teacher.label_backend` also labels transfer sets with them. Choices, measured on TweetEval
offensive (2 CPU threads, 2,000 train texts; agreement chosen on *val*):
- Export with `torch.onnx.export(..., dynamo=False)` (the TorchScript exporter that ships with torch; no optimum
  and its transformers pins), from the model loaded with eager attention: that graph is the pattern ONNX Runtime's
  transformer optimizer fuses (embedding + LayerNorm, one Attention op per layer, bias + GELU, skip + LayerNorm),
  which the SDPA export is not. Fused fp32: logits equal to PyTorch's to ~3e-6, 0-10% faster than the plain
  graph (within this machine's noise).
  A family ONNX Runtime has no fusions for (MPNet, DeBERTa-v2: backbones.py) keeps its plain graph; the parity
  check below guards both.
- Int8: `onnxruntime.quantization.quantize_dynamic`, MatMul and Attention weights int8 per channel, activations
  quantized per tensor at run time, embeddings fp32, and each MatMul's outlier input channels kept fp32 from a
  calibration on 256 train texts (core/int8.py). Whole-graph int8 agreed with fp32 on only 91-96% of
  val on MPNet teachers (benchmarks/TRANSFER.md); with the outlier channels fp32 it reaches >= 99% at about the same
  speed.
Each variant is a self-contained folder (model.onnx, tokenizer, bertdistill.json) under the run's teacher/.
"""
from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bertdistill.core import files
from bertdistill.core.int8 import calibration_sample, quantize_int8
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import probabilities
from bertdistill.names import TEACHER_INT8, TEACHER_ONNX
from bertdistill.teacher import backbones

ONNX_FORMAT = "bertdistill-onnx-teacher"
VARIANTS = {TEACHER_ONNX: "onnx-fp32", TEACHER_INT8: "onnx-int8"}  # leaderboard name -> folder
OPSET = 17
PARITY_TOLERANCE = 1e-3  # max |logit difference| between PyTorch and ONNX Runtime fp32 accepted at export
RECIPE = 3  # how the export is made (3: fused graph, int8 with outlier input channels fp32 from a calibration)


def export_teacher(teacher_dir: Path, out: Path, calibration_texts: Sequence[str]) -> dict[str, Path]:
    """Write out/onnx-fp32 and out/onnx-int8 (each skipped when already there by this recipe); returns name ->
    folder. `calibration_texts` (train texts; none: whole-graph int8) choose the channels int8 keeps fp32."""
    folders = {name: Path(out) / folder for name, folder in VARIANTS.items()}
    fp32, int8 = folders[TEACHER_ONNX], folders[TEACHER_INT8]
    if not _current(fp32):
        files.publish_dir(fp32, lambda staging: _export_fp32(Path(teacher_dir), staging))
    if not _current(int8):
        files.publish_dir(int8, lambda staging: _quantize(fp32, staging, calibration_texts))
    return folders


def exported(out: Path) -> dict[str, Path]:
    """The variants already exported under `out` (a run's teacher/ folder) by this recipe, by leaderboard name."""
    return {name: Path(out) / folder for name, folder in VARIANTS.items() if _current(Path(out) / folder)}


def _current(folder: Path) -> bool:
    """Whether folder holds an export made by this recipe (an older one is made again)."""
    try:
        return files.read_json(folder / "bertdistill.json").get("recipe") == RECIPE
    except (OSError, ValueError, AttributeError):
        return False


def _export_fp32(teacher_dir: Path, staging: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    meta = files.read_json(teacher_dir / "bertdistill.json")
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    model = AutoModelForSequenceClassification.from_pretrained(teacher_dir, attn_implementation="eager").eval()
    sample = ["an example to trace the graph", "and a second, longer one so that padding is exercised too"]
    encoded = tokenizer(sample, padding=True, return_tensors="pt")
    inputs = (encoded["input_ids"], encoded["attention_mask"])
    dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
               "logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(model, inputs, str(staging / "model.onnx"), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        expected = model(*inputs).logits.numpy()
    if meta.get("label_columns") is not None:
        expected = expected[:, meta["label_columns"]]
    fused = _fuse(staging / "model.onnx", model.config)
    tokenizer.save_pretrained(staging)
    n_params = sum(p.numel() for p in model.parameters())
    _write_meta(staging, meta, "fp32", n_params, {"exporter": f"torch.onnx (TorchScript), opset {OPSET}",
                                                   "fused": fused})
    difference = float(np.abs(OnnxTeacher(staging).predict_logits(sample) - expected).max())
    if difference > PARITY_TOLERANCE:
        raise BertdistillError(f"ONNX export of {teacher_dir} differs from PyTorch by {difference:.2e} in logits")


def _fuse(path: Path, config) -> dict[str, int]:
    """Rewrite the graph at `path` with ONNX Runtime's transformer fusions for the model's family (see
    backbones.py); returns the fused operators by count, empty for a family ONNX Runtime has no fusions for (its
    plain graph runs as exported)."""
    model_type = backbones.family(config.model_type).ort_model_type
    if model_type is None:
        return {}
    from onnxruntime.transformers import optimizer

    logging.disable(logging.WARNING)
    try:
        model = optimizer.optimize_model(str(path), model_type=model_type, num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=1)
    finally:
        logging.disable(logging.NOTSET)
    model.save_model_to_file(str(path))
    return {op: n for op, n in model.get_fused_operator_statistics().items() if n}


def _quantize(fp32: Path, staging: Path, calibration_texts: Sequence[str]) -> None:
    teacher = OnnxTeacher(fp32)
    feeds = calibration_feeds(teacher.tokenizer, calibration_texts, teacher.max_length, teacher.truncation)
    kept = quantize_int8(fp32 / "model.onnx", staging / "model.onnx", feeds or None)
    for name in fp32.iterdir():
        if name.name not in ("model.onnx", "bertdistill.json"):
            shutil.copy2(name, staging / name.name)
    meta = files.read_json(fp32 / "bertdistill.json")
    _write_meta(staging, meta, "int8", meta["n_params"],
                {**meta["export"], "kept_fp32": kept,
                 "calibration_texts": len(calibration_sample(calibration_texts)),
                 "quantization": "onnxruntime dynamic, MatMul and Attention weights int8 per channel, outlier input "
                                 "channels fp32"})


def calibration_feeds(tokenizer, texts: Sequence[str], max_length: int, truncation: str) -> list[dict]:
    """ONNX inputs of a calibration sample of `texts`, length-sorted batches of 32 (an empty list for no texts:
    whole-graph int8)."""
    from bertdistill.core.batching import encode, pad_ids

    if not texts:
        return []
    encoded = sorted(encode(tokenizer, calibration_sample(texts), max_length, truncation), key=len)
    batches = [pad_ids(encoded[start:start + 32], tokenizer.pad_token_id) for start in range(0, len(encoded), 32)]
    return [{"input_ids": ids, "attention_mask": mask} for ids, mask in batches]


def _write_meta(folder: Path, teacher_meta: dict, precision: str, n_params: int, export: dict) -> None:
    files.write_json(folder / "bertdistill.json", {
        "format": ONNX_FORMAT, "version": files.FORMAT_VERSION, "recipe": RECIPE, "precision": precision,
        "task": teacher_meta["task"],
        "label_names": teacher_meta["label_names"], "max_length": teacher_meta["max_length"], "n_params": n_params,
        "label_columns": teacher_meta.get("label_columns"), "truncation": teacher_meta.get("truncation", "head"),
        "export": export})


class OnnxTeacher:
    """An exported teacher run by ONNX Runtime on the CPU: raw strings in, logits or probabilities out."""

    role = "teacher"
    twin = None

    def __init__(self, folder: Path, threads: int = 1):
        import onnxruntime
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        meta = files.read_json(self.folder / "bertdistill.json")
        if meta.get("format") != ONNX_FORMAT or meta.get("version") != files.FORMAT_VERSION:
            raise BertdistillError(f"{self.folder}: not an ONNX teacher written by this bertdistill")
        self.kind, self.task, self.label_names = f"onnx-{meta['precision']}", meta["task"], meta["label_names"]
        self.max_length, self.n_params, self.params_ = meta["max_length"], meta["n_params"], meta["export"]
        self.columns, self.truncation = meta.get("label_columns"), meta.get("truncation", "head")
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1  # measured at a stated count
        self.session = onnxruntime.InferenceSession(str(self.folder / "model.onnx"), options,
                                                    providers=["CPUExecutionProvider"])

    def predict_logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, k) float32 logits; texts batched by length so little compute goes to padding."""
        from bertdistill.core.batching import encode, pad_ids, predict_in_length_order

        def run(sequences: list) -> np.ndarray:
            input_ids, attention_mask = pad_ids(sequences, self.tokenizer.pad_token_id)
            out = self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
            return out if self.columns is None else out[:, self.columns]

        encoded = encode(self.tokenizer, texts, self.max_length, self.truncation)
        return predict_in_length_order(encoded, batch_size, run)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task)
