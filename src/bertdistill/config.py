"""Typed run configuration, read from TOML and validated once at the boundary.

Every section rejects unknown keys, so a typo (`teacher.epoch`) is an error that names the key instead of a
silently ignored setting. Command-line overrides use the same dotted keys (`teacher.epochs=1`).
"""
from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bertdistill.errors import BertdistillError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LossConfig(_Section):
    """Which loss a student trains with, how much weight the teacher gets, and the temperature schedule."""

    kind: Literal["hard", "kl", "mse", "soft_bce"] = "kl"
    # weight of the teacher term, 1 - alpha goes to the gold labels; kind 'hard' and teacher_annealing ignore it
    alpha: float = Field(0.9, ge=0, le=1)
    temperature: float = Field(2.0, gt=0)
    anneal_temperature: bool = False  # T goes linearly from `temperature` to 1 over training
    teacher_annealing: bool = False  # BAM targets lambda * gold + (1 - lambda) * teacher, instead of the alpha-mix


class DataConfig(_Section):
    """Where the labelled texts are and how to read them."""

    format: Literal["tweeteval", "csv", "tsv", "jsonl", "hf"] = "tweeteval"
    path: str = Field(description="file or folder, relative to the data dir unless absolute; hub name for hf")
    data_dir: str | None = None
    download_url: str | None = None
    text_column: str = "text"
    label_column: str | None = "label"
    label_columns: list[str] | None = None  # several 0/1 columns: a multilabel task
    label_names: list[str] | None = None  # names for integer labels 0..k-1
    train_file: str | None = None
    val_file: str | None = None
    test_file: str | None = None
    hf_config: str | None = None
    hf_splits: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
    val_size: float = Field(0.1, gt=0, lt=1)
    test_size: float = Field(0.2, gt=0, lt=1)
    seed: int = 13
    max_train: int | None = Field(None, gt=1)  # seeded stratified subsample, for quick runs
    max_eval: int | None = Field(None, gt=1)  # same for val and test
    metric: Literal["macro_f1", "mean_roc_auc", "class_f1"] | None = None
    metric_classes: list[str] | None = None  # for class_f1: mean F1 of these classes (irony, stance)

    @model_validator(mode="after")
    def _metric_classes_given(self) -> "DataConfig":
        if self.metric == "class_f1" and not self.metric_classes:
            raise ValueError("metric = 'class_f1' needs metric_classes, e.g. ['irony']")
        if self.label_columns is not None and len(self.label_columns) < 2:
            raise ValueError("label_columns needs at least two columns (use label_column for one)")
        unknown = sorted(set(self.hf_splits) - {"train", "val", "test"})
        if unknown:
            raise ValueError(f"hf_splits keys must be train, val or test, got {', '.join(unknown)}")
        return self


class TeacherConfig(_Section):
    """Fine-tuning of the BERT teacher (or reuse of one already fine-tuned)."""

    backbone: str = "minilm"  # offline 'minilm' (all-MiniLM-L6-v2) or 'mpnet-base' (all-mpnet-base-v2); else a
    # hub name or a local folder
    reuse: str | None = None  # a fine-tuned sequence classifier (folder or hub name): adopted, no training
    label_map: dict[str, str] | None = None  # reuse: data label -> the classifier's label, where names differ
    max_length: int = Field(128, ge=8, le=4096)
    truncation: Literal["head", "head-tail"] = "head"  # head-tail: a long text's first quarter + last 3/4
    epochs: int = Field(3, ge=1)
    patience: int = Field(2, ge=1)  # epochs without a better val score before training stops
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    # the new classification head's own rate (None: learning_rate). AdamW moves a weight by at most ~lr a step, so
    # at 3e-5 a fresh head barely moves in a few hundred steps: the encoder bends to it, which a rare label's few
    # positives hardly drive
    head_learning_rate: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)  # gradient clipping
    class_weights: Literal["none", "balanced", "sqrt-balanced"] = "none"  # loss weights (pos_weight) vs imbalance
    checkpoint_minutes: float = Field(15.0, gt=0)  # a mid-epoch checkpoint at least this often
    keep_checkpoints: Literal["best-and-latest", "all"] = "best-and-latest"  # epoch checkpoints kept on disk
    label_batch_size: int = Field(128, ge=1)
    # what labels the transfer set: the PyTorch teacher (fp32; "torch-bf16": under bf16 autocast, 2.3x fp32 here with
    # AMX) or its ONNX Runtime export (CPU). Reduced precision labels only if it agrees on >= 99% of val
    label_backend: Literal["torch", "torch-bf16", "onnx", "onnx-int8"] = "torch"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # training arithmetic: "auto" is bf16 autocast on CUDA, fp32 on CPU; "bf16" also on a CPU with AMX /
    # AVX512-BF16, where it takes a base-size step from ~7 to ~3 s. Weights stay fp32; labeling: label_backend
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    seed: int = 13


