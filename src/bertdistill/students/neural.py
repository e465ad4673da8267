"""What every PyTorch student shares: tokens, a teacher-initialised embedding table, the training loop, I/O.

A family module only defines its `nn.Module` (`build`) and the shape it records (`architecture`); this base
class trains it with early stopping on val, checkpoints every epoch (an interrupted fit resumes), and saves
it as safetensors + JSON. The hard-label baseline and the distilled variant of a family differ only in the loss.
A single text (a served request, the latency column) runs through ONNX Runtime: the module is exported once,
in memory, on the first such call; batches run through PyTorch, whose padding masks each family handles.
"""
from __future__ import annotations

import shutil
import warnings
from io import BytesIO
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from tqdm.auto import tqdm

from bertdistill.config import NeuralConfig, StudentsConfig
from bertdistill.core import files
from bertdistill.core.batching import length_grouped_batches, pad_batch, predict_in_length_order
from bertdistill.core.training import Optimization, uses_bf16
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer, probabilities
from bertdistill.names import is_multilabel
from bertdistill.students.base import TrainingData, read_header, require, write_header
from bertdistill.students.losses import DistillationLoss, LossConfig
from bertdistill.students.tokens import PAD, SubwordEncoder, WordEncoder, load_encoder
from bertdistill.teacher import backbones
from bertdistill.teacher.model import choose_device
from bertdistill.teacher.onnx_export import OPSET


class Embedder(nn.Module):
    """Token ids -> vectors: a table (teacher-initialised for WordPiece) and an optional projection."""

    def __init__(self, vocab_size: int, table_dim: int, out_dim: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, table_dim, padding_idx=PAD)
        self.projection = nn.Linear(table_dim, out_dim, bias=False) if out_dim != table_dim else None
        self.out_dim = out_dim

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        vectors = self.table(input_ids)  # (n, length, table_dim)
        return vectors if self.projection is None else self.projection(vectors)


