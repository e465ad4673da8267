"""The teacher's val and test scores of benchmark runs, from the soft-label cache (labeled first if missing).

    python benchmarks/teacher_scores.py tweeteval-offensive tweeteval-emotion

For each runs/bench/NAME with a fine-tuned teacher: the PyTorch teacher's logits of val and test (the same cache
`bertdistill label` writes), the headline metric on each, and the epoch chosen on val. Useful before the students
and the evaluation have run; the full leaderboard comes from `benchmarks/spine.py`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bertdistill import pipeline
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.evaluation.metrics import probabilities
from bertdistill.labels import soft_labels
from bertdistill.teacher.model import Teacher

BENCH = Path(__file__).resolve().parents[1] / "runs" / "bench"


def scores(out: Path) -> dict:
    run = pipeline.Run(config_from_dict(files.read_json(out / "config.json")), out)
    teacher = Teacher(run.teacher_dir, "cpu")
    result = {"val_scores_by_epoch": files.read_json(run.teacher_dir / "state.json")}
    for split in ("val", "test"):
        part = run.dataset.split(split)
        logits = soft_labels.teacher_logits(teacher, part.texts, run.cache_dir, run.config.teacher.label_batch_size)
        result[split] = run.scorer.score(part.labels, probabilities(logits, run.dataset.task))
    return {"metric": run.scorer.metric, **result}


if __name__ == "__main__":
    print(json.dumps({name: scores(BENCH / name) for name in sys.argv[1:]}, indent=1))
    sys.exit(0)
