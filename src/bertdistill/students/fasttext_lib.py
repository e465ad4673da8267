"""The fastText library itself (Joulin et al. 2017): the reference a user would ship instead of a distilled student.

- `fasttext-lib`: supervised fastText on the gold labels;
- `fasttext-lib-relabel`: on the teacher's labels over the whole transfer set (fastText learns from hard labels
  only: the argmax, or for multilabel every label the teacher gives p >= 0.5);
- `fasttext-lib-ftz`: `fasttext-lib` product-quantized, fastText's compressed `.ftz` model.
Hyper-parameters come from fastText's autotune against the val file for `students.fasttext_autotune_seconds`;
multilabel uses its one-vs-all loss. Autotune is a timed random search (it scores settings by fastText's F1 at k=1,
accuracy for multiclass): when the first settings it draws are slow to train it can end after a few trials on a poor
one (emotion, seed 15: 4 trials in 60 s, lr 0.016, val macro-F1 48.2, where the next seed's search tried 35 and
reached 65.4). So a search of fewer than AUTOTUNE_MIN_TRIALS trials is run again with other seeds, up to
AUTOTUNE_RUNS searches, and the model best on val by the run's metric is kept. Texts are lower-cased with
punctuation split off, as fastText's own tutorials prepare them, and labels are written as `__label__<index>`, so
label names may hold any character.

The binding is `fasttext-numpy2-wheel` (Python 3.11+, numpy 2). Its training is not reproducible, even on one
thread with a fixed seed (the same call in one process gives different weights), and now and then it diverges: it stops
with "Encountered NaN", or ends with weights of 1e11 and more whose predictions are NaN. fastText 0.9.3 built from
source does the same. On a busy machine it has also hung inside autotune (minutes in its wait for worker threads that
had ended). So each training runs in a child process under a time limit (fasttext_child.py), its model is checked
(`healthy`), and a training that fails, diverges or overruns is retried with the next seed (ATTEMPTS). Word bigrams,
which fastText recommends for classification, are fixed.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

from bertdistill.config import StudentsConfig
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer, logits_of
from bertdistill.names import is_multilabel
from bertdistill.students.base import TrainingData, read_header, require, write_header

MODEL_FILE = "model.bin"
INSTALL = 'pip install -e ".[fasttext]" (the fasttext-numpy2-wheel package)'
PUNCTUATION = re.compile(r"([^\w\s])")
ATTEMPTS = 10
MAX_WEIGHT = 1e3  # healthy models measured here stay under 10; diverged ones reach 1e11 and beyond
# time limit beyond the autotune budget, for its final training: measured at ~5 s on 20k tweets (2 MB), 38 s on
# Jigsaw's 3.8 MB of comments (autotune chose 87 epochs of dim 309), twice that on a busy machine
FINAL_TRAINING_SECONDS, FINAL_TRAINING_SECONDS_PER_MB = 30, 30
LOG_FLOOR = 1e-5  # fastText's predict takes log(p + 1e-5)
BUCKETS = 200_000  # hashed n-gram rows; autotune left alone tries up to 10M (gigabytes), tweets need few
AUTOTUNE_MIN_TRIALS, AUTOTUNE_RUNS = 10, 3
TRIALS = re.compile(r"Trials:\s*(\d+)")  # autotune's progress line on stderr, printed whatever `verbose` says
# fastText skips a training line without a label, so a multilabel row that is negative for every label carries
# this one: one-vs-all then learns from it as a negative for the real labels (most rows on Jigsaw)
NO_LABEL = "__label__none"


def _library():
    try:
        import fasttext
    except ImportError:
        raise BertdistillError(f"the fastText students need the fastText library: {INSTALL}") from None
    return fasttext


def prepare(text: str) -> str:
    """One line of lower-cased tokens, punctuation split off (fastText splits on whitespace and NUL only)."""
    return " ".join(PUNCTUATION.sub(r" \1 ", text.lower()).replace("\0", " ").split())


def healthy(model) -> bool:
    """True when every weight is finite and below MAX_WEIGHT in size: the training did not diverge."""
    return all(np.isfinite(matrix).all() and np.abs(matrix).max(initial=0.0) < MAX_WEIGHT
               for matrix in (model.get_input_matrix(), model.get_output_matrix()))


class Training(NamedTuple):
    model: object  # fasttext.FastText._FastText
    settings: dict  # the TUNED hyper-parameters it was trained with
    trials: int | None  # settings autotune tried (None: no autotune)


def train(path: Path, seed: int, **settings) -> Training:
    """`fasttext.train_supervised` on the file at `path` in a child process, retried with the next seed when it ends
    in NaN, diverges or overruns its time limit (the autotune budget plus a final training's, by the file's size)."""
    fasttext = _library()
    megabytes = Path(path).stat().st_size / 1e6 if Path(path).exists() else 0.0
    limit = settings.get("autotuneDuration", 0) + FINAL_TRAINING_SECONDS + FINAL_TRAINING_SECONDS_PER_MB * megabytes
    problem = ""
    with tempfile.TemporaryDirectory(prefix="bertdistill-fasttext-model-") as folder:
        for attempt in range(ATTEMPTS):
            out = Path(folder) / f"model-{attempt}.bin"
            arguments = json.dumps({"input": str(path), "seed": seed + attempt, "verbose": 0, **settings})
            try:
                child = subprocess.run([sys.executable, "-m", "bertdistill.students.fasttext_child", arguments,
                                        str(out)], capture_output=True, text=True, timeout=limit)
            except subprocess.TimeoutExpired:
                problem = f"training overran {limit:.0f} s"
                print(f"fastText: {problem} (the binding hangs now and then); retrying with the next seed")
                continue
            message = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
            if child.returncode != 0:
                if "NaN" not in message:
                    raise BertdistillError(f"fastText training failed: {message}")
                problem = message
                continue
            model = fasttext.load_model(str(out))
            if healthy(model):
                trials = TRIALS.findall(child.stderr)
                return Training(model, json.loads(Path(f"{out}.json").read_text(encoding="utf-8")),
                                int(trials[-1]) if trials else None)
            problem = f"weights diverged past {MAX_WEIGHT:g}"
    raise BertdistillError(f"fastText training failed {ATTEMPTS} times: {problem}")


class FastTextLibStudent:
    kind: ClassVar[str] = "fasttext-lib"
    role: ClassVar[str] = "baseline"
    twin: ClassVar[str | None] = None
    config_fields: ClassVar[tuple[str, ...]] = ("seed", "fasttext_autotune_seconds")
    family: ClassVar[str] = "fasttext-lib"
    derived_from: ClassVar[str | None] = None
    shippable: ClassVar[bool] = True

    def __init__(self, config: StudentsConfig | None = None):
        self.config = config or StudentsConfig()

    @classmethod
    def check(cls, config: StudentsConfig, task: str, teacher: str) -> None:
        _library()

    def targets(self, data: TrainingData) -> tuple[list[str], np.ndarray]:
        """The texts and the (n,) class ids or (n, k) 0/1 rows fastText learns from."""
        return data.texts, require(data, "labels", self.kind)

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None):  # an autotune of a few minutes: nothing to resume
        self.task_, self.label_names_ = data.task, list(data.label_names)
        texts, labels = self.targets(data)
        budget = self.config.fasttext_autotune_seconds
        searches = []  # (val score, Training)
        with tempfile.TemporaryDirectory(prefix="bertdistill-fasttext-") as folder:
            train_file, val_file = Path(folder) / "train.txt", Path(folder) / "val.txt"
            self._write(train_file, texts, labels)
            self._write(val_file, val_texts, val_labels)
            for search in range(AUTOTUNE_RUNS):
                training = train(train_file, self.config.seed + search * ATTEMPTS, autotuneValidationFile=str(val_file),
                                 autotuneDuration=budget, loss="ova" if self.multilabel else "softmax", wordNgrams=2,
                                 bucket=BUCKETS, thread=2)
                searches.append((scorer.score(val_labels, self._probabilities(training.model, val_texts)), training))
                if training.trials is None or training.trials >= AUTOTUNE_MIN_TRIALS:  # None: no progress line
                    break
                if search + 1 < AUTOTUNE_RUNS:
                    print(f"fastText: autotune tried {training.trials} settings in {budget} s (val score "
                          f"{searches[-1][0]:.4f}); searching again with other seeds")
        self.val_score_, best = max(searches, key=lambda pair: pair[0])
        self.model_ = best.model
        self.params_ = {**best.settings, "autotune_trials": best.trials, "autotune_searches": len(searches)}
        return self

    @property
    def multilabel(self) -> bool:
        return is_multilabel(self.task_)

    def _write(self, path: Path, texts: list[str], labels: np.ndarray) -> None:
        lines = []
        for text, label in zip(texts, labels):
            ids = np.flatnonzero(label == 1) if self.multilabel else ([int(label)] if label >= 0 else [])
            if len(ids):
                lines.append(" ".join(f"__label__{i}" for i in ids) + " " + prepare(text))
            elif self.multilabel:
                lines.append(f"{NO_LABEL} {prepare(text)}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self._probabilities(self.model_, texts)

    def _probabilities(self, model, texts: list[str]) -> np.ndarray:
        labels, scores = model.predict([prepare(text) for text in texts], k=len(model.labels), threshold=0.0)
        k = len(self.label_names_)
        probs = np.zeros((len(texts), k + 1), dtype=np.float32)  # column k takes NO_LABEL's score and is dropped
        for row, (names, values) in enumerate(zip(labels, scores)):
            probs[row, [k if name == NO_LABEL else int(name.removeprefix("__label__")) for name in names]] = values
        # fastText returns exp(log(p + 1e-5)): take the 1e-5 back off (exported bundles compute p itself)
        return np.clip(probs[:, :k] - LOG_FLOOR, 0.0, 1.0)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        return logits_of(self.predict_proba(texts), self.task_)

    @property
    def n_params(self) -> int:
        args = self.model_.f.getArgs()
        return int((len(self.model_.words) + args.bucket + len(self.model_.labels)) * args.dim)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model_.save_model(str(folder / MODEL_FILE))  # fastText's own binary format (no pickle)
        write_header(folder, self.kind, self.task_, self.label_names_, params=self.params_, val_score=self.val_score_)

    @classmethod
    def load(cls, folder: Path):
        header = read_header(folder)
        student = cls()
        student.model_ = _library().load_model(str(Path(folder) / MODEL_FILE))
        student.task_, student.label_names_ = header["task"], header["label_names"]
        student.params_, student.val_score_ = header["params"], header["val_score"]
        return student


class RelabelledFastTextLibStudent(FastTextLibStudent):
    kind = "fasttext-lib-relabel"
    role = "distilled"
    twin = "fasttext-lib"

    def targets(self, data: TrainingData) -> tuple[list[str], np.ndarray]:
        logits = require(data, "teacher_logits", self.kind)
        if is_multilabel(data.task):
            return data.texts, (logits >= 0).astype(np.int8)  # sigmoid(z) >= 0.5
        return data.texts, logits.argmax(axis=1)


class QuantizedFastTextLibStudent(FastTextLibStudent):
    """`fasttext-lib` compressed by fastText's product quantization (its `.ftz` models), without retraining."""

    kind = "fasttext-lib-ftz"
    derived_from = "fasttext-lib"
    config_fields = (*FastTextLibStudent.config_fields, "fasttext_ftz_cutoff")
    shippable = False  # its product-quantized matrices are read by the fastText library only

    def fit(self, data: TrainingData, val_texts: list[str], val_labels: np.ndarray, scorer: Scorer,
            checkpoint_dir: Path | None = None):
        source = FastTextLibStudent(self.config)
        source.kind = self.kind  # errors name the student the user asked for
        source.fit(data, val_texts, val_labels, scorer)
        return self.quantize(source, data, val_texts, val_labels, scorer)

    def quantize(self, source: FastTextLibStudent, data: TrainingData, val_texts: list[str], val_labels: np.ndarray,
                 scorer: Scorer):
        """Product-quantize a trained fastText model (`data`, its training texts, is not needed: no retraining)."""
        self.model_, self.task_, self.label_names_ = source.model_, source.task_, source.label_names_
        # product quantization's k-means time grows with the rows kept (~90 s for 218k rows of 64 here, 1 s for 1k)
        self.model_.quantize(qnorm=True, retrain=False, cutoff=self.config.fasttext_ftz_cutoff)
        self.params_ = dict(source.params_)
        self.val_score_ = scorer.score(val_labels, self.predict_proba(val_texts))
        return self
