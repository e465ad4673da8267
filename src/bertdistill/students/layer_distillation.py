"""Layer-wise distillation from an assistant: a shallow mini-transformer learns a deeper one's hidden states.

The assistant is a deeper encoder with the same tokenizer and width: a trained mini-transformer student (say a
6-layer `minibert-kd` distilled from the base teacher; Mirzadeh et al. 2020's "teacher assistant"), or the
pretrained encoder the student's layers come from, untrained (all-MiniLM-L6-v2's six layers for a student built
on its bottom two: TinyBERT's general distillation, Jiao et al. 2020, at no training cost). Besides its usual loss
on the teacher's logits, the student's embedding output and each of its k layers are pulled towards the
assistant's embedding output and its layers round(i * N / k), i = 1..k (TinyBERT's uniform mapping), by the mean
squared error over real tokens. A big teacher with another tokenizer (MPNet's) cannot guide layers token by
token; an assistant that shares the student's tokens can.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from bertdistill.core.batching import pad_batch
from bertdistill.errors import BertdistillError
from bertdistill.students.base import read_header
from bertdistill.students.tokens import PAD
from bertdistill.teacher import backbones, pretrained


def is_student(setting: str) -> bool:
    """Whether `students.transformer_assistant` names a trained student's folder (else a pretrained encoder)."""
    return (Path(setting) / "bertdistill.json").exists()


def check_assistant(setting: str, layers: int, width: int) -> None:
    """Raise unless `setting` is a trained mini-transformer student or a pretrained encoder of a supported family,
    deeper than `layers` and `width` wide (its tokenizer is checked when the texts are encoded)."""
    if is_student(setting):
        header = read_header(Path(setting))
        if not header["kind"].startswith("minibert") or header["kind"].endswith("-int8"):
            raise BertdistillError(f"students.transformer_assistant = {setting}: a '{header['kind']}' student; the "
                                   "assistant must be a trained 'minibert' or 'minibert-kd' student or a pretrained "
                                   "encoder")
        config = header["arch"]["model_config"]
    else:
        config = backbones.read_config(pretrained.resolve(setting))
        backbones.family(config.get("model_type"), f"students.transformer_assistant = {setting}")
    depth, size = backbones.depth(config), backbones.width(config)
    if depth <= layers or size != width:
        raise BertdistillError(f"students.transformer_assistant = {setting}: {depth} layers x {size}; the assistant "
                               f"needs more layers than the student's {layers} and its width, {width}")


def layer_map(student_layers: int, assistant_layers: int) -> list[int]:
    """For hidden states 0..k of the student (0: the embeddings), the assistant's hidden state each one learns."""
    return [round(i * assistant_layers / student_layers) for i in range(student_layers + 1)]


def masked_mse(student: torch.Tensor, assistant: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between (n, length, d) hidden states over the tokens where `mask` (n, length) is 1."""
    per_token = (student.float() - assistant.float()).pow(2).mean(dim=-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


class LayerDistillation:
    """Per batch: the student's logits and the weighted hidden-state loss against the frozen assistant."""

    def __init__(self, assistant, texts: list[str], train_ids: list[np.ndarray], student_layers: int,
                 weight: float, device: torch.device):
        ids = assistant.encoder_.encode(texts)
        for row, (mine, theirs) in enumerate(zip(train_ids, ids)):
            if len(mine) != len(theirs):
                raise BertdistillError(f"students.transformer_assistant: text {row} is {len(theirs)} tokens for the "
                                       f"assistant and {len(mine)} for the student; both need the same tokenizer "
                                       "and max_length")
        self.assistant_ids, self.weight, self.device = ids, weight, device
        self.model = assistant.module_.model.to(device).eval().requires_grad_(False)
        self.targets = layer_map(student_layers, self.model.config.num_hidden_layers)

    def __call__(self, module: nn.Module, batch: dict, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        output = module.model(**batch, output_hidden_states=True)
        with torch.no_grad():
            guide = self.model(**pad_batch([self.assistant_ids[i] for i in rows], PAD, self.device),
                               output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].float()
        loss = torch.stack([masked_mse(mine, guide[target], mask)
                            for mine, target in zip(output.hidden_states, self.targets)]).mean()
        return output.logits.float(), self.weight * loss
