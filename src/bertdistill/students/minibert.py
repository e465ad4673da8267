"""Mini-BERT student: 1-2 transformer layers initialised from the teacher's own (DistilBERT-style init).

It shows where a transformer student sits on the quality-latency curve. The teacher must be a BERT-architecture
model (as all-MiniLM-L6-v2 and bert-base are); its embeddings, evenly spaced layers, pooler and classifier are
copied, with the vocabulary pruned to the WordPiece ids seen in training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from .. import io
from ..config import NeuralConfig, StudentsConfig
from ..errors import BertdistillError
from .neural import NeuralStudent, teacher_tensors


class MiniBertModule(nn.Module):
    def __init__(self, bert_config: dict, vocab_size: int, num_labels: int):
        super().__init__()
        config = BertConfig(**{**bert_config, "vocab_size": vocab_size, "num_labels": num_labels})
        self.model = BertForSequenceClassification(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def chosen_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced teacher layers, first and last included (6 -> 2 gives [0, 5])."""
    return sorted({int(round(i)) for i in np.linspace(0, teacher_layers - 1, student_layers)})


class MiniBertStudent(NeuralStudent):
    kind = "minibert"

    @classmethod
    def check(cls, config: StudentsConfig, task: str) -> None:
        if config.neural.tokenizer != "teacher":
            raise BertdistillError(f"student '{cls.kind}' needs students.neural.tokenizer = 'teacher'")
        super().check(config, task)

    def learning_rate(self) -> float:
        return self.config.neural.transformer_learning_rate

    def architecture(self, table_dim: int, config: NeuralConfig, teacher_folder: Path) -> dict:
        teacher = io.read_json(Path(teacher_folder) / "config.json")
        if teacher.get("model_type") != "bert":
            raise BertdistillError(f"student '{self.kind}' copies BERT layers; the teacher is "
                                   f"{teacher.get('model_type')!r}")
        layers = chosen_layers(teacher["num_hidden_layers"], min(config.transformer_layers,
                                                                 teacher["num_hidden_layers"]))
        keys = ("hidden_size", "num_attention_heads", "intermediate_size", "hidden_act", "max_position_embeddings",
                "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob")
        bert = {key: teacher[key] for key in keys if key in teacher}
        return {"bert_config": {**bert, "num_hidden_layers": len(layers)}, "teacher_layers": layers}

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        return MiniBertModule(arch["bert_config"], vocab_size, num_labels)

    def embedding_table(self, module: nn.Module) -> nn.Embedding:
        return module.model.bert.embeddings.word_embeddings

    def initialise(self, module: nn.Module, teacher_folder: Path, kept: np.ndarray) -> None:
        """Copy embeddings (kept rows), the chosen layers, pooler and (if shapes match) classifier."""
        source = teacher_tensors(teacher_folder, suffixes=())
        layer_of = {teacher: student for student, teacher in enumerate(self.arch_["teacher_layers"])}
        target = module.model.state_dict()
        copied = {}
        for name, tensor in source.items():
            key = _student_key(name)
            if ".encoder.layer." in key:
                index = int(key.split(".encoder.layer.")[1].split(".")[0])
                if index not in layer_of:
                    continue
                key = key.replace(f".encoder.layer.{index}.", f".encoder.layer.{layer_of[index]}.")
            if key.endswith("word_embeddings.weight"):
                tensor = tensor[torch.as_tensor(kept)]
            if key in target and target[key].shape == tensor.shape:
                copied[key] = tensor
        module.model.load_state_dict(copied, strict=False)


def _student_key(name: str) -> str:
    """A teacher tensor name in BertForSequenceClassification terms ("bert.encoder..." / "classifier...")."""
    if "bert." in name:
        return "bert." + name.split("bert.", 1)[1]
    return "bert." + name if name.startswith(("embeddings.", "encoder.", "pooler.")) else name


class DistilledMiniBertStudent(MiniBertStudent):
    kind = "minibert-kd"
    role = "distilled"
    twin = "minibert"
