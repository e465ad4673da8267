"""The BERT teacher: fine-tune any Hugging Face encoder, checkpoint every epoch, resume, predict logits.

Multiclass uses softmax cross-entropy, multilabel a sigmoid BCE per label. The best epoch is chosen on val;
test is never looked at here. Batches are grouped by length and padded dynamically, which on a CPU roughly
halves the cost of an epoch of tweets.
"""
from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertdistill.config import TeacherConfig
from bertdistill.core import files
from bertdistill.core.batching import encode, length_grouped_batches, pad_batch, predict_in_length_order
from bertdistill.core.processes import Shard
from bertdistill.core.training import Optimization, parameter_groups, uses_bf16
from bertdistill.data import Dataset
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer, probabilities
from bertdistill.names import is_multilabel
from bertdistill.teacher import pretrained
from bertdistill.teacher.adoption import MODEL_FORMAT
from bertdistill.teacher.onnx_export import VARIANTS

transformers.logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here


def resolve_backbone(name: str) -> str:
    """An offline alias ('minilm', 'mpnet-base': see pretrained.py) as its folder; a hub name or folder as given."""
    return pretrained.resolve(name)


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
    """A fine-tuned teacher loaded for inference: raw strings in, logits or probabilities out. Its arithmetic is fp32
    on a CPU, bf16 autocast on CUDA or when asked for (`bf16`: 2.3x fp32's texts/s on this project's CPU with AMX)."""

    def __init__(self, folder: Path, device: str = "auto", bf16: bool = False):
        self.folder = Path(folder)
        meta_file = self.folder / "bertdistill.json"
        if not meta_file.exists():
            raise BertdistillError(f"{self.folder}: not a teacher saved by bertdistill (no bertdistill.json)")
        self.meta = files.read_json(meta_file)
        if self.meta.get("format") != MODEL_FORMAT:
            raise BertdistillError(f"{meta_file}: format {self.meta.get('format')!r} is not {MODEL_FORMAT!r}")
        self.task = self.meta["task"]
        self.label_names = self.meta["label_names"]
        self.max_length = self.meta["max_length"]
        self.columns = self.meta.get("label_columns")  # an adopted classifier's outputs in the data's label order
        self.device = choose_device(device)
        self.bf16 = bf16 or self.device.type == "cuda"
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.folder).to(self.device).eval()

    def in_bf16(self) -> "Teacher":
        """The same teacher predicting under bf16 autocast; the weights are shared, not loaded again."""
        twin = copy.copy(self)
        twin.bf16 = True
        return twin

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.inference_mode()
    def predict_logits(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """(n, k) float32 logits; texts are batched by length so little compute goes to padding."""
        def run(sequences: list) -> np.ndarray:
            batch = pad_batch(sequences, self.tokenizer.pad_token_id, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                out = self.model(**batch).logits.float().cpu().numpy()
            return out if self.columns is None else out[:, self.columns]

        encoded = encode(self.tokenizer, texts, self.max_length, self.meta.get("truncation", "head"))
        return predict_in_length_order(encoded, batch_size, run)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return probabilities(self.predict_logits(texts), self.task)


def fine_tune(dataset: Dataset, config: TeacherConfig, scorer: Scorer, out: Path, shard: Shard = Shard()) -> Path:
    """Fine-tune (or resume fine-tuning) into `out`; returns the folder of the best-on-val epoch.

    A checkpoint is written at every epoch's end (scored on val) and, within an epoch, every
    `config.checkpoint_minutes` of training (checkpoints/step/: weights, optimizer, scheduler and RNG state), so an
    interrupted run resumes where it was stopped and trains on exactly as if it had not been. Training stops early
    after `config.patience` epochs without a better val score.

    Under `accelerate launch` (`shard` of a DDP process group, see teacher_distributed.py) every process takes its
    share of each batch, DDP averages the gradients, so the steps are those of one process on the whole batch; the
    main process alone writes and scores the checkpoints.

    A finished run asked for more epochs than it trained (val still rising) goes on from its last epoch: the
    linear schedule then spans the new epoch count, so the learning rate climbs back to where that schedule is and
    decays to zero again; the ONNX exports of the previous weights are removed."""
    final = out / "model"
    if (final / "bertdistill.json").exists():
        if not _more_epochs_asked(out / "checkpoints", config):
            return final
        print(f"teacher: continuing the finished run to epoch {config.epochs} "
              f"(the learning-rate schedule now spans {config.epochs} epochs)")
        for folder in VARIANTS.values():
            shutil.rmtree(out / folder, ignore_errors=True)
    device = choose_device(config.device)
    tokenizer = load_tokenizer(config.backbone)
    model = _new_model(config, dataset, device)
    train_ids = encode(tokenizer, dataset.train.texts, config.max_length, config.truncation)
    lengths = np.array([len(ids) for ids in train_ids])
    steps_per_epoch = -(-len(train_ids) // config.batch_size)  # sets the schedule's length
    optimization = Optimization(parameter_groups(model, config.head_learning_rate), config.learning_rate,
                                config.weight_decay, config.warmup_ratio, steps_per_epoch * config.epochs,
                                config.max_grad_norm, device, uses_bf16(config.precision, device))
    epoch, done, scores = _resume(out / "checkpoints", model, optimization)
    weight = class_weights(dataset.train.labels, dataset.task, config.class_weights)
    weight = None if weight is None else weight.to(device)
    targets = torch.tensor(dataset.train.labels)
    forward = model if shard.world == 1 else torch.nn.parallel.DistributedDataParallel(model)
    while epoch <= config.epochs and not _stalled(scores, config.patience):
        batches = _epoch_batches(lengths, config, epoch, shard)
        if done == 0:
            torch.manual_seed(config.seed + epoch)
        model.train()
        bar = tqdm(total=int(sum(len(rows) for rows in batches)), initial=int(sum(len(r) for r in batches[:done])),
                   desc=f"teacher epoch {epoch}/{config.epochs}", unit="text", disable=shard.rank > 0)
        last_save = time.monotonic()
        for step in range(done, len(batches)):
            rows = batches[step][shard.rank::shard.world]
            batch = pad_batch([train_ids[i] for i in rows], tokenizer.pad_token_id, device)
            with optimization.autocast():
                logits = forward(**batch).logits.float()
            loss = _loss(logits, targets[rows].to(device), dataset.task, weight)
            optimization.step(loss)
            bar.update(len(batches[step]))
            bar.set_postfix(loss=f"{loss.item():.4f}")
            due = time.monotonic() - last_save > 60 * config.checkpoint_minutes and step + 1 < len(batches)
            if shard.world > 1:
                due = any(shard.gather([due]))  # every process takes the same decision, or the barrier hangs
            if due:
                if shard.rank == 0:
                    _save_step(out / "checkpoints", epoch, step + 1, model, optimization)
                shard.barrier()
                last_save = time.monotonic()
        bar.close()
        if shard.rank == 0:
            scores[epoch] = _save_epoch(out / "checkpoints", epoch, model, tokenizer, optimization, config,
                                        dataset, scorer, scores)
        shard.barrier()
        scores = _scores(out / "checkpoints") if shard.rank > 0 else scores
        epoch, done = epoch + 1, 0
    if shard.rank == 0:
        _publish_best(out, scores)
    shard.barrier()
    return final


def class_weights(labels: np.ndarray, task: str, kind: str) -> torch.Tensor | None:
    """Loss weights against class imbalance, from the train labels: multiclass, a weight per class (n / (k n_c));
    multilabel, BCE's pos_weight per label (negatives / positives); "sqrt-balanced" is the square root of either,
    a milder correction. None for "none"."""
    if kind == "none":
        return None
    if is_multilabel(task):
        positives = labels.sum(axis=0)
        weight = (len(labels) - positives) / np.maximum(positives, 1)
    else:
        counts = np.bincount(labels, minlength=int(labels.max()) + 1)
        weight = len(labels) / (len(counts) * np.maximum(counts, 1))
    weight = np.sqrt(weight) if kind == "sqrt-balanced" else weight
    return torch.tensor(weight, dtype=torch.float32)


def _epoch_batches(lengths: np.ndarray, config: TeacherConfig, epoch: int, shard: Shard) -> list[np.ndarray]:
    """The batches of an epoch: length-grouped, shuffled by (seed, epoch), so a resumed epoch sees the same."""
    batches = length_grouped_batches(lengths, config.batch_size, np.random.default_rng(config.seed + epoch))
    return [rows for rows in batches if len(rows) >= shard.world]  # every process needs a share


def _stalled(scores: dict[int, float], patience: int) -> bool:
    """Whether the last `patience` epochs all failed to beat the best val score before them."""
    if len(scores) <= patience:
        return False
    epochs = sorted(scores)
    before = max(scores[e] for e in epochs[:-patience])
    return all(scores[e] <= before for e in epochs[-patience:])


def _new_model(config: TeacherConfig, dataset: Dataset, device: torch.device):
    problem = "multi_label_classification" if is_multilabel(dataset.task) else "single_label_classification"
    torch.manual_seed(config.seed)  # the new classification head is drawn from this
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_backbone(config.backbone), num_labels=dataset.num_labels, problem_type=problem,
            id2label=dict(enumerate(dataset.label_names)), label2id={n: i for i, n in enumerate(dataset.label_names)},
            ignore_mismatched_sizes=True)
    except (OSError, ValueError) as err:
        raise BertdistillError(f"teacher backbone '{config.backbone}': {str(err).splitlines()[0]}") from None
    return model.to(device)


def _loss(logits: torch.Tensor, targets: torch.Tensor, task: str, weight: torch.Tensor | None) -> torch.Tensor:
    if is_multilabel(task):
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.float(), pos_weight=weight)
    return torch.nn.functional.cross_entropy(logits, targets, weight=weight)


def _save_epoch(folder: Path, epoch: int, model, tokenizer, optimization: Optimization, config: TeacherConfig,
                dataset: Dataset, scorer: Scorer, scores: dict[int, float]) -> float:
    """Write checkpoints/epoch-N atomically with its val score; returns the score. Older epochs lose their
    optimizer state, and (unless config.keep_checkpoints = "all") every epoch but the best and this one goes."""
    def build(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        optimization.save(staging)
        files.write_json(staging / "bertdistill.json", {
            "format": MODEL_FORMAT, "version": files.FORMAT_VERSION, "task": dataset.task,
            "label_names": dataset.label_names, "max_length": config.max_length, "truncation": config.truncation,
            "backbone": config.backbone})
        val_probs = Teacher(staging, config.device).predict_proba(dataset.val.texts)
        state["val_score"] = scorer.score(dataset.val.labels, val_probs)
        files.write_json(staging / "state.json", {"epoch": epoch, "val_score": state["val_score"],
                                               "metric": scorer.metric,
                                               "val_scores": {**scores, epoch: state["val_score"]}})

    state: dict = {}
    target = files.publish_dir(folder / f"epoch-{epoch}", build)
    print(f"teacher epoch {epoch}: val {scorer.metric} = {state['val_score']:.4f}")
    shutil.rmtree(folder / "step", ignore_errors=True)  # the epoch's end supersedes its mid-epoch checkpoint
    best = max({**scores, epoch: state["val_score"]}.items(), key=lambda item: item[1])[0]
    for older in folder.glob("epoch-*"):
        if older == target:
            continue
        if config.keep_checkpoints == "best-and-latest" and older.name != f"epoch-{best}":
            shutil.rmtree(older)
            continue
        for name in ("optimizer.safetensors", "optimizer.json"):  # only needed to resume from the latest
            (older / name).unlink(missing_ok=True)
    return state["val_score"]


def _save_step(folder: Path, epoch: int, step: int, model, optimization: Optimization) -> None:
    """A mid-epoch checkpoint (checkpoints/step/): after `step` batches of `epoch`, with the RNG state."""
    from safetensors.torch import save_file, save_model

    def build(staging: Path) -> None:
        save_model(model, str(staging / "model.safetensors"))
        optimization.save(staging)
        save_file({"cpu": torch.get_rng_state()}, str(staging / "rng.safetensors"))
        files.write_json(staging / "state.json", {"epoch": epoch, "step": step})

    files.publish_dir(folder / "step", build)
    tqdm.write(f"teacher: checkpoint after batch {step} of epoch {epoch}")


def _scores(folder: Path) -> dict[int, float]:
    """Val score of every finished epoch, as recorded by the latest epoch checkpoint."""
    epochs = _finished_epochs(folder)
    return {} if not epochs else {int(e): v for e, v in files.read_json(
        folder / f"epoch-{epochs[-1]}" / "state.json").get("val_scores", {}).items()}


def _more_epochs_asked(folder: Path, config: TeacherConfig) -> bool:
    """Whether a finished run can go on: its latest epoch kept its optimizer state, is below `config.epochs`, and
    val has not stalled."""
    epochs = _finished_epochs(folder)
    return bool(epochs) and epochs[-1] < config.epochs and not _stalled(_scores(folder), config.patience)


def _finished_epochs(folder: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("epoch-*")
                  if (p / "state.json").exists() and (p / "optimizer.json").exists())


def _resume(folder: Path, model, optimization: Optimization) -> tuple[int, int, dict[int, float]]:
    """Load the latest checkpoint (mid-epoch or an epoch's end), if any; returns (epoch to train, batches of it
    already done, val scores of the finished epochs)."""
    from safetensors.torch import load_file, load_model

    device = str(next(model.parameters()).device)
    epochs = _finished_epochs(folder)
    scores = {e: files.read_json(folder / f"epoch-{e}" / "state.json")["val_score"] for e in epochs}
    scores.update(_scores(folder))
    step = files.read_json(folder / "step" / "state.json") if (folder / "step" / "state.json").exists() else None
    if step is not None and step["epoch"] > (epochs[-1] if epochs else 0):
        load_model(model, folder / "step" / "model.safetensors", device=device)
        optimization.load(folder / "step")
        torch.set_rng_state(load_file(str(folder / "step" / "rng.safetensors"))["cpu"])
        print(f"teacher: resuming in epoch {step['epoch']} after batch {step['step']} ({folder / 'step'})")
        return step["epoch"], step["step"], scores
    if not epochs:
        return 1, 0, {}
    latest = folder / f"epoch-{epochs[-1]}"
    load_model(model, latest / "model.safetensors", device=device)
    optimization.load(latest)
    print(f"teacher: resuming after epoch {epochs[-1]} ({latest})")
    return epochs[-1] + 1, 0, scores


def _publish_best(out: Path, scores: dict[int, float]) -> Path:
    best = max(scores, key=scores.get)

    def build(staging: Path) -> None:
        staging.rmdir()
        shutil.copytree(out / "checkpoints" / f"epoch-{best}", staging, ignore=shutil.ignore_patterns("optimizer.*"))
        files.write_json(staging / "state.json", {"best_epoch": best, "val_scores": scores})

    files.publish_dir(out / "model", build)
    print(f"teacher: best epoch {best} (val {scores[best]:.4f})")
    return out / "model"
