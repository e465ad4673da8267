"""Static-embedding student: a token table distilled from a transformer, averaged, then a small head.

After Model2Vec (MinishLab 2024): every vocabulary token the training texts use is passed through the source
encoder on its own (`[CLS] token [SEP]`) and its output vector kept; PCA takes the table to
`students.neural.static_width`; a text is the SIF-weighted mean (Arora et al. 2017: a / (a + p(token)), p from the
training texts) of its tokens' vectors, and a head gives the logits: one ReLU layer of `students.static_hidden`
units then the output layer, as Model2Vec's own classifier (a deep averaging network, Iyyer et al. 2015), or
linear (0). Table and head are then trained, on
gold labels (`static`) or on the teacher's soft targets over the whole transfer set (`static-kd`: what Model2Vec's
own classifier cannot do). The source is the fine-tuned teacher's encoder by default
(`students.neural.static_source`), or a pretrained model such as `minilm`.

Inference needs no PyTorch: the tokenizer (the Rust one for a batch; for one text, the same ids from wordpiece.py's
cached Python path where it applies), then, with the head's first layer folded into the table, a gather, a sum and
one small product in numpy, for one text or a batch; tests hold it to the PyTorch module's probabilities.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bertdistill.config import NeuralConfig, StudentsConfig
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import probabilities
from bertdistill.students import folded_static
from bertdistill.students.neural import NeuralStudent
from bertdistill.students.tokens import PAD
from bertdistill.teacher import backbones, pretrained

SIF_A = 1e-3  # Arora et al.'s smoothing: tokens much more frequent than this weigh little


class StaticModule(nn.Module):
    def __init__(self, vocab_size: int, width: int, num_labels: int, hidden: int = 0):
        super().__init__()
        self.table = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.register_buffer("weights", torch.ones(vocab_size))  # SIF weight per token, fixed
        self.hidden = nn.Linear(width, hidden) if hidden else None
        self.output = nn.Linear(hidden or width, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        weights = self.weights[input_ids] * attention_mask  # (n, length)
        total = (self.table(input_ids) * weights.unsqueeze(-1)).sum(1)
        mean = total / weights.sum(1, keepdim=True).clamp(min=1e-9)
        return self.output(mean if self.hidden is None else torch.relu(self.hidden(mean)))


class StaticStudent(NeuralStudent):
    kind = "static"
    config_fields = (*NeuralStudent.config_fields, "static_learning_rates", "static_hidden")

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        """The source is a supported encoder at least as wide as the table, and the student uses its tokenizer."""
        if config.neural.tokenizer != "teacher":
            raise BertdistillError(f"student '{cls.kind}' needs students.neural.tokenizer = 'teacher'")
        source = cls.source_of(config.neural, teacher)
        hidden = backbones.width(backbones.read_config(source))
        if config.neural.static_width > hidden:
            raise BertdistillError(f"students.neural.static_width = {config.neural.static_width} is wider than "
                                   f"{config.neural.static_source} ({source}), whose vectors have {hidden}")
        super().check(config, task, teacher)

    @staticmethod
    def source_of(config: NeuralConfig, teacher: str | Path) -> str:
        return str(teacher) if config.static_source == "teacher" else pretrained.resolve(config.static_source)

    def token_source(self, teacher_folder: Path) -> Path:
        return Path(self.source_of(self.config.neural, teacher_folder))

    def architecture(self, table_dim: int, config: NeuralConfig, source: Path | None) -> dict:
        return {"width": config.static_width, "source": config.static_source, "hidden": self.config.static_hidden}

    def learning_rates(self) -> tuple[float, ...]:
        return tuple(self.config.static_learning_rates)

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        return StaticModule(vocab_size, arch["width"], num_labels, arch.get("hidden", 0))  # saved before: linear

    def embedding_table(self, module: nn.Module) -> nn.Embedding:
        return module.table

    def initialise(self, module: nn.Module, source: Path, kept: np.ndarray, train_ids: list[np.ndarray]) -> None:
        """The distilled table (source encoder outputs of each kept token, PCA) and SIF weights from train_ids."""
        vectors = token_vectors(source, kept)
        table = pca(vectors[1:], module.table.embedding_dim)  # row 0 is padding: it stays zero
        counts = Counter(int(i) for ids in train_ids for i in ids)
        total = max(sum(counts.values()), 1)
        weights = np.array([SIF_A / (SIF_A + counts.get(i, 0) / total) for i in range(len(kept))], dtype=np.float32)
        with torch.no_grad():
            module.table.weight[1:] = torch.from_numpy(table)
            module.table.weight[PAD] = 0
            module.weights.copy_(torch.from_numpy(weights))

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        """Numpy all the way, for one text as for many: a gather and a sum of the folded rows (`folded_arrays`),
        then at most one small matrix product; no PyTorch call."""
        if self.numpy_ is None:
            self.numpy_ = folded_arrays(self.module_)
        rows = [folded_static.logits(*self.numpy_, ids) for ids in self.encoder_.encode(texts)]
        if len(rows) == 1:  # one text, a served request: no array to fill
            return rows[0][None]
        return np.stack(rows) if rows else np.empty((0, len(self.label_names_)), dtype=np.float32)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task_)


def numpy_weights(module: StaticModule) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The (vocab, width) table with each row times its SIF weight, the SIF weights, and the head's linear layers
    in order as (coef (in, out), bias (out,)), a ReLU between consecutive ones; float32."""
    def array(tensor: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)

    weights = array(module.weights)
    linears = [layer for layer in (module.hidden, module.output) if layer is not None]
    return (array(module.table.weight) * weights[:, None], weights,
            [(array(layer.weight.T), array(layer.bias)) for layer in linears])


def folded_arrays(module: StaticModule) -> tuple[np.ndarray, np.ndarray | None]:
    """The module's table and head folded for numpy inference (`folded_static.fold`)."""
    return folded_static.fold(*numpy_weights(module))


@torch.inference_mode()
def token_vectors(source: Path, kept: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(len(kept), hidden) float32: each token id passed alone between the source's special tokens, the encoder's
    output at its position."""
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source).eval()
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    out = np.empty((len(kept), model.config.hidden_size), dtype=np.float32)
    for start in tqdm(range(0, len(kept), batch_size), desc="static table", unit="batch"):
        ids = torch.as_tensor(kept[start:start + batch_size])
        batch = torch.stack([torch.full_like(ids, first), ids, torch.full_like(ids, last)], dim=1)
        out[start:start + len(ids)] = model(input_ids=batch, attention_mask=torch.ones_like(batch)
                                            ).last_hidden_state[:, 1].float().numpy()
    return out


def pca(vectors: np.ndarray, width: int) -> np.ndarray:
    """Vectors projected on their `width` principal components (centered), float32."""
    from sklearn.decomposition import PCA

    return PCA(n_components=width, random_state=0).fit_transform(vectors).astype(np.float32)


class DistilledStaticStudent(StaticStudent):
    kind = "static-kd"
    role = "distilled"
    twin = "static"
