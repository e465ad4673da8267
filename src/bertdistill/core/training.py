"""The optimisation step the teacher and the neural students share: AdamW, a linear warmup-then-decay schedule,
gradient clipping and (optionally) bf16 autocast; the settings come from each one's config section.

Both loops (teacher/model.py, students/neural.py) keep what differs between them: what a batch is, the loss,
when to score val and checkpoint. What a step does, and how its state is saved to resume, lives here once.
"""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup

from bertdistill.core.checkpoint import load_optimizer, save_optimizer


class Optimization:
    """`parameters`: the tensors to train, or AdamW parameter groups (dicts with "params" and, where it differs
    from `learning_rate`, their own "lr"); the schedule scales every group's learning rate alike."""

    def __init__(self, parameters, learning_rate: float, weight_decay: float, warmup_ratio: float,
                 total_steps: int, max_grad_norm: float, device: torch.device, bf16: bool):
        groups = list(parameters)
        groups = groups if groups and isinstance(groups[0], dict) else [{"params": groups}]
        groups = [{**group, "params": [p for p in group["params"] if p.requires_grad]} for group in groups]
        self.parameters = [p for group in groups for p in group["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=learning_rate, weight_decay=weight_decay,
                                           fused=True)  # one kernel per step instead of a loop over tensors
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(warmup_ratio * total_steps),
                                                         total_steps)
        self.max_grad_norm, self.device, self.bf16 = max_grad_norm, device, bf16

    def autocast(self):
        """The forward pass's arithmetic: bf16 autocast when asked for (weights and gradients stay fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def step(self, loss: torch.Tensor) -> None:
        """Backpropagate `loss`, clip the gradient norm, update the weights and the learning rate."""
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, folder: Path) -> None:
        save_optimizer(self.optimizer, self.scheduler, folder)

    def load(self, folder: Path) -> None:
        load_optimizer(self.optimizer, self.scheduler, folder)


def parameter_groups(model, head_learning_rate: float | None) -> list[dict]:
    """A Hugging Face model's pretrained encoder parameters and its classification head's (those outside the
    encoder, i.e. not under the model's `base_model_prefix`); the head gets `head_learning_rate` where one is set.
    A fresh head trained at an encoder's small rate hardly moves, and the encoder bends to it instead: rare labels
    suffer most (Jigsaw's threat and identity_hate, benchmarks/NOTES.md)."""
    prefix = model.base_model_prefix + "."
    encoder = [p for name, p in model.named_parameters() if name.startswith(prefix)]
    head = [p for name, p in model.named_parameters() if not name.startswith(prefix)]
    if head_learning_rate is None:
        return [{"params": encoder + head}]
    return [{"params": encoder}, {"params": head, "lr": head_learning_rate}]


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether training runs under bf16 autocast: 'bf16' anywhere, 'auto' on CUDA; weights stay fp32."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")
