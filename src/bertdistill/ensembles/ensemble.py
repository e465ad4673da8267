"""Ensembles of trained students: a weighted average of their probabilities, a model like any other.

An ensemble predicts from raw strings, saves to a folder (one JSON naming its members and weights; the members
stay in students/), loads back from the run's students, and is benchmarked end to end like every model: its
latency is measured, never summed. Members that share one TF-IDF featurizer compute it once per call.

How members and weights are chosen, on val only (test is never read here):
- "mean": equal weights over the given members;
- "weighted": the weights on the simplex that minimise val log-loss;
- "greedy": Caruana et al. (2004) forward selection with replacement — repeatedly add the student that most
  improves the average on val, allowing only sets whose measured single-text latency fits the budget; keep the
  best prefix. Weights are selection counts. If no student fits the budget the result is empty, and that is
  recorded and reported, not skipped. What "improves" means is the objective: val log-loss by default when the
  headline metric scores hard decisions (macro-F1 moves in steps, and climbing it on a small val set follows
  noise), the metric itself when it scores probabilities (mean ROC-AUC). Chosen on val halves (choose on one,
  score on the other; benchmarks/ensemble_objective.py): log-loss gained 1.5 points of macro-F1 on emotion and
  0.0-0.1 on offensive and hate, the metric 0.2 of ROC-AUC on Jigsaw (means over three seeds).
"""
from __future__ import annotations

import hashlib
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from scipy.optimize import minimize

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.latency import benchmark_texts, limited_threads, single_text_latency
from bertdistill.evaluation.metrics import PROBABILITY_METRICS, Scorer, logits_of, probabilities
from bertdistill.names import is_multilabel
from bertdistill.students.base import StackableStudent
from bertdistill.students.sparse_linear import SparseLinear
from bertdistill.teacher.model import Teacher

ENSEMBLE_FORMAT = "bertdistill-ensemble"
EPS = 1e-7


class Ensemble:
    """sum_i w_i * p_i(text) over member students; weights are non-negative and sum to 1."""

    kind = "ensemble"
    role = "ensemble"
    family = "ensemble"
    twin = None
    derived_from = None

    def __init__(self, members: Mapping[str, object], weights: Mapping[str, float], task: str, info: dict):
        unknown = set(weights) - set(members)
        if unknown:
            raise BertdistillError(f"ensemble weights name unknown members: {', '.join(sorted(unknown))}")
        total = sum(weights.values())
        self.weights = {name: float(w) / total for name, w in weights.items() if w > 0}
        self.members = {name: members[name] for name in self.weights}
        self.task, self.info = task, info
        self.groups = member_groups(self.members, task)

    @property
    def params_(self) -> dict:
        return {"weights": self.weights, **{k: v for k, v in self.info.items() if k not in ("trace", "spec")}}

    @property
    def n_params(self) -> int:
        return sum(member.n_params for member in self.members.values())

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if len(self.members) == 1:  # an ensemble of one student is that student: no averaging to pay for
            return np.asarray(next(iter(self.members.values())).predict_proba(texts), dtype=np.float32)
        total = 0.0
        for group in self.groups:
            weights = np.array([self.weights[name] for name in group.names])
            total = total + np.tensordot(weights, group.predict_proba(texts), axes=(0, 1))  # (m,) . (n, m, k)
        return np.asarray(total, dtype=np.float32)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        """Logits whose softmax (sigmoid for multilabel) gives `predict_proba`: log p, or log-odds per label."""
        return logits_of(self.predict_proba(texts), self.task, EPS)

    def save(self, folder: Path) -> None:
        _publish(Path(folder), self.weights, self.task, {"name": Path(folder).name, "status": "built", **self.info})

    @classmethod
    def load(cls, folder: Path, students: Mapping[str, object]) -> "Ensemble":
        """Read an ensemble folder; its members come from `students` (name -> loaded student)."""
        header = read_header(folder)
        missing = [m["name"] for m in header["members"] if m["name"] not in students]
        if missing:
            raise BertdistillError(f"{folder}: ensemble member(s) {', '.join(missing)} not trained in this run")
        info = {k: v for k, v in header.items() if k not in ("format", "version", "kind", "task", "members")}
        return cls(students, {m["name"]: m["weight"] for m in header["members"]}, header["task"], info)