class TfidfConfig(_Section):
    """Word and character n-gram TF-IDF features shared by the linear students."""

    word_ngram_max: int = Field(2, ge=1, le=5)
    char_ngram_min: int = Field(2, ge=1)
    char_ngram_max: int = Field(5, ge=1, le=8)
    max_features: int = Field(200_000, ge=100)
    min_df: int = Field(2, ge=1)


class NeuralConfig(_Section):
    """Training and shape of the PyTorch students (fastText-style, CNN, BiLSTM, mini-BERT)."""

    epochs: int = Field(8, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)  # of all steps, then linear decay
    max_grad_norm: float = Field(5.0, gt=0)  # gradient clipping
    patience: int = Field(2, ge=1)  # epochs without a better val score before early stopping
    max_length: int = Field(128, ge=4)
    tokenizer: Literal["teacher", "word"] = "teacher"  # the teacher's subword tokenizer, or words from train
    vocab_size: int = Field(30_000, ge=100)  # word vocabulary size (tokenizer = "word")
    embedding_dim: int | None = Field(128, ge=8)  # None: the teacher's width; smaller: a learned projection
    freeze_embeddings: bool = False  # keep the teacher-initialised table fixed
    hidden_size: int = Field(150, ge=8)  # BiLSTM state per direction (Tang et al.), CNN filters per width, MLP
    dropout: float = Field(0.2, ge=0, lt=1)
    cnn_widths: list[int] = [3, 4, 5]
    hash_buckets: int = Field(2**14, ge=16)  # fastText word-bigram buckets
    transformer_layers: int = Field(2, ge=1)  # mini-transformer depth, layers copied from transformer_source
    # where the mini-transformer's layers, embeddings and tokenizer come from: "teacher" (its evenly spaced
    # layers), or a pretrained model (an alias such as "minilm", a folder, a hub name: its bottom layers)
    transformer_source: str = "teacher"
    static_width: int = Field(256, ge=2)  # static students: PCA width of the distilled token table
    static_source: str = "teacher"  # static students: the encoder whose outputs make the table
    transformer_learning_rate: float = Field(5e-5, gt=0)
    fasttext_learning_rate: float = Field(1e-2, gt=0)  # bag-of-embeddings models want a larger step
    loss: LossConfig | None = None  # distilled variants; None: KL (multiclass) or soft BCE (multilabel)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # training arithmetic: "auto" is bf16 autocast on CUDA (as the teacher) and fp32 on CPU; "bf16" also on CPU,
    # where AMX / AVX512-BF16 halve a mini-BERT step. Weights stay fp32; inference is fp32
    precision: Literal["auto", "fp32", "bf16"] = "auto"


class StudentsConfig(_Section):
    """Which students to train and how much hyper-parameter search each gets (on val, never test)."""

    include: list[str] = ["tfidf-lr", "tfidf-soft-lr", "tfidf-logit-ridge"]
    trials: int = Field(9, ge=1)
    seed: int = 13
    tfidf: TfidfConfig = TfidfConfig()
    neural: NeuralConfig = NeuralConfig()
    # the fastText library students: seconds of fastText's own hyper-parameter search (autotune) on val
    fasttext_autotune_seconds: int = Field(120, ge=5)
    # static students (settings read by one family live here, so that adding one retrains no other family): each
    # rate is trained and the best on val kept. A bag of SIF-weighted table rows learns slowly at 1e-3 from a few
    # thousand gold texts (emotion, 4 epochs: val 42.2 vs 55.9 at 1e-2), and no one rate won everywhere (static-kd
    # took 1e-3 on emotion and offensive, 1e-2 on hate)
    static_learning_rates: list[Annotated[float, Field(gt=0)]] = Field([1e-3, 1e-2], min_length=1)
    # static students' head: N > 0 puts one ReLU layer of N units before the output layer, as Model2Vec's
    # classifier does (a deep averaging network, Iyyer et al. 2015); 0 is linear. 512 was chosen on val (static-kd:
    # emotion 66.22 vs 64.77 linear, Jigsaw 95.44 vs 94.05) for ~6 µs more a tweet (benchmarks/NOTES.md)
    static_hidden: int = Field(512, ge=0)
    # mini-transformer students: which of the source's layers they copy. "bottom" (0..k-1), "spread" (evenly
    # spaced, first and last included), or "auto": spread from the teacher, bottom from a pretrained source
    # (Turc et al.'s well-read student)
    transformer_layer_choice: Literal["auto", "bottom", "spread"] = "auto"
    # mini-transformer students (and an assistant they train): the most epochs, when it differs from the other
    # neural students' `neural.epochs` (a pretrained encoder needs fewer passes than a CNN learning from scratch)
    transformer_epochs: int | None = Field(None, ge=1)
    # mini-transformer students: the classification head's own rate (None: neural.transformer_learning_rate). A
    # fresh head at an encoder's rate hardly moves, and rare labels suffer (as the teacher's `head_learning_rate`)
    transformer_head_learning_rate: float | None = Field(None, gt=0)
    # minibert-kd: a deeper mini-transformer whose hidden states the student's layers also learn, weighted against
    # the usual loss (students/layer_distillation.py). N (an int): a `minibert-kd` of N layers with the same
    # settings, trained first as part of this student's training; a folder: a trained student with the same
    # tokenizer and width; a pretrained encoder (an alias such as "minilm", or a model folder): its every layer as
    # it is, at no training cost; None: the teacher's logits alone
    transformer_assistant: int | str | None = None
    transformer_assistant_weight: float = Field(1.0, gt=0)
    # fasttext-lib-ftz: keep only the rows (words and hashed n-grams) with the largest norms before quantizing, as
    # fastText's `quantize -cutoff` does (smaller model, quantized in seconds); 0 keeps every row
    fasttext_ftz_cutoff: int = Field(0, ge=0)

    @field_validator("fasttext_ftz_cutoff")
    @classmethod
    def _enough_rows_to_quantize(cls, cutoff: int) -> int:
        if 0 < cutoff < 256:
            raise ValueError("must be 0 (keep every row) or at least 256: product quantization learns 256 centroids")
        return cutoff

    def settings(self, fields: tuple[str, ...]) -> dict:
        """The given settings as JSON: what a family reads (its `config_fields`), to tell when it must retrain."""
        return self.model_dump(mode="json", include=set(fields))


