"""Mini-transformer student: k transformer layers copied from a pretrained encoder (DistilBERT-style init).

The layers, embeddings and tokenizer come from `students.neural.transformer_source`: the teacher itself (its
evenly spaced layers, first and last included), or another pretrained model such as all-MiniLM-L6-v2 (`minilm`),
whose first layers make a "well-read student" (Turc et al. 2019). Any family the backbone adapters know works
(BERT, MPNet, RoBERTa, DeBERTa-v2, DistilBERT, ELECTRA); the vocabulary is pruned to the ids seen in training.
`minibert-full(-kd)` is the whole source encoder, every layer: the slower, closer well-read student.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bertdistill.config import NeuralConfig, StudentsConfig
from bertdistill.core import files
from bertdistill.core.training import parameter_groups
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer
from bertdistill.students import load_student
from bertdistill.students.base import TrainingData
from bertdistill.students.layer_distillation import LayerDistillation, check_assistant, is_student
from bertdistill.students.neural import NeuralStudent
from bertdistill.students.tokens import PAD
from bertdistill.teacher import backbones, pretrained


class MiniTransformerModule(nn.Module):
    mask_optional = True  # attention_mask=None: no padding, and no mask built (neural.OneText)

    def __init__(self, config: dict):
        super().__init__()
        self.model = backbones.build(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class MiniBertStudent(NeuralStudent):
    kind = "minibert"
    config_fields = (*NeuralStudent.config_fields, "transformer_layer_choice", "transformer_epochs",
                     "transformer_head_learning_rate")

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        """The source's family is supported and deep enough, and the student uses its tokenizer."""
        if config.neural.tokenizer != "teacher":
            raise BertdistillError(f"student '{cls.kind}' needs students.neural.tokenizer = 'teacher'")
        cls.check_depth(config, cls.source_of(config.neural, teacher))
        super().check(config, task, teacher)

    @classmethod
    def check_depth(cls, config: StudentsConfig, source: str) -> None:
        """transformer_layers, and the assistant of a distilled student, fit the source model (its folder)."""
        model_config = backbones.read_config(source)
        layers, available = config.neural.transformer_layers, backbones.depth(model_config)
        if layers > available:
            raise BertdistillError(f"students.neural.transformer_layers = {layers}, but "
                                   f"{config.neural.transformer_source} ({source}) has {available} layers")
        assistant = config.transformer_assistant
        if cls.role == "distilled" and isinstance(assistant, int) and not layers < assistant <= available:
            raise BertdistillError(f"students.transformer_assistant = {assistant}: an assistant trained here needs "
                                   f"more layers than the student's {layers} and at most {available}")
        if cls.role == "distilled" and isinstance(assistant, str):
            check_assistant(assistant, layers, backbones.width(model_config))

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

    def epochs(self) -> int:
        return self.config.transformer_epochs or self.config.neural.epochs

    def parameter_groups(self, module: nn.Module) -> list[dict]:
        return parameter_groups(module.model, self.config.transformer_head_learning_rate)

    def copied_layers(self, config: NeuralConfig, total: int) -> list[int]:
        """Which of the source's `total` layers the student copies, bottom first."""
        return source_layers(config, self.config.transformer_layer_choice, total)

    def architecture(self, table_dim: int, config: NeuralConfig, source: Path) -> dict:
        layers = self.copied_layers(config, backbones.depth(backbones.read_config(source)))
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
    config_fields = (*MiniBertStudent.config_fields, "transformer_assistant", "transformer_assistant_weight")

    assistant_ = None  # while training: the assistant whose layers the student learns

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None):
        """Train (first the assistant, when this student trains its own: resumable, in `checkpoint_dir`)."""
        assistant = self.config.transformer_assistant
        # an assistant trained here shares the checkpoint folder: the student's own checkpoints go one level down
        shared_folder = isinstance(assistant, int) and checkpoint_dir is not None
        if isinstance(assistant, int):
            self.assistant_ = self._train_assistant(assistant, data, val_texts, val_labels, scorer, checkpoint_dir)
        elif assistant is not None and is_student(assistant):
            self.assistant_ = load_student(Path(assistant))
        elif assistant is not None:
            self.assistant_ = self.pretrained_assistant(assistant, data)
        own = checkpoint_dir / "student" if shared_folder else checkpoint_dir
        super().fit(data, val_texts, val_labels, scorer, own)
        self.assistant_ = None
        if shared_folder:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return self

    def _train_assistant(self, layers: int, data: TrainingData, val_texts: list[str], val_labels: np.ndarray,
                         scorer: Scorer, checkpoint_dir: Path | None) -> "DistilledMiniBertStudent":
        """A `minibert-kd` of `layers` layers with this student's settings; kept in `checkpoint_dir` once trained,
        so that an interrupted student resumes without training it again."""
        folder = None if checkpoint_dir is None else checkpoint_dir / f"assistant-{layers}"
        if folder is not None and (folder / "bertdistill.json").exists():
            print(f"{self.kind}: the {layers}-layer assistant trained before ({folder})")
            return load_student(folder)
        neural = self.config.neural.model_copy(update={"transformer_layers": layers})
        assistant = DistilledMiniBertStudent(self.config.model_copy(update={"neural": neural,
                                                                            "transformer_assistant": None}))
        assistant.kind = f"{self.kind} (its {layers}-layer assistant)"  # progress bars and checkpoints say so
        assistant.fit(data, val_texts, val_labels, scorer,
                      None if checkpoint_dir is None else checkpoint_dir / f"assistant-{layers}.checkpoint")
        assistant.kind = DistilledMiniBertStudent.kind
        if folder is not None:
            files.publish_dir(folder, assistant.save)
        return assistant

    def pretrained_assistant(self, source: str, data: TrainingData) -> MiniBertStudent:
        """Every layer of a pretrained encoder (an alias such as `minilm`, or a model folder) as it is, untrained:
        an assistant that costs no training, whose general-purpose hidden states the student keeps close to."""
        depth = backbones.depth(backbones.read_config(pretrained.resolve(source)))
        neural = self.config.neural.model_copy(update={"transformer_source": source, "transformer_layers": depth})
        assistant = MiniBertStudent(self.config.model_copy(update={"neural": neural,
                                                                    "transformer_layer_choice": "bottom"}))
        assistant.prepare(data)
        return assistant

    def guide(self, data: TrainingData, train_ids: list[np.ndarray], device: torch.device):
        """With an assistant, the layer-wise loss against it too (students/layer_distillation.py); the hard-label
        twin never has one."""
        if self.assistant_ is None:
            return None
        return LayerDistillation(self.assistant_, data.texts, train_ids, self.config.neural.transformer_layers,
                                 self.config.transformer_assistant_weight, device)


