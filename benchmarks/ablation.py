"""Distillation ablation per architecture: hard labels vs KL vs logit MSE vs alpha-mix vs annealing, over seeds.

    python benchmarks/ablation.py runs/bench/tweeteval-emotion --families bilstm cnn --seeds 13 14 15

Reads a finished run directory (teacher + cached logits), trains each family with each loss on the run's train
split, selects epochs on val and scores the test split once per trained model. Writes
RUN/ablation.json and RUN/ablation.md (mean ± std over seeds); already finished cells are reused.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bertdistill import pipeline
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.evaluation.metrics import probabilities
from bertdistill.students import TrainingData, student_class
from bertdistill.students.losses import LossConfig


def variants(task: str) -> dict[str, LossConfig | None]:
    """The rows of the ablation; None is the hard-label baseline."""
    soft = "kl" if task == "multiclass" else "soft_bce"
    return {
        "hard labels": None,
        f"{soft} T=2": LossConfig(kind=soft, alpha=1.0, temperature=2.0),
        "logit MSE": LossConfig(kind="mse", alpha=1.0),
        f"{soft} T=2, alpha=0.5 mix": LossConfig(kind=soft, alpha=0.5, temperature=2.0),
        f"{soft} T 4->1 annealed": LossConfig(kind=soft, alpha=1.0, temperature=4.0, anneal_temperature=True),
        "teacher annealing (BAM)": LossConfig(kind=soft, teacher_annealing=True),
    }


def train_cell(run: pipeline.Run, family: str, loss: LossConfig | None, seed: int, epochs: int | None) -> dict:
    dataset = run.dataset
    neural = run.config.students.neural.model_copy(update={"loss": loss, **({"epochs": epochs} if epochs else {})})
    students = run.config.students.model_copy(update={"seed": seed, "neural": neural})
    kind = family if loss is None else f"{family}-kd"
    data = TrainingData(dataset.train.texts, dataset.train.labels, pipeline.teacher_logits(run, "train"),
                        dataset.task, dataset.label_names, run.teacher_dir)
    start = time.perf_counter()
    student = student_class(kind)(students).fit(data, dataset.val.texts, dataset.val.labels, run.scorer)
    seconds = time.perf_counter() - start
    test = run.scorer.score(dataset.test.labels, student.predict_proba(dataset.test.texts))
    return {"val": student.val_score_, "test": test, "train_seconds": seconds, "epochs": len(student.history_)}


def table(results: dict, metric: str, teacher: float) -> str:
    lines = [f"| family | loss | test {metric} (mean ± std) | val | seeds | train s |", "|---|---|---|---|---|---|"]
    for family, rows in results.items():
        for name, cells in rows.items():
            tests = np.array([c["test"] for c in cells.values()]) * 100
            vals = np.array([c["val"] for c in cells.values()]) * 100
            seconds = np.mean([c["train_seconds"] for c in cells.values()])
            lines.append(f"| {family} | {name} | {tests.mean():.2f} ± {tests.std(ddof=1) if len(tests) > 1 else 0:.2f}"
                         f" | {vals.mean():.2f} | {len(tests)} | {seconds:.0f} |")
    return "\n".join(lines) + f"\n\nTeacher on the same test split: {100 * teacher:.2f}."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--families", nargs="+", default=["bilstm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--epochs", type=int, help="override students.neural.epochs")
    parser.add_argument("--only", nargs="+", help="subset of loss rows, by name")
    args = parser.parse_args()
    config = config_from_dict(files.read_json(args.run_dir / "config.json"))
    run = pipeline.prepare(config, args.run_dir)
    out = args.run_dir / "ablation.json"
    results = files.read_json(out) if out.exists() else {}
    for family in args.families:
        for name, loss in variants(run.dataset.task).items():
            if args.only and name not in args.only:
                continue
            for seed in args.seeds:
                cells = results.setdefault(family, {}).setdefault(name, {})
                if str(seed) not in cells:
                    cells[str(seed)] = train_cell(run, family, loss, seed, args.epochs)
                    files.write_json(out, results)
                    print(f"{family} / {name} / seed {seed}: test {cells[str(seed)]['test']:.4f}", flush=True)
    teacher = run.scorer.score(run.dataset.test.labels,
                               probabilities(pipeline.teacher_logits(run, "test"), run.dataset.task))
    text = table(results, run.scorer.metric, teacher)
    files.write_text(args.run_dir / "ablation.md", f"# Distillation ablation: {run.dataset.name}\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
