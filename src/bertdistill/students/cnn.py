"""Kim (2014) CNN student: convolutions of several widths over token embeddings, max-over-time pooling."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bertdistill.config import NeuralConfig
from bertdistill.students.neural import Embedder, NeuralStudent


class KimCNN(nn.Module):
    def __init__(self, vocab_size: int, table_dim: int, dim: int, widths: list[int], filters: int,
                 num_labels: int, dropout: float):
        super().__init__()
        self.embedder = Embedder(vocab_size, table_dim, dim)
        self.widths = list(widths)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, width) for width in self.widths)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(filters * len(self.widths), num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = (self.embedder(input_ids) * attention_mask.unsqueeze(-1)).transpose(1, 2)  # (n, dim, length)
        x = F.pad(x, (0, max(self.widths) - 1))  # zeros after the text: every width has at least one window
        lengths = attention_mask.sum(1)
        pooled = []
        for conv, width in zip(self.convs, self.widths):
            h = F.relu(conv(x))  # (n, filters, positions)
            # a window is valid if it starts inside the text and ends in it, or, for a text shorter than the
            # width, at position 0; the padding's windows are masked out
            last_start = (lengths - width).clamp(min=0)
            valid = torch.arange(h.shape[2], device=h.device)[None, :] <= last_start[:, None]
            pooled.append(h.masked_fill(~valid[:, None, :], float("-inf")).max(dim=2).values)
        return self.output(self.dropout(torch.cat(pooled, dim=1)))


class CNNStudent(NeuralStudent):
    kind = "cnn"

    def architecture(self, table_dim: int, config: NeuralConfig, source: Path | None) -> dict:
        return {"table_dim": table_dim, "dim": config.embedding_dim or table_dim, "widths": config.cnn_widths,
                "filters": config.hidden_size, "dropout": config.dropout}

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        return KimCNN(vocab_size, arch["table_dim"], arch["dim"], arch["widths"], arch["filters"], num_labels,
                      arch["dropout"])


class DistilledCNNStudent(CNNStudent):
    kind = "cnn-kd"
    role = "distilled"
    twin = "cnn"
