"""What "1/20" and "1/100 of the teacher's latency" mean for the two offline teachers, on this machine.

    python benchmarks/teacher_size_latency.py [--threads 1] [--texts 200]

Single-text PyTorch p50 (tokenizer included, warmed up, fp32) of all-MiniLM-L6-v2 (`minilm`, 6 x 384) and
all-mpnet-base-v2 (`mpnet-base`, 12 x 768, bert-base size) as sequence classifiers with their own tokenizers, on
TweetEval offensive test tweets, measured one after the other in one process. Latency does not depend on the
classification head, so it is left as initialised. Prints each one's p50, the ratio, and the budgets they set.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertdistill.evaluation.latency import limited_threads, single_text_latency
from bertdistill.teacher.model import resolve_backbone

TWEETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tweeteval" / "offensive" / "test_text.txt"
TEACHERS = ("minilm", "mpnet-base")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--texts", type=int, default=200)
    args = parser.parse_args(argv)
    texts = TWEETS.read_text(encoding="utf-8").splitlines()[:args.texts]
    result = {}
    for alias in TEACHERS:
        folder = resolve_backbone(alias)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2).eval()

        def predict(batch: list[str]) -> torch.Tensor:
            with torch.inference_mode():
                encoded = tokenizer(batch, truncation=True, max_length=128, return_tensors="pt")
                return model(**encoded).logits.softmax(-1)

        with limited_threads(args.threads):
            latency = single_text_latency(predict, texts, warmup=20, label=alias)
        result[alias] = {"p50_ms": latency["p50"], "p95_ms": latency["p95"], "budget_1_20_ms": latency["p50"] / 20,
                         "budget_1_100_ms": latency["p50"] / 100,
                         "parameters": sum(p.numel() for p in model.parameters())}
    ratio = result["mpnet-base"]["p50_ms"] / result["minilm"]["p50_ms"]
    print(json.dumps({"threads": args.threads, "texts": len(texts), "mpnet_over_minilm": ratio, "models": result},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
