"""Does Tang et al.'s augmentation still help once the transfer set has an unlabelled in-domain corpus?

    python benchmarks/augment_on_top.py tweeteval-emotion --samples-per-text 6 --students cnn-kd bilstm-kd

Retrains the given distilled students of a finished benchmark run (runs/bench/NAME, from benchmarks/spine.py) on
its own transfer set (the config's corpora) plus N augmentations per train text (p_mask = p_pos = 0.1,
p_ng = 0.25), in runs/bench/NAME/augment-on-top/nN-seedS, and prints their val and test scores next to the run's
own students. Choose on val; test is printed once per model, for the record.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bertdistill import io, pipeline
from bertdistill.config import config_from_dict
from bertdistill.students import load_student

BENCH = Path(__file__).resolve().parents[1] / "runs" / "bench"


def scores(run: pipeline.Run, model) -> dict[str, float]:
    return {split: run.scorer.score(run.dataset.split(split).labels,
                                    model.predict_proba(run.dataset.split(split).texts)) for split in ("val", "test")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--samples-per-text", type=int, default=2)
    parser.add_argument("--students", nargs="+", default=["cnn-kd"])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-texts", type=int, default=60_000, help="cap on augmented + corpus texts")
    args = parser.parse_args(argv)
    parent_dir = BENCH / args.dataset
    raw = io.read_json(parent_dir / "config.json")
    parent = pipeline.Run(config_from_dict(raw, str(parent_dir / "config.json")), parent_dir)
    raw["transfer"].update(augment=True, p_mask=0.1, p_pos=0.1, p_ng=0.25, samples_per_text=args.samples_per_text,
                           max_texts=args.max_texts, seed=args.seed)
    raw["students"].update(include=args.students, seed=args.seed)
    raw["teacher"]["label_backend"] = "onnx"
    out = parent_dir / "augment-on-top" / f"n{args.samples_per_text}-seed{args.seed}"
    run = pipeline.ChildRun(config_from_dict(raw, "augment on top"), out, parent=parent_dir)
    pipeline.label(run)
    print("transfer set:", pipeline.transfer_set(run).counts)
    pipeline.train_students(run)
    result = {name: {"without": scores(parent, load_student(parent.student_dir(name))), "with": scores(run, model)}
              for name, model in pipeline.load_students(run).items()}
    io.write_json(out / "result.json", result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