def read_header(folder: Path) -> dict:
    return files.read_header(folder, ENSEMBLE_FORMAT, "an ensemble")


class MemberGroup:
    """Members predicted together: (n, members, k) probabilities. Linear students on the same features are
    stacked into one sparse model (one featurization, one gather-and-dot per text); any other member is alone."""

    def __init__(self, members: list[object], names: list[str], task: str):
        self.names, self.members, self.task = names, members, task
        stackable = len(members) > 1 and all(isinstance(m, StackableStudent) and m.feature_key_ for m in members)
        self.stacked = SparseLinear.stack([m.sparse_ for m in members]) if stackable else None

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.stacked is None:
            return np.stack([member.predict_proba(texts) for member in self.members], axis=1)
        logits = self.stacked.logits(texts)  # (n, members * k), members side by side
        k = logits.shape[1] // len(self.members)
        return probabilities(logits.reshape(-1, k), self.task).reshape(len(texts), len(self.members), k)


def member_groups(members: Mapping[str, object], task: str) -> list[MemberGroup]:
    """Members grouped by `feature_key_` (students on the same TF-IDF features); the rest one group each."""
    keyed: dict[str, list[str]] = {}
    groups = []
    for name, member in members.items():
        key = member.feature_key_ if isinstance(member, StackableStudent) else None
        if key is None:
            groups.append(MemberGroup([member], [name], task))
        else:
            keyed.setdefault(key, []).append(name)
    return [MemberGroup([members[n] for n in names], names, task) for names in keyed.values()] + groups


def average(member_probs: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    total = sum(weights.values())
    return sum(member_probs[name] * (w / total) for name, w in weights.items())


def log_loss(labels: np.ndarray, probs: np.ndarray, task: str) -> float:
    """Mean negative log-likelihood of the gold labels (multilabel: mean binary cross-entropy per label)."""
    probs = np.clip(probs.astype(np.float64), EPS, 1 - EPS)
    if not is_multilabel(task):
        return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log1p(-probs)))


def simplex_weights(member_probs: Mapping[str, np.ndarray], labels: np.ndarray, task: str,
                    prune: float = 0.01) -> dict[str, float]:
    """Weights (>= 0, sum 1) minimising val log-loss of the average; weights under `prune` are dropped (a member
    that barely counts only costs latency) and the rest renormalised."""
    names = list(member_probs)
    stacked = np.stack([member_probs[name].astype(np.float64) for name in names])  # (m, n, k)

    def loss(theta: np.ndarray) -> float:  # softmax parametrisation keeps the weights on the simplex
        weights = np.exp(theta - theta.max())
        return log_loss(labels, np.tensordot(weights / weights.sum(), stacked, axes=1), task)

    theta = minimize(loss, np.zeros(len(names)), method="L-BFGS-B").x
    weights = np.exp(theta - theta.max())
    weights /= weights.sum()
    kept = {name: float(w) for name, w in zip(names, weights) if w >= prune}
    return {name: w / sum(kept.values()) for name, w in kept.items()}


def greedy_objective(objective: str, metric: str) -> str:
    """"log_loss" or "metric": what greedy selection climbs ("auto" resolved by the kind of headline metric)."""
    if objective != "auto":
        return objective
    return "metric" if metric in PROBABILITY_METRICS else "log_loss"


