"""fastText-style student (Joulin et al. 2017): the mean of token and hashed token-bigram embeddings -> linear."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bertdistill.config import NeuralConfig
from bertdistill.students.neural import Embedder, NeuralStudent

BIGRAM_PRIME = 1_000_003


class FastTextModule(nn.Module):
    def __init__(self, vocab_size: int, table_dim: int, dim: int, buckets: int, num_labels: int, dropout: float):
        super().__init__()
        self.embedder = Embedder(vocab_size, table_dim, dim)
        self.bigrams = nn.Embedding(buckets, dim)
        nn.init.uniform_(self.bigrams.weight, -1 / dim, 1 / dim)
        self.buckets = buckets
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(dim, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).float()  # (n, length, 1)
        pair_mask = mask[:, 1:] * mask[:, :-1]  # a bigram exists where both tokens do
        bigram_ids = (input_ids[:, :-1] * BIGRAM_PRIME + input_ids[:, 1:]) % self.buckets
        total = (self.embedder(input_ids) * mask).sum(1) + (self.bigrams(bigram_ids) * pair_mask).sum(1)
        count = (mask.sum(1) + pair_mask.sum(1)).clamp(min=1)
        return self.output(self.dropout(total / count))


class FastTextStudent(NeuralStudent):
    kind = "fasttext"

    def learning_rates(self) -> tuple[float, ...]:
        return (self.config.neural.fasttext_learning_rate,)

    def architecture(self, table_dim: int, config: NeuralConfig, source: Path | None) -> dict:
        return {"table_dim": table_dim, "dim": config.embedding_dim or table_dim, "buckets": config.hash_buckets,
                "dropout": config.dropout}

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        return FastTextModule(vocab_size, arch["table_dim"], arch["dim"], arch["buckets"], num_labels,
                              arch["dropout"])


class DistilledFastTextStudent(FastTextStudent):
    kind = "fasttext-kd"
    role = "distilled"
    twin = "fasttext"
