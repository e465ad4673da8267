"""Teacher labeling speed on this machine: PyTorch fp32 and bf16 autocast, ONNX Runtime fp32 and int8, with agreement.

    python benchmarks/labeling_speed.py [--dataset tweeteval-offensive] [--teacher RUN/teacher/model] [--texts 2000]

Labels the first N train texts of the dataset with each backend through the same path as `bertdistill label`
(fast batched tokenization, length-sorted batches of --batch-size, dynamic padding), all at the same thread
count (torch's default: every core, unless OMP_NUM_THREADS says otherwise), after a warm-up; the best of --repeats
timings. The int8 export is calibrated on the other train texts (in a temporary folder: the run's own exports are
left alone). Tokenization is also timed alone, to say how much of the budget it takes. Writes
benchmarks/labeling_speed.json and its section of benchmarks/TRANSFER.md. Measure on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")  # the reference first


def timed(label, texts: list[str], batch_size: int, repeats: int) -> tuple[float, np.ndarray]:
    """Best-of-`repeats` seconds to label `texts`, and the logits."""
    label(texts[:64], batch_size=batch_size)  # warm-up: allocator, kernels, ORT's first-run planning
    best, logits = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        logits = label(texts, batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return best, logits


def measure(teacher_dir: Path, texts: list[str], batch_size: int, repeats: int, calibration_texts: list[str],
            export_dir: Path) -> dict:
    import torch

    from bertdistill.labels.soft_labels import open_labeler

    threads = torch.get_num_threads()
    results, logits = {}, {}
    for backend in BACKENDS:
        labeler = open_labeler(teacher_dir, backend, device="cpu", threads=threads, export_dir=export_dir,
                               calibration_texts=calibration_texts)
        seconds, logits[backend] = timed(labeler.predict_logits, texts, batch_size, repeats)
        results[backend] = {"seconds": round(seconds, 3), "texts_per_s": round(len(texts) / seconds, 1)}
        print(f"{backend:10s} {len(texts) / seconds:8.1f} texts/s", flush=True)
    tokenizer = labeler.tokenizer
    start = time.perf_counter()
    tokenizer(texts, truncation=True, max_length=labeler.max_length)
    tokenize_s = time.perf_counter() - start
    top1 = {name: value.argmax(1) for name, value in logits.items()}
    return {"backends": results, "threads": threads,
            "speedup_vs_torch": {b: round(results[b]["texts_per_s"] / results["torch"]["texts_per_s"], 2)
                                 for b in BACKENDS[1:]},
            "tokenization_texts_per_s": round(len(texts) / tokenize_s, 1),
            "agreement_vs_torch": {b: float((top1[b] == top1["torch"]).mean()) for b in BACKENDS[1:]},
            "max_abs_logit_diff_fp32_vs_torch": float(np.abs(logits["onnx"] - logits["torch"]).max())}


def environment() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import onnxruntime
    import torch

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cores": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def markdown(result: dict) -> str:
    env, rows = result["environment"], result["measurement"]
    lines = [f"Measured {env['date']} on {env['cpu']} ({env['cores']} cores, {rows['threads']} threads for every "
             f"backend; load average before: {env['load_average_before']}), torch {env['torch']}, onnxruntime "
             f"{env['onnxruntime']}: {result['texts']} {result.get('dataset', 'tweeteval-offensive')} train texts, "
             f"batches of {result['batch_size']}, best of {result['repeats']}.", "",
             "| backend | texts/s | vs PyTorch fp32 | top-1 agreement with PyTorch fp32 |", "|---|---|---|---|"]
    for backend, values in rows["backends"].items():
        speedup, agreement = rows["speedup_vs_torch"].get(backend, 1.0), rows["agreement_vs_torch"].get(backend, 1.0)
        lines.append(f"| {backend} | {values['texts_per_s']:.0f} | {speedup:.2f}x | {agreement:.2%} |")
    lines += ["", f"- Reduced precision labels a transfer set only at ≥ 99% agreement on val; ONNX fp32 vs PyTorch: "
              f"max |logit difference| {rows['max_abs_logit_diff_fp32_vs_torch']:.1e}.",
              f"- Tokenization alone (fast tokenizer, batched): {rows['tokenization_texts_per_s']:.0f} texts/s: "
              f"{_bound(rows)}."]
    return "\n".join(lines)


def _bound(rows: dict) -> str:
    fastest = max(values["texts_per_s"] for values in rows["backends"].values())
    share = fastest / rows["tokenization_texts_per_s"]
    if share < 0.2:
        return f"{share:.0%} of the fastest backend's time, so the encoder's matrix products bound labeling"
    return f"{share:.0%} of the fastest backend's time: tokenization is a large part of the cost"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between `<!-- name -->` and `<!-- /name -->` in path (the file must have the markers)."""
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{path}: no {start} ... {end} section to write")
    head, rest = text.split(start, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="tweeteval-offensive", help="a built-in config name")
    parser.add_argument("--teacher", type=Path, help="a fine-tuned bertdistill teacher (default: "
                        "runs/bench/DATASET/teacher/model)")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--report", default=str(HERE / "TRANSFER.md"), help="'' to write no report nor JSON")
    args = parser.parse_args(argv)
    args.teacher = args.teacher or HERE.parent / "runs" / "bench" / args.dataset / "teacher" / "model"
    if not (args.teacher / "bertdistill.json").exists():
        raise SystemExit(f"{args.teacher}: no teacher; run `bertdistill teacher {args.dataset} --out "
                         f"runs/bench/{args.dataset}` first, or pass --teacher")
    from bertdistill.config import load_config
    from bertdistill.data import load_dataset

    train = load_dataset(load_config(args.dataset).data).train.texts
    texts = train[:args.texts]
    result = {"environment": environment(), "dataset": args.dataset, "teacher": str(args.teacher),
              "texts": len(texts), "batch_size": args.batch_size, "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as exports:
        result["measurement"] = measure(args.teacher, texts, args.batch_size, args.repeats, train[args.texts:],
                                        Path(exports))
    if args.report:
        (HERE / "labeling_speed.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_section(Path(args.report), "labeling-speed", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
