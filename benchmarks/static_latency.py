"""The static student's single-text latency against fastText and the teacher, measured in one process.

    python benchmarks/static_latency.py [tweeteval-emotion] [--texts 1000] [--variants LABEL ...]

Loads runs/bench/NAME (after `bertdistill students`), then measures the single-text p50 / p95 of the PyTorch
teacher, `static-kd`, `fasttext-lib` and `fasttext-lib-ftz` with the evaluation's own harness (raw string in,
probabilities out, warmed up, `eval.threads`, the test texts the evaluation draws); the teacher gets fewer texts
(~85 ms each). `--variants` adds the `static-kd` of each runs/bench/NAME/variants/LABEL (from
benchmarks/variant.py), as `static-kd@LABEL`, measured in the same process. Prints JSON: p50 / p95 per model, each
student's share of the teacher's p50, and static-kd's test score.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bertdistill import pipeline
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.evaluation.latency import benchmark_texts, limited_threads, single_text_latency
from bertdistill.evaluation.leaderboard import environment
from bertdistill.rundir import ChildRun

BENCH = Path(__file__).resolve().parents[1] / "runs" / "bench"
STUDENTS = ("static-kd", "fasttext-lib", "fasttext-lib-ftz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="tweeteval-emotion")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--teacher-texts", type=int, default=100)
    parser.add_argument("--variants", nargs="*", default=[], metavar="LABEL")
    args = parser.parse_args(argv)
    out = BENCH / args.name
    run = pipeline.Run(config_from_dict(files.read_json(out / "config.json")), out)
    settings, test = run.config.eval, run.dataset.test
    texts = benchmark_texts(test.texts, args.texts)
    models = {name: pipeline.load_model(run, name) for name in ("teacher", *STUDENTS)}
    for label in args.variants:
        variant = ChildRun(run.config, out / "variants" / label, parent=out)
        models[f"static-kd@{label}"] = pipeline.load_model(variant, "static-kd")
    result = {"run": args.name, "environment": environment(settings.threads), "texts": len(texts), "models": {}}
    with limited_threads(settings.threads):
        for name, model in models.items():
            sample = texts[:args.teacher_texts] if name == "teacher" else texts
            result["models"][name] = single_text_latency(model.predict_proba, sample, settings.warmup, name)
    teacher_p50 = result["models"]["teacher"]["p50"]
    for entry in result["models"].values():
        entry["share_of_teacher_p50"] = entry["p50"] / teacher_p50
    result["static_kd_test"] = run.scorer.score(test.labels, models["static-kd"].predict_proba(test.texts))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