def greedy_selection(member_probs: Mapping[str, np.ndarray], labels: np.ndarray, scorer: Scorer,
                     latency_ms: Callable[[frozenset], float], budget_ms: float, max_rounds: int,
                     objective: str) -> dict:
    """Caruana forward selection with replacement under a latency budget.

    Each step adds the member that most improves the val `objective` ("metric": the scorer's, log-loss breaking
    ties; "log_loss": the reverse). Returns {"counts": name -> times chosen (empty when no student fits), "trace":
    one entry per step}. `latency_ms(set of names)` measures an ensemble of those members; each set once.
    """
    def rank(score: float, loss: float) -> tuple[float, float]:
        return (score, -loss) if objective == "metric" else (-loss, score)

    measured: dict[frozenset, float] = {}

    def fits(names: frozenset) -> bool:
        if names not in measured:
            measured[names] = latency_ms(names)
        return measured[names] <= budget_ms

    counts, trace = Counter(), []
    for _ in range(max_rounds):
        best = None
        for name in member_probs:
            trial = counts + Counter([name])
            if not fits(frozenset(trial)):
                continue
            probs = average(member_probs, trial)
            score, loss = scorer.score(labels, probs), log_loss(labels, probs, scorer.task)
            if best is None or rank(score, loss) > rank(*best[1:]):
                best = (name, score, loss)
        if best is None:
            break
        counts[best[0]] += 1
        trace.append({"added": best[0], "val_score": best[1], "val_log_loss": best[2],
                      "p50_ms": measured[frozenset(counts)]})
    if not trace:
        return {"counts": {}, "trace": [], "fastest_ms": min(measured.values(), default=None)}
    best_step = max(range(len(trace)), key=lambda i: (*rank(trace[i]["val_score"], trace[i]["val_log_loss"]), -i))
    return {"counts": dict(Counter(step["added"] for step in trace[:best_step + 1])), "trace": trace}


# The stage: choose, fit and save every configured ensemble of a run (I/O and timing live here, at the edge).

def train_all(run, students: Mapping[str, object]) -> list[dict]:
    """Build each configured ensemble not already saved with the same spec; returns their saved headers.

    `run` is a pipeline.Run (config, dataset, scorer, out, teacher_dir); `students`: name -> loaded student.
    Greedy budgets are checked on as many val texts as the evaluation times on test (`eval.latency_texts`): one
    student set's p50 over 100 val tweets ranged 0.61-0.81 ms across four draws, over 200 tweets 0.73-0.74 ms
    across three (offensive, 2026-11-30).
    """
    val = run.dataset.val
    val_probs = {name: student.predict_proba(val.texts) for name, student in students.items()}
    probe = benchmark_texts(val.texts, run.config.eval.latency_texts, seed=2)
    teacher_p50 = cache(lambda: _p50(Teacher(run.teacher_dir, "cpu").predict_proba, probe, run.config.eval))
    headers = []
    for spec in run.config.ensembles:
        folder = run.out / "ensembles" / spec.name
        untrained = [name for name in spec.members or [] if name not in students]
        if untrained:
            raise BertdistillError(f"ensemble '{spec.name}': student(s) {', '.join(untrained)} not trained "
                                   f"(trained: {', '.join(students) or 'none'})")
        # by default every student that exports, so that an ensemble always ships (`bertdistill export`)
        members = {name: val_probs[name] for name in spec.members or [n for n, s in students.items() if s.shippable]}
        candidates = candidates_key(members)
        timed = len(probe) if spec.method == "greedy" else None
        if not _up_to_date(folder, spec, candidates, timed):
            weights, info = choose(spec, members, students, val.labels, run.scorer,
                                   lambda names: _p50(Ensemble(students, dict.fromkeys(names, 1.0), run.scorer.task,
                                                               {}).predict_proba, probe, run.config.eval),
                                   teacher_p50)
            _publish(folder, weights, run.scorer.task, {**info, "candidates": candidates, "latency_texts": timed})
        headers.append(read_header(folder))
    return headers


def candidates_key(member_probs: Mapping[str, np.ndarray]) -> str:
    """Which students an ensemble chose from and what they predict on val: retrained students change it."""
    digest = hashlib.sha256()
    for name in sorted(member_probs):
        digest.update(name.encode("utf-8"))
        digest.update(np.round(member_probs[name], 5).astype(np.float32).tobytes())  # ignore last-bit jitter
    return digest.hexdigest()[:16]