class FullMiniBertStudent(MiniBertStudent):
    """The whole source encoder, every layer (all six of all-MiniLM-L6-v2's): a well-read student at full depth
    (Turc et al. 2019), for when a few milliseconds per text are affordable (1/20 to 1/40 of a base teacher's time
    in int8). The closest a student gets to the teacher; `minibert` and `minibert-kd` trade some of that for 1/100.
    `transformer_layers`, `transformer_layer_choice` and the assistant do not apply (nothing deeper to learn from);
    `transformer_epochs` does. The hard-label twin is the source fine-tuned on gold labels alone."""
    kind = "minibert-full"
    config_fields = (*NeuralStudent.config_fields, "transformer_epochs", "transformer_head_learning_rate")

    @classmethod
    def check_depth(cls, config: StudentsConfig, source: str) -> None:
        """Any depth fits; the source must still be a model of a supported family."""
        backbones.depth(backbones.read_config(source))

    def copied_layers(self, config: NeuralConfig, total: int) -> list[int]:
        return list(range(total))


class DistilledFullMiniBertStudent(FullMiniBertStudent):
    kind = "minibert-full-kd"
    role = "distilled"
    twin = "minibert-full"


def source_layers(config: NeuralConfig, choice: str, total: int) -> list[int]:
    """The indices of the source's layers the student copies, bottom first (StudentsConfig.transformer_layer_choice)."""
    if choice == "auto":
        choice = "spread" if config.transformer_source == "teacher" else "bottom"
    if choice == "bottom":
        return list(range(config.transformer_layers))
    return backbones.evenly_spaced(total, config.transformer_layers)
