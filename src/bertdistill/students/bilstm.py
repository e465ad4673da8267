"""BiLSTM student as in Tang et al. 2019: one bidirectional layer, max-pooling over time, a small ReLU MLP."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bertdistill.config import NeuralConfig
from bertdistill.students.neural import Embedder, NeuralStudent


class BiLSTMModule(nn.Module):
    def __init__(self, vocab_size: int, table_dim: int, dim: int, hidden: int, num_labels: int, dropout: float):
        super().__init__()
        self.embedder = Embedder(vocab_size, table_dim, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        vectors = self.embedder(input_ids)
        if bool(attention_mask.all()):  # no padding (e.g. one text): skip packing
            states, _ = self.lstm(vectors)
        else:  # packing keeps the backward direction from starting on padding
            lengths = attention_mask.sum(1).cpu()
            packed = pack_padded_sequence(vectors, lengths, batch_first=True, enforce_sorted=False)
            states, _ = self.lstm(packed)
            states, _ = pad_packed_sequence(states, batch_first=True, total_length=input_ids.shape[1])
        states = states.masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf"))
        return self.head(states.max(dim=1).values)


class BiLSTMStudent(NeuralStudent):
    kind = "bilstm"

    def architecture(self, table_dim: int, config: NeuralConfig, source: Path | None) -> dict:
        return {"table_dim": table_dim, "dim": config.embedding_dim or table_dim, "hidden": config.hidden_size,
                "dropout": config.dropout}

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        return BiLSTMModule(vocab_size, arch["table_dim"], arch["dim"], arch["hidden"], num_labels, arch["dropout"])


class DistilledBiLSTMStudent(BiLSTMStudent):
    kind = "bilstm-kd"
    role = "distilled"
    twin = "bilstm"