def _up_to_date(folder: Path, spec, candidates: str, timed: int | None) -> bool:
    """Saved with this very spec from the same students, its latencies timed on as many texts (`timed`; None when
    nothing is timed); an empty greedy result is retried (it depends on timings, not only on val)."""
    if not (folder / "bertdistill.json").exists():
        return False
    header = read_header(folder)
    return (header.get("spec") == spec.model_dump() and header.get("candidates") == candidates
            and header.get("latency_texts") == timed and header["status"] == "built")


def choose(spec, member_probs: Mapping[str, np.ndarray], students: Mapping[str, object], labels: np.ndarray,
           scorer: Scorer, latency_ms: Callable[[frozenset], float],
           teacher_p50: Callable[[], float]) -> tuple[dict[str, float] | None, dict]:
    """(weights, info) for one EnsembleConfig; weights None when the greedy result is empty (info says why)."""
    info = {"spec": spec.model_dump(), "name": spec.name, "method": spec.method}
    if spec.method == "mean":
        weights = {name: 1.0 for name in member_probs}
    elif spec.method == "weighted":
        weights = simplex_weights(member_probs, labels, scorer.task)
    else:
        budget, basis = latency_budget(spec, teacher_p50)
        objective = greedy_objective(spec.objective, scorer.metric)
        result = greedy_selection(member_probs, labels, scorer, latency_ms, budget, spec.max_rounds, objective)
        info.update(budget_ms=budget, budget_basis=basis, objective=objective, trace=result["trace"])
        if not result["counts"]:
            return None, {**info, "status": "empty", "reason": (
                f"no student fits the latency budget of {budget:.4f} ms ({basis}); the fastest measured "
                f"{result['fastest_ms']:.4f} ms")}
        weights = result["counts"]
    total = sum(weights.values())
    val_score = scorer.score(labels, average(member_probs, weights))
    return {name: w / total for name, w in weights.items()}, {**info, "status": "built", "val_score": val_score}


def latency_budget(spec, teacher_p50: Callable[[], float]) -> tuple[float, str]:
    """The greedy budget in ms and how it was set (a fraction of the teacher's p50 is measured on demand)."""
    if spec.budget_ms is not None:
        return spec.budget_ms, f"budget_ms = {spec.budget_ms}"
    fraction = spec.budget_teacher_fraction or 0.01
    teacher = teacher_p50()
    return fraction * teacher, f"{fraction:g} x the PyTorch teacher's single-text p50 of {teacher:.3f} ms"


def load_all(specs, models: Mapping[str, object], folder: Path) -> dict[str, Ensemble]:
    """The built ensembles by name; an empty greedy result is not a model (it is reported by `empty_results`)."""
    ensembles = {}
    for spec in specs:
        if not (folder / spec.name / "bertdistill.json").exists():
            raise BertdistillError(f"ensemble '{spec.name}' is not built in {folder.parent}; "
                                   "run `bertdistill ensembles`")
        if read_header(folder / spec.name)["status"] == "built":
            ensembles[spec.name] = Ensemble.load(folder / spec.name, models)
    return ensembles


def empty_results(specs, folder: Path) -> list[dict]:
    """Name and reason of every configured ensemble whose selection came out empty."""
    headers = [read_header(folder / spec.name) for spec in specs if (folder / spec.name / "bertdistill.json").exists()]
    return [{"name": h["name"], "reason": h["reason"]} for h in headers if h["status"] == "empty"]


def _publish(folder: Path, weights: dict[str, float] | None, task: str, info: dict) -> None:
    files.publish_dir(folder, lambda staging: files.write_json(staging / "bertdistill.json", {
        "format": ENSEMBLE_FORMAT, "version": files.FORMAT_VERSION, "kind": Ensemble.kind, "task": task,
        "members": [{"name": n, "weight": w} for n, w in (weights or {}).items()], **info}))


def _p50(predict, texts: list[str], settings) -> float:
    with limited_threads(settings.threads):
        return single_text_latency(predict, texts, settings.warmup)["p50"]