class NeuralStudent:
    """Base of the PyTorch students; subclasses set `kind` and implement `build` and `architecture`."""

    kind: ClassVar[str]
    role: ClassVar[str] = "baseline"
    twin: ClassVar[str | None] = None
    config_fields: ClassVar[tuple[str, ...]] = ("seed", "neural")
    family: ClassVar[str] = "neural"
    derived_from: ClassVar[str | None] = None
    shippable: ClassVar[bool] = True
    session_ = None  # ONNX Runtime session for single texts, built on first use
    numpy_ = None  # families that predict in numpy: their arrays, built on first use

    def __init__(self, config: StudentsConfig | None = None):
        self.config = config or StudentsConfig()

    # -- what a family defines -------------------------------------------------------------------------------
    def architecture(self, table_dim: int, config: NeuralConfig, source: Path | None) -> dict:
        """JSON-able shape of the module (saved, and passed back to `build` on load)."""
        raise NotImplementedError

    def build(self, arch: dict, vocab_size: int, num_labels: int) -> nn.Module:
        """The module, `forward(input_ids, attention_mask) -> (n, k) logits`."""
        raise NotImplementedError

    def initialise(self, module: nn.Module, source: Path, kept: np.ndarray, train_ids: list[np.ndarray]) -> None:
        """Copy the source model's input embeddings of the kept token ids into the student's table (`train_ids`:
        the encoded training texts, for families that derive more from them)."""
        table = backbones.input_embeddings(source)
        with torch.no_grad():
            self.embedding_table(module).weight.copy_(table[torch.as_tensor(kept)])

    def token_source(self, teacher_folder: Path) -> Path:
        """The model whose tokenizer and input embeddings the student starts from (tokenizer = "teacher")."""
        return teacher_folder

    def embedding_table(self, module: nn.Module) -> nn.Embedding:
        return module.embedder.table

    def guide(self, data: TrainingData, train_ids: list[np.ndarray], device: torch.device):
        """None, or a callable `(module, batch, rows) -> (logits, extra loss)` that replaces the plain forward pass
        in training (a family that learns more than the teacher's logits, such as another model's layers)."""
        return None

    def learning_rates(self) -> tuple[float, ...]:
        """The learning rates to train with; with more than one, each is trained and the best on val is kept."""
        return (self.config.neural.learning_rate,)

    def epochs(self) -> int:
        """The most epochs to train for (early stopping may end training sooner)."""
        return self.config.neural.epochs

    def parameter_groups(self, module: nn.Module) -> list[dict]:
        """What AdamW trains, as parameter groups (one, at the training rate, unless a family splits them)."""
        return [{"params": list(module.parameters())}]

    # -- the protocol ----------------------------------------------------------------------------------------
    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        """Fail before any training if the configured loss does not fit the task."""
        DistillationLoss(cls.loss_config(config.neural, task), task)

    @classmethod
    def loss_config(cls, config: NeuralConfig, task: str) -> LossConfig:
        if cls.role == "baseline":
            return LossConfig(kind="hard")
        # Hinton's weighted mix of soft (T = 2) and gold targets, the gold part on labelled rows only; pure
        # distillation is `alpha = 1`. No loss stands out on train texts alone (the emotion ablation in
        # benchmarks/results/archive-minilm-teacher-2026-11.md): the gain comes from a larger transfer set
        return config.loss or LossConfig(kind="kl" if not is_multilabel(task) else "soft_bce", alpha=0.5)

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None):
        config = self.config.neural
        loss = DistillationLoss(self.loss_config(config, data.task), data.task)
        if loss.needs_teacher:
            require(data, "teacher_logits", self.kind)
        if loss.needs_labels:
            require(data, "labels", self.kind)
        torch.manual_seed(self.config.seed)
        train_ids = self.prepare(data)
        if config.freeze_embeddings:
            self.embedding_table(self.module_).weight.requires_grad_(False)
        rate, tried = self._train_each_rate(loss, scorer, checkpoint_dir, data, train_ids,
                                            self.encoder_.encode(val_texts), val_labels)
        self.params_ = {"loss": loss.config.model_dump(), "learning_rate": rate,
                        **({"val_by_learning_rate": tried} if len(tried) > 1 else {}),
                        "epochs_trained": len(self.history_), "seed": self.config.seed, **self.arch_}
        return self

    def prepare(self, data: TrainingData) -> list[np.ndarray]:
        """The tokenizer fitted to the training texts and the module built and initialised from its source, before
        any training; returns the training texts' ids."""
        config = self.config.neural
        self.task_, self.label_names_ = data.task, list(data.label_names)
        source = None
        if config.tokenizer == "word":
            self.encoder_ = WordEncoder.fit(data.texts, config.vocab_size, config.max_length)
            table_dim = config.embedding_dim or 300
        else:
            source = self.token_source(Path(require(data, "teacher_folder", self.kind)))
            self.encoder_ = SubwordEncoder.fit(source, data.texts, config.max_length)
            table_dim = backbones.input_embeddings(source).shape[1]
        self.arch_ = self.architecture(table_dim, config, source)
        self.module_ = self.build(self.arch_, self.encoder_.vocab_size, len(self.label_names_))
        self.session_ = self.numpy_ = None
        train_ids = self.encoder_.encode(data.texts)
        if config.tokenizer == "teacher":
            self.initialise(self.module_, source, self.encoder_.kept, train_ids)
        return train_ids

    def _train_each_rate(self, loss: DistillationLoss, scorer: Scorer, checkpoint_dir: Path | None,
                         data: TrainingData, train_ids: list[np.ndarray], val_ids: list[np.ndarray],
                         val_labels: np.ndarray) -> tuple[float, dict[str, float]]:
        """Train the initialised module from the same start at each learning rate, keep the best on val;
        returns that rate and every rate's val score. Each rate checkpoints in its own folder until all are done."""
        rates = self.learning_rates()
        start = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
        best, tried = None, {}
        for rate in rates:
            self.module_.load_state_dict(start)
            folder = checkpoint_dir if checkpoint_dir is None or len(rates) == 1 else checkpoint_dir / f"lr-{rate:g}"
            history, score = TrainingLoop(self, loss, scorer, folder, rate).run(data, train_ids, val_ids, val_labels)
            tried[f"{rate:g}"] = score
            if best is None or score > best[1]:
                best = rate, score, history, {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
        rate, self.val_score_, self.history_, state = best
        self.module_.load_state_dict(state)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return rate, tried

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        encoded = self.encoder_.encode(texts)
        if len(encoded) == 1:
            return self._onnx_session().logits(encoded[0])
        self.module_.eval()
        with torch.inference_mode():
            return predict_ids(self.module_, encoded, torch.device("cpu"))

    def _onnx_session(self):
        """ONNX Runtime session for one text of any length, exported from the current module on first use."""
        if self.session_ is None:
            self.session_ = onnx_session(self.module_)
        return self.session_

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task_)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.module_.parameters())

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder_.save(folder)
        save_model(self.module_.cpu(), str(folder / "model.safetensors"))
        write_header(folder, self.kind, self.task_, self.label_names_, arch=self.arch_, params=self.params_,
                     val_score=self.val_score_, history=self.history_)

    @classmethod
    def load(cls, folder: Path):
        header = read_header(folder)
        student = cls()
        student.encoder_ = load_encoder(folder)
        student.task_, student.label_names_ = header["task"], header["label_names"]
        student.arch_, student.params_ = header["arch"], header["params"]
        student.val_score_, student.history_ = header["val_score"], header["history"]
        student.module_ = student.build(student.arch_, student.encoder_.vocab_size, len(student.label_names_))
        load_model(student.module_, str(Path(folder) / "model.safetensors"))
        student.module_.eval()
        return student