class EvalConfig(_Section):
    """How cost is measured: end-to-end single-text latency and batch throughput."""

    latency_texts: int = Field(200, ge=10)
    warmup: int = Field(20, ge=0)
    throughput_texts: int = Field(1000, ge=10)
    throughput_batch: int = Field(64, ge=1)
    threads: int = Field(1, ge=1)


class EnsembleConfig(_Section):
    """One ensemble of trained students, averaging their probabilities; weights and members chosen on val only.

    method: "mean" (equal weights), "weighted" (weights minimising val log-loss on the simplex) or "greedy"
    (Caruana et al. 2004: forward selection with replacement on val, every step kept within a latency budget
    measured on this machine). The budget is `budget_ms`, or `budget_teacher_fraction` of the PyTorch teacher's
    single-text p50 (default 1/100 for greedy). `objective` is what greedy selection climbs on val: "log_loss",
    "metric" (the run's headline metric), or "auto": log-loss when the metric scores hard decisions (macro-F1,
    class F1: a step function of the probabilities, so on a val set of hundreds to thousands of rows the climb follows
    noise), the metric when it scores the probabilities themselves (mean ROC-AUC).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    method: Literal["mean", "weighted", "greedy"] = "greedy"
    members: list[str] | None = None  # students to combine (greedy: to choose from); None = every student
    budget_ms: float | None = Field(None, gt=0)
    budget_teacher_fraction: float | None = Field(None, gt=0, le=1)
    max_rounds: int = Field(12, ge=1)  # greedy: most selection steps (members with repeats)
    objective: Literal["auto", "log_loss", "metric"] = "auto"  # greedy: what selection improves on val

    @model_validator(mode="after")
    def _budget_fits_method(self) -> "EnsembleConfig":
        if self.budget_ms is not None and self.budget_teacher_fraction is not None:
            raise ValueError("give budget_ms or budget_teacher_fraction, not both")
        if self.method != "greedy" and (self.budget_ms is not None or self.budget_teacher_fraction is not None):
            raise ValueError(f"a latency budget needs method = 'greedy' (got '{self.method}')")
        if self.method != "greedy" and self.objective != "auto":
            raise ValueError(f"objective is for method = 'greedy' (got '{self.method}')")
        if self.members is not None and not self.members:
            raise ValueError("members is empty; leave it out to use every trained student")
        return self


DEFAULT_ENSEMBLES = [EnsembleConfig(name="ensemble-greedy", method="greedy", budget_teacher_fraction=0.01),
                     EnsembleConfig(name="ensemble-weighted", method="weighted")]


class CorpusConfig(_Section):
    """An unlabelled corpus whose texts join the transfer set: the teacher labels them, students learn from that."""

    path: str  # a file (a folder or hub name for hf); a relative path is looked up like data.path
    format: Literal["text", "csv", "tsv", "jsonl", "hf"] = "text"  # text: one text per line, UTF-8
    column: str = "text"  # the text column (csv / tsv / jsonl / hf)
    hf_config: str | None = None
    hf_split: str = "train"


TANG_SAMPLES = 20  # Tang et al.'s samples per train text


class TransferConfig(_Section):
    """What the teacher labels for the students: the train texts, plus Tang et al. (2019) augmentations of them
    (`augment`, at most `max_augmented` of them: the labeling budget), plus unlabelled `corpora`. Out of the box (no
    corpus) it is the train texts and up to 10,000 augmentations, chosen on val across four shipped datasets
    (benchmarks/TRANSFER.md); with a corpus, augmentation is off unless asked for: in-domain text paid off more.

    Per word of a sample: the teacher's mask token with probability p_mask, else a word of the same part of speech
    drawn by its frequency in train with probability p_pos; then per sample, with probability p_ng, only a random
    n-gram (n = 1..5) is kept. samples_per_text samples per train text; duplicates and copies of any train text
    are dropped. Defaults are Tang et al.'s, except the sample count: sized to the labeling budget.
    """

    augment: bool | None = None  # None: augment when no corpus is given
    p_mask: float = Field(0.1, ge=0, le=1)
    p_pos: float | None = Field(None, ge=0, le=1)  # None: 0.1 with a POS tagger installed, else 0 and a warning
    p_ng: float = Field(0.25, ge=0, le=1)
    samples_per_text: int | None = Field(None, ge=1)  # None: enough for max_augmented, at most Tang's 20
    # augmented texts kept (a seeded subsample), the labeling budget: at the rates measured on 2 cores, 10,000 tweets
    # take the base-size teacher under 2 minutes under bf16 autocast, ~5 in fp32 (Jigsaw comments: ~4.5 under bf16)
    max_augmented: int | None = Field(10_000, ge=1)
    seed: int = 13
    corpora: list[CorpusConfig] = []
    max_texts: int | None = Field(None, ge=1)  # most augmented + unlabelled texts kept (a seeded subsample)

    @property
    def augments(self) -> bool:
        """Whether the transfer set holds augmentations: `augment`, or when unset, whether no corpus is given."""
        return self.augment if self.augment is not None else not self.corpora

    def samples_for(self, n_train: int) -> int:
        """Samples per train text: samples_per_text, or when unset enough for max_augmented (1 to Tang's 20)."""
        if self.samples_per_text is not None:
            return self.samples_per_text
        if self.max_augmented is None:
            return TANG_SAMPLES
        return min(TANG_SAMPLES, -(-self.max_augmented // max(n_train, 1)))

    @model_validator(mode="after")
    def _probabilities_fit(self) -> "TransferConfig":
        if self.p_pos is not None and self.p_mask + self.p_pos > 1:
            raise ValueError(f"p_mask + p_pos must be at most 1 (got {self.p_mask} + {self.p_pos})")
        return self


class RunConfig(_Section):
    name: str = "run"
    data: DataConfig
    teacher: TeacherConfig = TeacherConfig()
    students: StudentsConfig = StudentsConfig()
    eval: EvalConfig = EvalConfig()
    transfer: TransferConfig = TransferConfig()
    ensembles: list[EnsembleConfig] = DEFAULT_ENSEMBLES


def builtin_configs() -> dict[str, Path]:
    """Configs shipped with the package, by name (`tweeteval-offensive`, ...)."""
    folder = resources.files("bertdistill") / "configs"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def load_config(source: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML file (or a built-in config name), apply `key=value` overrides, validate."""
    path = _find_config(source)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BertdistillError(f"{path}: not valid TOML: {err}") from None
    apply_overrides(raw, overrides)
    return config_from_dict(raw, origin=str(path))


def config_from_dict(raw: dict[str, Any], origin: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise BertdistillError(f"{origin}: {_describe(err.errors()[0])}") from None


def _find_config(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    shipped = builtin_configs()
    if str(source) in shipped:
        return shipped[str(source)]
    names = ", ".join(sorted(shipped))
    raise BertdistillError(f"config '{source}' not found: give a TOML file or one of: {names}")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> None:
    """Set dotted `section.key=value` pairs in a raw config dict; values are parsed as TOML."""
    for override in overrides:
        _apply_override(raw, override)


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise BertdistillError(f"override '{override}' must look like section.key=value")
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        if node.get(part) is None:  # absent, or an optional section saved as null (students.neural.loss)
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise BertdistillError(f"override '{override}': '{part}' is not a section")
    node[parts[-1]] = _parse_value(value.strip())


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string such as a path


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown config key '{key}'{_suggestion(error['loc'])}"
    if error["type"] == "missing":
        return f"missing config key '{key}'"
    return f"config key '{key}': {error['msg']} (got {error.get('input')!r})"


def _suggestion(loc: tuple) -> str:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
