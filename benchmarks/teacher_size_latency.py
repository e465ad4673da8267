"""What "1/100 of the teacher's latency" means for teachers of other sizes, on this machine.

    python benchmarks/teacher_size_latency.py [--threads 1] [--texts 200]

Single-text PyTorch p50 (tokenizer included, warmed up) of BERT-architecture classifiers with the shapes of
all-MiniLM-L6-v2 (6 x 384, the offline default teacher) and bert-base-uncased (12 x 768), on TweetEval offensive
test tweets. Latency does not depend on the weights, so both are randomly initialised: bert-base cannot be
downloaded here. Prints each one's p50 and the 1/20 and 1/100 budgets it sets.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from bertdistill.benchmark import limited_threads, single_text_latency
from bertdistill.teacher import resolve_backbone

TWEETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tweeteval" / "offensive" / "test_text.txt"
SHAPES = {"all-MiniLM-L6-v2 (6 x 384)": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12,
                                              intermediate_size=1536),
          "bert-base (12 x 768)": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                                       intermediate_size=3072)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--texts", type=int, default=200)
    args = parser.parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("minilm"))
    texts = TWEETS.read_text(encoding="utf-8").splitlines()[:args.texts]
    result = {}
    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **shape))
        model.eval()

        def predict(batch: list[str]) -> torch.Tensor:
            with torch.inference_mode():
                encoded = tokenizer(batch, truncation=True, max_length=128, return_tensors="pt")
                return model(**encoded).logits.softmax(-1)

        with limited_threads(args.threads):
            p50 = single_text_latency(predict, texts, warmup=20, label=name)["p50"]
        result[name] = {"p50_ms": p50, "budget_1_20_ms": p50 / 20, "budget_1_100_ms": p50 / 100}
    print(json.dumps({"threads": args.threads, "texts": len(texts), "models": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