class OneText(nn.Module):
    """The module as its one-text graph computes it: the ids of one unpadded text in, logits out. Such a text needs
    no attention mask, so a family whose module takes `attention_mask=None` (`mask_optional`) gets none: a
    mini-transformer then builds no mask, ~40 small graph operators (~45 µs a tweet at 1 thread) fewer."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = None if getattr(self.module, "mask_optional", False) else torch.ones_like(input_ids)
        return self.module(input_ids, mask)


def export_onnx(module: nn.Module, target) -> None:
    """Write the module (eval mode, CPU) to `target` (a path or a binary buffer) as an ONNX graph for a batch of
    one unpadded text of any length: input_ids (1, length) -> logits (1, k)."""
    module = module.cpu().eval()
    ids = torch.ones(1, 8, dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(OneText(module), (ids,), target, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "length"}}, opset_version=OPSET, dynamo=False)


class OneTextSession:
    """An ONNX Runtime session on a one-text graph, at one intra-op thread: for a model this small, a single text
    gains nothing from more and pays their synchronisation. Logits match PyTorch's to ~1e-6
    (tests/test_students.py checks every family). Graphs saved before 2026-11-30 also take an attention_mask,
    all ones for one text: fed when the graph has that input."""

    def __init__(self, model):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.masked = "attention_mask" in {graph_input.name for graph_input in self.session.get_inputs()}

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """(1, k) logits of one text's (length,) ids."""
        return self.session.run(None, one_text_feed(ids, self.masked))[0]


def one_text_feed(ids: np.ndarray, masked: bool = False) -> dict[str, np.ndarray]:
    """A one-text graph's inputs for one text's (length,) ids (`masked`: a graph that also takes attention_mask)."""
    ids = ids[None, :]
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)} if masked else {"input_ids": ids}


def onnx_session(model) -> OneTextSession:
    """A session for a module (exported in memory) or serialized ONNX bytes."""
    if isinstance(model, nn.Module):
        buffer = BytesIO()
        export_onnx(model, buffer)
        model = buffer.getvalue()
    return OneTextSession(model)


def predict_ids(module: nn.Module, encoded: list[np.ndarray], device: torch.device,
                batch_size: int = 256) -> np.ndarray:
    """(n, k) logits for encoded texts, batched by length; a single text skips the batching machinery."""
    if len(encoded) == 1:
        ids = torch.as_tensor(encoded[0], device=device).unsqueeze(0)
        return module(ids, torch.ones_like(ids)).float().cpu().numpy()
    return predict_in_length_order(encoded, batch_size,
                                   lambda sequences: module(**pad_batch(sequences, PAD, device)).float().cpu().numpy())


