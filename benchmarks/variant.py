"""Try other student settings on a finished benchmark run: same teacher and soft labels, students retrained.

    python benchmarks/variant.py tweeteval-emotion --set students.neural.transformer_layers=1 \
        --students minibert-kd minibert-kd-int8
    python benchmarks/variant.py tweeteval-emotion --set transfer.augment=true --set transfer.samples_per_text=6 \
        --set transfer.max_texts=60000 --set teacher.label_backend=onnx --students cnn-kd bilstm-kd

Trains the given students of runs/bench/NAME (from benchmarks/spine.py) with the overrides (the new texts of a
changed transfer set are labeled by the run's teacher first, into the run's cache), in
runs/bench/NAME/variants/<label>, and prints each one's val and test score and single-text p50 next to the
PyTorch teacher's, measured in the same process at the run's thread count. Choose on val; test is printed once
per model, for the record. Results also go to <variant folder>/result.json.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from bertdistill import pipeline
from bertdistill.config import apply_overrides, config_from_dict
from bertdistill.core import files
from bertdistill.evaluation.latency import benchmark_texts, limited_threads, single_text_latency
from bertdistill.evaluation.metrics import probabilities
from bertdistill.rundir import ChildRun
from bertdistill.teacher.model import Teacher

BENCH = Path(__file__).resolve().parents[1] / "runs" / "bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--students", nargs="+", required=True)
    parser.add_argument("--label", help="variant folder name (default: from the overrides)")
    args = parser.parse_args(argv)
    parent_dir = BENCH / args.dataset
    raw = files.read_json(parent_dir / "config.json")
    apply_overrides(raw, args.overrides)
    raw["students"]["include"] = args.students
    label = args.label or re.sub(r"[^\w.=-]+", "_", "-".join(args.overrides) or "default")
    run = ChildRun(config_from_dict(raw, f"variant {label}"), parent_dir / "variants" / label,
                            parent=parent_dir)
    pipeline.label(run)  # a changed transfer set: the teacher labels only the texts no cache of it holds
    pipeline.train_students(run)
    settings, texts = run.config.eval, benchmark_texts(run.dataset.test.texts, run.config.eval.latency_texts)
    models = {"teacher": Teacher(run.teacher_dir, "cpu"), **pipeline.load_students(run)}
    result = {}
    with limited_threads(settings.threads):
        for name, model in models.items():
            splits = teacher_scores(run) if name == "teacher" else scores(run, model)
            result[name] = {**splits, "p50_ms": single_text_latency(model.predict_proba, texts, settings.warmup,
                                                                    name)["p50"]}
    for name, row in result.items():
        row["latency_share"] = result["teacher"]["p50_ms"] / row["p50_ms"]
        row["share_of_teacher"] = row["test"] / result["teacher"]["test"]
    files.write_json(run.out / "result.json", {"overrides": args.overrides, "threads": settings.threads,
                                            "models": result})
    print(json.dumps(result, indent=1))
    return 0


def scores(run: ChildRun, model) -> dict:
    splits = {split: run.dataset.split(split) for split in ("val", "test")}
    return {name: run.scorer.score(split.labels, model.predict_proba(split.texts)) for name, split in splits.items()}


def teacher_scores(run: ChildRun) -> dict:
    """The teacher's val and test scores from the logits its run cached when labeling: the numbers the leaderboard
    reports, without minutes of inference at one thread on long comments."""
    return {split: run.scorer.score(run.dataset.split(split).labels,
                                    probabilities(pipeline.teacher_logits(run, split), run.dataset.task))
            for split in ("val", "test")}


if __name__ == "__main__":
    sys.exit(main())
