"""Mini-transformer student: k transformer layers copied from a pretrained encoder (DistilBERT-style init).

The layers, embeddings and tokenizer come from `students.neural.transformer_source`: the teacher itself (its
evenly spaced layers, first and last included), or another pretrained model such as all-MiniLM-L6-v2 (`minilm`),
whose first layers make a "well-read student" (Turc et al. 2019). Any family the backbone adapters know works
(BERT, MPNet, RoBERTa, DeBERTa-v2, DistilBERT, ELECTRA); the vocabulary is pruned to the ids seen in training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from bertdistill.config import NeuralConfig, StudentsConfig
from bertdistill.errors import BertdistillError
from bertdistill.students.neural import NeuralStudent
from bertdistill.students.tokens import PAD
from bertdistill.teacher import backbones, pretrained


class MiniTransformerModule(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.model = backbones.build(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class MiniBertStudent(NeuralStudent):
    kind = "minibert"

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        """The source's family is supported and deep enough, and the student uses its tokenizer."""
        if config.neural.tokenizer != "teacher":
            raise BertdistillError(f"student '{cls.kind}' needs students.neural.tokenizer = 'teacher'")
        source = cls.source_of(config.neural, teacher)
        layers, available = config.neural.transformer_layers, backbones.depth(backbones.read_config(source))
        if layers > available:
            raise BertdistillError(f"students.neural.transformer_layers = {layers}, but "
                                   f"{config.neural.transformer_source} ({source}) has {available} layers")
        super().check(config, task, teacher)

    @staticmethod
    def source_of(config: NeuralConfig, teacher: str | Path) -> str:
        """The folder (or hub name) the layers come from: the teacher's, or transformer_source's."""
        if config.transformer_source == "teacher":
            return str(teacher)
        return pretrained.resolve(config.transformer_source)

    def token_source(self, teacher_folder: Path) -> Path:
        return Path(self.source_of(self.config.neural, teacher_folder))

    def learning_rates(self) -> tuple[float, ...]:
        return (self.config.neural.transformer_learning_rate,)

    def architecture(self, table_dim: int, config: NeuralConfig, source: Path) -> dict:
        total = backbones.depth(backbones.read_config(source))
        layers = backbones.evenly_spaced(total, config.transformer_layers)
        if config.transformer_source != "teacher":
            layers = list(range(config.transformer_layers))  # a well-read student keeps the bottom layers
        model_config = backbones.student_config(source, len(layers), self.encoder_.vocab_size, PAD,
                                                len(self.label_names_))
        return {"model_config": model_config, "source_layers": layers}

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        return MiniTransformerModule(arch["model_config"])

    def embedding_table(self, module: nn.Module) -> nn.Embedding:
        return module.model.get_input_embeddings()

    def initialise(self, module: nn.Module, source: Path, kept: np.ndarray, train_ids: list[np.ndarray]) -> None:
        """Copy embeddings (kept rows) and the chosen layers; a head the source lacks stays as initialised."""
        backbones.copy_layers(module.model, source, self.arch_["source_layers"], kept)


class DistilledMiniBertStudent(MiniBertStudent):
    kind = "minibert-kd"
    role = "distilled"
    twin = "minibert"