class TrainingLoop:
    """AdamW with linear decay, early stopping on the val score, a resumable checkpoint after every epoch."""

    def __init__(self, student: NeuralStudent, loss: DistillationLoss, scorer: Scorer, folder: Path | None,
                 learning_rate: float):
        self.student, self.loss, self.scorer, self.folder = student, loss, scorer, folder
        self.learning_rate, self.epochs = learning_rate, student.epochs()
        self.config = student.config.neural
        self.device = choose_device(self.config.device)

    def run(self, data: TrainingData, train_ids: list[np.ndarray], val_ids: list[np.ndarray],
            val_labels: np.ndarray) -> tuple[list[dict], float]:
        module = self.student.module_.to(self.device)
        guide = self.student.guide(data, train_ids, self.device)
        steps_per_epoch = -(-len(train_ids) // self.config.batch_size)
        total = steps_per_epoch * self.epochs
        optimization = Optimization(self.student.parameter_groups(module), self.learning_rate,
                                    self.config.weight_decay, self.config.warmup_ratio, total,
                                    self.config.max_grad_norm, self.device,
                                    uses_bf16(self.config.precision, self.device))
        state = self._resume(module, optimization)
        labels = None if data.labels is None else torch.as_tensor(data.labels)
        teacher = None if data.teacher_logits is None else torch.as_tensor(data.teacher_logits, dtype=torch.float32)
        lengths = np.array([len(ids) for ids in train_ids])
        while not state["stopped"] and state["epoch"] < self.epochs:
            epoch = state["epoch"] + 1
            torch.manual_seed(self.student.config.seed + epoch)  # dropout, reproducible across a resume
            module.train()
            batches = length_grouped_batches(lengths, self.config.batch_size,
                                             np.random.default_rng(self.student.config.seed + epoch))
            losses = []
            for step, rows in enumerate(tqdm(batches, desc=f"{self.student.kind} epoch {epoch}", unit="batch",
                                             leave=False)):
                progress = ((epoch - 1) * steps_per_epoch + step) / total
                batch = pad_batch([train_ids[i] for i in rows], PAD, self.device)
                with optimization.autocast():
                    logits, extra = (module(**batch).float(), 0.0) if guide is None else guide(module, batch, rows)
                loss = extra + self.loss(logits, _rows(teacher, rows, self.device), _rows(labels, rows, self.device),
                                         progress)
                optimization.step(loss)
                losses.append(loss.item())
            self._end_epoch(state, epoch, float(np.mean(losses)), module, val_ids, val_labels)
            self._checkpoint(state, module, optimization)
        module.load_state_dict(state["best"])
        module.cpu().eval()
        return state["history"], state["best_score"]

    def _end_epoch(self, state: dict, epoch: int, train_loss: float, module: nn.Module,
                   val_ids: list[np.ndarray], val_labels: np.ndarray) -> None:
        module.eval()
        with torch.inference_mode():
            val_probs = probabilities(predict_ids(module, val_ids, self.device), self.loss.task)
        score = self.scorer.score(val_labels, val_probs)
        state["history"].append({"epoch": epoch, "train_loss": train_loss, "val_score": score})
        state["epoch"] = epoch
        if score > state["best_score"]:
            state.update(best_score=score, best_epoch=epoch, bad_epochs=0,
                         best={k: v.detach().cpu().clone() for k, v in module.state_dict().items()})
        else:
            state["bad_epochs"] += 1
            state["stopped"] = state["bad_epochs"] >= self.config.patience
        print(f"{self.student.kind} epoch {epoch}: loss {train_loss:.4f}, val {self.scorer.metric} {score:.4f}"
              + (" (early stop)" if state["stopped"] else ""))

    def _signature(self) -> dict:
        """What a checkpoint must match to resume: the family, its shape, every [students] setting it reads
        (`config_fields`: a head rate or an assistant as well as [students.neural]), the rate and epochs."""
        return {"kind": self.student.kind, "arch": self.student.arch_,
                "settings": self.student.config.settings(self.student.config_fields),
                "learning_rate": self.learning_rate, "epochs": self.epochs}

    def _checkpoint(self, state: dict, module, optimization: Optimization) -> None:
        if self.folder is None:
            return

        def build(staging: Path) -> None:
            save_model(module, str(staging / "last.safetensors"))
            save_file(state["best"], str(staging / "best.safetensors"))
            optimization.save(staging)
            files.write_json(staging / "progress.json", {
                "signature": self._signature(), **{k: v for k, v in state.items() if k != "best"}})

        files.publish_dir(self.folder, build)

    def _resume(self, module, optimization: Optimization) -> dict:
        fresh = {"epoch": 0, "best_score": -np.inf, "best_epoch": 0, "bad_epochs": 0, "stopped": False,
                 "history": [], "best": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}}
        if self.folder is None or not (self.folder / "progress.json").exists():
            return fresh
        progress = files.read_json(self.folder / "progress.json")
        if progress["signature"] != self._signature():
            raise BertdistillError(f"{self.folder}: checkpoint is from another architecture or configuration "
                                   f"({progress['signature']['kind']}); delete it to start over")
        load_model(module, str(self.folder / "last.safetensors"), device=str(self.device))
        optimization.load(self.folder)
        progress.pop("signature")
        print(f"{self.student.kind}: resuming after epoch {progress['epoch']}")
        return {**progress, "best": load_file(str(self.folder / "best.safetensors"))}


def _rows(tensor: torch.Tensor | None, rows: np.ndarray, device: torch.device) -> torch.Tensor | None:
    return None if tensor is None else tensor[torch.as_tensor(rows)].to(device)
